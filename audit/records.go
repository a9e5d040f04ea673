package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// CheckpointJSON is a checkpoint as stored in Raft storage, returned by
// sys/audit/checkpoints/<device> and accepted by `vigil audit verify
// -checkpoint`. Signature is standard base64.
type CheckpointJSON struct {
	NodeID    string    `json:"node_id"`
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	TreeSize  uint64    `json:"tree_size"`
	Root      string    `json:"root"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"`
	KeyID     string    `json:"key_id"`
	Device    string    `json:"device,omitempty"`
	Path      string    `json:"path,omitempty"`
}

// ToJSON converts a checkpoint.
func ToJSON(c chain.Checkpoint) CheckpointJSON {
	return CheckpointJSON{NodeID: c.NodeID, Seq: c.Seq, Hash: c.Hash, TreeSize: c.TreeSize, Root: c.Root, Time: c.Time.UTC(),
		Signature: base64.StdEncoding.EncodeToString(c.Signature), KeyID: c.KeyID}
}

// Checkpoint converts back; it fails on a malformed signature.
func (c CheckpointJSON) Checkpoint() (chain.Checkpoint, error) {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return chain.Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	return chain.Checkpoint{NodeID: c.NodeID, Seq: c.Seq, Hash: c.Hash, TreeSize: c.TreeSize, Root: c.Root, Time: c.Time,
		Signature: sig, KeyID: c.KeyID}, nil
}

// CheckpointSource reads the newest checkpoint of a node's chain from a
// place a file-level insider on the node cannot rewrite, such as a
// stream's sink. The stream subsystem registers one per stream with
// AddCheckpointSource.
type CheckpointSource struct {
	// Name appears in refusal messages ("kafka stream siem").
	Name string
	// Device is the file device whose chain the source carries ("" when
	// it follows the only file device).
	Device string
	// Latest returns the newest checkpoint of node's chain it holds, or
	// nil when it holds none.
	Latest func(ctx context.Context, node string) (*chain.Checkpoint, error)
}

// Verification is the outcome of the last server-side verification, kept
// in the barrier for compliance checks (sys/audit/verify).
type Verification struct {
	Time    time.Time                     `json:"time"`
	OK      bool                          `json:"ok"`
	NodeID  string                        `json:"node_id"`
	Devices map[string]DeviceVerification `json:"devices"`
}

// DeviceVerification is one device's result.
type DeviceVerification struct {
	OK                bool     `json:"ok"`
	Path              string   `json:"path"`
	Segments          int64    `json:"segments"`
	Lines             int64    `json:"lines"`
	Entries           int64    `json:"entries"`
	Checkpoints       int64    `json:"checkpoints"`
	FirstSeq          uint64   `json:"first_seq"`
	LastSeq           uint64   `json:"last_seq"`
	Anchor            string   `json:"anchor"`
	SignaturesChecked bool     `json:"signatures_checked"`
	CheckpointSeq     uint64   `json:"trusted_checkpoint_seq,omitempty"`
	CheckpointOK      bool     `json:"trusted_checkpoint_verified"`
	Failure           string   `json:"failure,omitempty"`
	FailureKind       string   `json:"failure_kind,omitempty"`
	Warnings          []string `json:"warnings,omitempty"`
	Summary           string   `json:"summary"`
	// TrustedSources name every trusted checkpoint the log was held to.
	TrustedSources []string `json:"trusted_sources,omitempty"`
	// TreeChecked: every checkpoint's Merkle root was recomputed;
	// TreeSize and Root are the tree over the verified lines.
	TreeChecked bool   `json:"tree_checked"`
	TreeSize    uint64 `json:"tree_size,omitempty"`
	Root        string `json:"root,omitempty"`
	// Uncovered counts lines after the last checkpoint.
	Uncovered int64  `json:"uncovered_lines"`
	KeyID     string `json:"key_id,omitempty"`
	// Refused is set while the device is refused at start.
	Refused string `json:"refused,omitempty"`
}

// PublicKey describes the checkpoint verification key.
type PublicKey struct {
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	PublicKey string `json:"public_key"`     // base64 of the 32-byte Ed25519 key
	PEM       string `json:"public_key_pem"` // PKIX "PUBLIC KEY" PEM
}

// DescribeKey returns the PublicKey for pub.
func DescribeKey(pub ed25519.PublicKey) PublicKey {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return PublicKey{KeyID: chain.KeyID(pub), Algorithm: "ed25519", PublicKey: base64.StdEncoding.EncodeToString(pub),
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

// ParsePublicKey accepts a PKIX PEM, base64 of the raw 32 bytes, or the 32
// raw bytes.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key: not an Ed25519 key")
		}
		return pub, nil
	}
	if raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil && len(raw) == ed25519.PublicKeySize {
		return ed25519.PublicKey(raw), nil
	}
	if len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(b), nil
	}
	return nil, fmt.Errorf("public key: expected a PEM public key, base64 or 32 raw bytes")
}
