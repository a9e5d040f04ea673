// Package custody keeps a public commitment to every unseal or recovery key
// share, so that each holder can prove — one share at a time, without the
// key ever being reconstructed — that the share they hold is still the one
// issued to them (a key-custody drill).
//
// A commitment is HMAC-SHA-256 keyed with a fresh 32-byte random salt per
// share over a domain-separation label, the share set's identity and the
// share bytes. Shares carry at least 256 bits of entropy (a Shamir share's
// y bytes are uniformly random on their own), so the commitment does not
// make a share easier to guess than the share itself; the salt makes every
// commitment unique even for equal shares and rules out precomputation.
// docs/key-custody.md gives the reasoning and the alternatives rejected.
//
// Share sets are stored in the barrier (encrypted and authenticated), never
// in plaintext storage. The package is pure apart from Store, which reads
// and writes through a storage.Storage given by the caller.
package custody

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Kinds of share set.
const (
	KindUnseal   = "unseal"
	KindRecovery = "recovery"
)

const label = "vigil key-custody share commitment v1"

// Sentinel errors; compare with errors.Is.
var (
	// ErrNoMatch means a share matches no commitment of the share set: it
	// was altered, or it belongs to another server or an older share set.
	ErrNoMatch = &core.Error{Code: core.CodeInvalid, Msg: "the share does not match any share issued for this server's current key"}
	// ErrNoShareSet means no commitments are recorded for the current key
	// (a server initialised before key custody existed): rekey to create them.
	ErrNoShareSet = &core.Error{Code: core.CodeInvalid, Msg: "no share commitments are recorded for the current key; rekey to create them"}
)

// Commitment is the public commitment to one share.
type Commitment struct {
	// Number is the share's 1-based position as printed at init or rekey.
	Number int `json:"number"`
	// X is the share's Shamir x coordinate (its last byte); 0 when the key
	// was not split (a single share is the key itself).
	X int `json:"x"`
	// Holder is the label given at init (-key-holders), "" when none.
	Holder string `json:"holder,omitempty"`
	Salt   []byte `json:"salt"`
	Digest []byte `json:"digest"`
}

// Label returns "share 3 (alice)" or "share 3".
func (c Commitment) Label() string {
	if c.Holder != "" {
		return fmt.Sprintf("share %d (%s)", c.Number, c.Holder)
	}
	return fmt.Sprintf("share %d", c.Number)
}

// ShareSet is the commitments to the shares of one key.
type ShareSet struct {
	ID          string       `json:"id"`
	Kind        string       `json:"kind"`
	Shares      int          `json:"shares"`
	Threshold   int          `json:"threshold"`
	CreatedAt   time.Time    `json:"created_at"`
	Commitments []Commitment `json:"commitments"`
}

// NewShareSet commits to shares (in the order handed to the holders).
// holders labels them (it may be shorter, or nil). split says whether the
// shares are Shamir shares (x coordinate in the last byte) or one unsplit key.
func NewShareSet(kind string, shares [][]byte, threshold int, holders []string, split bool, now time.Time) *ShareSet {
	set := &ShareSet{ID: newID(), Kind: kind, Shares: len(shares), Threshold: threshold, CreatedAt: now.UTC()}
	for i, sh := range shares {
		c := Commitment{Number: i + 1, Salt: make([]byte, 32)}
		rand.Read(c.Salt) // never returns an error; the runtime aborts instead
		if split && len(sh) > 0 {
			c.X = int(sh[len(sh)-1])
		}
		if i < len(holders) {
			c.Holder = holders[i]
		}
		c.Digest = digest(set.ID, c.Salt, sh)
		set.Commitments = append(set.Commitments, c)
	}
	return set
}

// Verify checks one share against its commitment, found by the share's x
// coordinate (for split keys) and compared in constant time. It returns the
// matching commitment, or ErrNoMatch. It never reconstructs the key and
// does not retain share.
func (s *ShareSet) Verify(share []byte) (Commitment, error) {
	if s == nil {
		return Commitment{}, ErrNoShareSet
	}
	split := s.Shares > 1
	for _, c := range s.Commitments {
		if split && (len(share) == 0 || int(share[len(share)-1]) != c.X) {
			continue
		}
		if subtle.ConstantTimeCompare(digest(s.ID, c.Salt, share), c.Digest) == 1 {
			return c, nil
		}
		// The x coordinate names exactly one commitment; a mismatch there
		// is a wrong share, not a reason to try the others.
		if split {
			break
		}
	}
	return Commitment{}, ErrNoMatch
}

// Holders returns the holder labels in share order ("" for unlabelled).
func (s *ShareSet) Holders() []string {
	out := make([]string, len(s.Commitments))
	for i, c := range s.Commitments {
		out[i] = c.Holder
	}
	return out
}

func digest(setID string, salt, share []byte) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(setID))
	m.Write([]byte{0})
	m.Write(share)
	return m.Sum(nil)
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StorePrefix is where share sets are kept in the barrier.
const StorePrefix = "core/key-custody/sets/"

// Put stores set in st (the barrier).
func Put(ctx context.Context, st storage.Storage, set *ShareSet) error {
	if err := storage.PutJSON(ctx, st, StorePrefix+set.ID, set); err != nil {
		return fmt.Errorf("custody: store share set: %w", err)
	}
	return nil
}

// Get loads share set id from st; ErrNoShareSet when it is missing.
func Get(ctx context.Context, st storage.Storage, id string) (*ShareSet, error) {
	if id == "" {
		return nil, ErrNoShareSet
	}
	var set ShareSet
	ok, err := storage.GetJSON(ctx, st, StorePrefix+id, &set)
	if err != nil {
		return nil, fmt.Errorf("custody: read share set: %w", err)
	}
	if !ok {
		return nil, ErrNoShareSet
	}
	return &set, nil
}
