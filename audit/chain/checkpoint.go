package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Checkpoint is a signed statement "node NodeID's chain has entry Seq with
// hash Hash, and the Merkle tree of the chain's lines up to it has TreeSize
// leaves and root Root", made at Time. The writer puts one in the log every
// Config.CheckpointEvery entries or Config.CheckpointInterval, at every
// start and clean close, and hands it to Config.CheckpointSink; a verifier
// given a trusted Checkpoint proves that the log still contains that entry
// unchanged, and an inclusion proof against Root proves one line without
// the rest of the log.
type Checkpoint struct {
	NodeID string
	Seq    uint64 // seq of the last entry covered
	Hash   string // that entry's hash, 64 lowercase hex
	// TreeSize is the number of lines of the chain up to and including
	// Seq (Seq - chain start + 1: Seq itself for a chain that starts at
	// seq 1); Root is the RFC 9162 Merkle root over them, 64 lowercase
	// hex (see docs/audit-format.md for the leaves).
	TreeSize uint64
	Root     string
	Time     time.Time
	// Signature is the Ed25519 signature over CanonicalBytes, empty when
	// the writer has no Signer.
	Signature []byte
	// KeyID identifies the signing key: see KeyID.
	KeyID string
	// Source says where a trusted checkpoint came from ("raft", a stream,
	// a witness); reports only, not signed.
	Source string
}

// KeyID returns the key id of pub: the first 16 hex digits of SHA-256 of
// the 32-byte public key.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// CanonicalBytes returns the bytes a checkpoint signature covers: the
// compact JSON object
//
//	{"node_id":"<node id>","seq":<decimal>,"hash":"<64 hex>","tree_size":<decimal>,"root":"<64 hex>","time":"<RFC 3339>"}
//
// with members in exactly that order, no whitespace, and time formatted in
// UTC with time.RFC3339Nano (trailing zeros of the fraction trimmed, "Z"
// zone). Node ids and hashes never need JSON escaping, so this is plain
// string concatenation in any language. The writer writes these exact bytes
// as the value of the "checkpoint" member.
func (c Checkpoint) CanonicalBytes() []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"node_id":"`...)
	b = append(b, c.NodeID...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, `,"hash":"`...)
	b = append(b, c.Hash...)
	b = append(b, `","tree_size":`...)
	b = strconv.AppendUint(b, c.TreeSize, 10)
	b = append(b, `,"root":"`...)
	b = append(b, c.Root...)
	b = append(b, `","time":"`...)
	b = c.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	return b
}

// Sign sets Signature and KeyID using key.
func (c *Checkpoint) Sign(key ed25519.PrivateKey) {
	c.Signature = ed25519.Sign(key, c.CanonicalBytes())
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
}

// Verify checks the signature against pub. It returns an error describing
// the first problem: unsigned, key id mismatch, or bad signature.
func (c Checkpoint) Verify(pub ed25519.PublicKey) error {
	if len(c.Signature) == 0 {
		return errors.New("checkpoint is unsigned")
	}
	if want := KeyID(pub); c.KeyID != want {
		return fmt.Errorf("checkpoint key_id %q is not the trusted key %q", c.KeyID, want)
	}
	if !ed25519.Verify(pub, c.CanonicalBytes(), c.Signature) {
		return errors.New("checkpoint signature does not verify")
	}
	return nil
}

// checkpointBody returns the body of a vigil.checkpoint line.
func checkpointBody(c Checkpoint) []byte {
	b := make([]byte, 0, 400)
	b = append(b, `{"type":"vigil.checkpoint","checkpoint":`...)
	b = append(b, c.CanonicalBytes()...)
	b = append(b, `,"signature":"`...)
	b = base64.StdEncoding.AppendEncode(b, c.Signature)
	b = append(b, `","key_id":"`...)
	b = append(b, c.KeyID...)
	b = append(b, `"}`...)
	return b
}

// parseCheckpointBody decodes a vigil.checkpoint body and checks that the
// "checkpoint" member is spelled canonically (so that the signed bytes are
// the bytes in the line).
func parseCheckpointBody(body []byte) (Checkpoint, error) {
	var raw struct {
		Type       string          `json:"type"`
		Checkpoint json.RawMessage `json:"checkpoint"`
		Signature  string          `json:"signature"`
		KeyID      string          `json:"key_id"`
	}
	var c Checkpoint
	if err := json.Unmarshal(body, &raw); err != nil {
		return c, fmt.Errorf("checkpoint record: %v", err)
	}
	var in struct {
		NodeID   string    `json:"node_id"`
		Seq      uint64    `json:"seq"`
		Hash     string    `json:"hash"`
		TreeSize uint64    `json:"tree_size"`
		Root     string    `json:"root"`
		Time     time.Time `json:"time"`
	}
	if err := json.Unmarshal(raw.Checkpoint, &in); err != nil {
		return c, fmt.Errorf("checkpoint object: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(raw.Signature)
	if err != nil {
		return c, fmt.Errorf("checkpoint signature: %v", err)
	}
	c = Checkpoint{NodeID: in.NodeID, Seq: in.Seq, Hash: in.Hash, TreeSize: in.TreeSize, Root: in.Root, Time: in.Time, Signature: sig, KeyID: raw.KeyID}
	if !bytes.Equal(c.CanonicalBytes(), raw.Checkpoint) {
		return c, errors.New("checkpoint object is not in canonical form")
	}
	return c, nil
}

// ParseCheckpointLine decodes the checkpoint carried by a vigil.checkpoint
// line (without its newline), as streams deliver it. It checks the line's
// framing and the canonical form of the checkpoint object, not the chain
// or the signature.
func ParseCheckpointLine(line []byte) (Checkpoint, error) {
	f, err := parseChain(line)
	if err != nil {
		return Checkpoint{}, err
	}
	if recordType(line) != TypeCheckpoint {
		return Checkpoint{}, errors.New("not a vigil.checkpoint line")
	}
	return parseCheckpointBody(append(line[:f.BodyEnd:f.BodyEnd], '}'))
}
