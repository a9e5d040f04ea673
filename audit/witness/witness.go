// Package witness publishes audit checkpoints where an insider with file
// access on one node cannot rewrite them, and reads them back when a node
// starts or an auditor verifies:
//
//   - Cluster: every checkpoint goes to the replicated storage (Raft, through
//     the barrier), and every other node countersigns it with its own key
//     (sys/audit/countersign/<node>/<device>/<witness>). A node whose local
//     files (audit log and Raft state) were rolled back finds the newer
//     checkpoints the others kept once it has caught up.
//   - HTTP: any URL that stores what it is sent (PUT) and returns it (GET);
//     a second Vigil is one (sys/audit/witness/<node>/<device>).
//
// Streams (Kafka, ClickHouse) carry checkpoints in the chain itself; the
// stream subsystem reads them back (audit/ship).
//
// Everything read back is only a candidate: callers keep a checkpoint only
// if the cluster's checkpoint key signed it (Verified).
package witness

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// Record is what a witness keeps for one (node, device): the newest
// checkpoint it was given.
type Record struct {
	Device     string                 `json:"device"`
	Checkpoint chain.SignedCheckpoint `json:"checkpoint"`
	// PublicKey (standard base64) is the key that signed the checkpoint,
	// so a witness can pin it on first use and refuse records signed by
	// another key.
	PublicKey string `json:"public_key,omitempty"`
}

// Countersignature is one node's statement that it saw another node's
// checkpoint, signed with its own key over CountersignBytes.
type Countersignature struct {
	Device     string                 `json:"device"`
	Path       string                 `json:"path,omitempty"` // the device's log file, as the node stored it
	Checkpoint chain.SignedCheckpoint `json:"checkpoint"`
	Witness    string                 `json:"witness"`
	WitnessKey string                 `json:"witness_key_id"`
	Time       time.Time              `json:"time"`
	Signature  []byte                 `json:"signature"`
}

// CountersignBytes are the bytes a countersignature signs: compact JSON
//
//	{"witness":"<node>","device":"<name>","time":"<RFC 3339>","checkpoint":<chain.Checkpoint.CanonicalBytes>}
//
// Device names and node ids never need JSON escaping.
func CountersignBytes(witness, device string, t time.Time, cp chain.Checkpoint) []byte {
	b := make([]byte, 0, 384)
	b = append(b, `{"witness":"`...)
	b = append(b, witness...)
	b = append(b, `","device":`...)
	b = strconv.AppendQuote(b, device)
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","checkpoint":`...)
	b = append(b, cp.CanonicalBytes()...)
	b = append(b, '}')
	return b
}

// Sign fills in the signature with key.
func (c *Countersignature) Sign(key ed25519.PrivateKey) error {
	cp, err := c.Checkpoint.Checkpoint()
	if err != nil {
		return err
	}
	c.WitnessKey = chain.KeyID(key.Public().(ed25519.PublicKey))
	c.Signature = ed25519.Sign(key, CountersignBytes(c.Witness, c.Device, c.Time, cp))
	return nil
}

// Verify checks the countersignature with the witness's public key.
func (c *Countersignature) Verify(pub ed25519.PublicKey) error {
	cp, err := c.Checkpoint.Checkpoint()
	if err != nil {
		return err
	}
	if chain.KeyID(pub) != c.WitnessKey {
		return fmt.Errorf("countersignature by key %s, %s's key is %s", c.WitnessKey, c.Witness, chain.KeyID(pub))
	}
	if !ed25519.Verify(pub, CountersignBytes(c.Witness, c.Device, c.Time, cp), c.Signature) {
		return errors.New("countersignature does not verify")
	}
	return nil
}

// Verified returns the candidates that key signed, for node, with their
// source set; the others are returned as errors describing why each was
// dropped.
func Verified(key ed25519.PublicKey, node string, cands []chain.Checkpoint) ([]chain.Checkpoint, []error) {
	var ok []chain.Checkpoint
	var bad []error
	for _, c := range cands {
		switch {
		case c.NodeID != node:
			bad = append(bad, fmt.Errorf("%s: checkpoint of node %q, not %q", c.Source, c.NodeID, node))
		case key == nil:
			bad = append(bad, fmt.Errorf("%s: no key to check the checkpoint with", c.Source))
		default:
			if err := c.Verify(key); err != nil {
				bad = append(bad, fmt.Errorf("%s: checkpoint at seq %d: %v", c.Source, c.Seq, err))
				continue
			}
			ok = append(ok, c)
		}
	}
	return ok, bad
}
