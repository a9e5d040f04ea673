// Package hmac hashes sensitive audit values the way Vault does: each string
// becomes "hmac-sha256:<hex>" where <hex> is the lowercase hex HMAC-SHA256 of
// the string's UTF-8 bytes keyed with a per-device salt. Numbers, booleans
// and nulls are left as they are, so an auditor can still read counts and
// flags, and look any string up with sys/audit-hash.
package hmac

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"
	"unsafe"
)

// Prefix starts every hashed value.
const Prefix = "hmac-sha256:"

// SaltSize is the size of a generated salt in bytes.
const SaltSize = 32

// Salt is a device's HMAC key. The zero value is not usable; build one with
// New or Generate. A Salt is immutable and safe for concurrent use.
type Salt struct {
	key  []byte
	pool sync.Pool // of *keyed; Reset restores the keyed state
}

// keyed is a pooled HMAC state with room for its sum (a sum buffer on the
// stack would escape through the hash.Hash interface).
type keyed struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// New returns a salt using key (at least 16 bytes), copied.
func New(key []byte) (*Salt, error) {
	if len(key) < 16 {
		return nil, errors.New("hmac: salt must be at least 16 bytes")
	}
	return newSalt(append([]byte(nil), key...)), nil
}

func newSalt(key []byte) *Salt {
	s := &Salt{key: key}
	s.pool.New = func() any { return &keyed{h: hmac.New(sha256.New, s.key)} }
	return s
}

// Generate returns a new random salt of SaltSize bytes read from r
// (crypto/rand.Reader when r is nil).
func Generate(r io.Reader) (*Salt, error) {
	if r == nil {
		r = rand.Reader
	}
	k := make([]byte, SaltSize)
	if _, err := io.ReadFull(r, k); err != nil {
		return nil, fmt.Errorf("hmac: generate salt: %w", err)
	}
	return newSalt(k), nil
}

// Key returns a copy of the salt's key, for storage in the barrier.
func (s *Salt) Key() []byte { return append([]byte(nil), s.key...) }

// Hash returns Prefix + hex(HMAC-SHA256(salt, in)). It is deterministic: the
// same salt and input always give the same output.
func (s *Salt) Hash(in string) string {
	var out [HashLen]byte
	return string(s.AppendHash(out[:0], in))
}

// HashLen is the length of every Hash result.
const HashLen = len(Prefix) + 2*sha256.Size

// AppendHash appends Hash(in) to dst and returns the extended slice. It
// allocates nothing when dst has room for HashLen more bytes.
func (s *Salt) AppendHash(dst []byte, in string) []byte {
	k := s.pool.Get().(*keyed)
	k.h.Reset()
	// The hash only reads the bytes during the call and keeps no reference.
	k.h.Write(unsafe.Slice(unsafe.StringData(in), len(in)))
	dst = append(dst, Prefix...)
	n := len(dst)
	dst = append(dst, make([]byte, 2*sha256.Size)...)
	hex.Encode(dst[n:], k.h.Sum(k.sum[:0]))
	s.pool.Put(k)
	return dst
}

// Data returns a copy of a request or response data map with every string
// value hashed, recursively through maps and slices. Top-level keys listed
// in skip keep their values unhashed (Vault's audit_non_hmac_request_keys
// and audit_non_hmac_response_keys). Map keys are never hashed. The input is
// not modified. Values of types other than JSON's (structs, typed slices,
// times) are first converted to their JSON form, so the result always
// marshals to the same JSON as a hashed copy of the input's JSON would.
func (s *Salt) Data(data map[string]any, skip []string) map[string]any {
	if data == nil {
		return nil
	}
	out := make(map[string]any, len(data))
	for k, v := range data {
		if contains(skip, k) {
			out[k] = v
			continue
		}
		out[k] = s.Value(v)
	}
	return out
}

// Value returns v with every string hashed (see Data).
func (s *Salt) Value(v any) any {
	switch x := v.(type) {
	case nil, bool, json.Number, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return x
	case string:
		return s.Hash(x)
	case map[string]any:
		return s.Data(x, nil)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = s.Value(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = s.Hash(e)
		}
		return out
	case map[string]string:
		out := make(map[string]string, len(x))
		for k, e := range x {
			out[k] = s.Hash(e)
		}
		return out
	case time.Time:
		return s.Hash(x.Format(time.RFC3339Nano))
	}
	// Anything else: hash its JSON form.
	b, err := json.Marshal(v)
	if err != nil {
		return s.Hash(fmt.Sprint(v))
	}
	var g any
	if err := json.Unmarshal(b, &g); err != nil {
		return s.Hash(string(b))
	}
	return s.Value(normalise(g))
}

// normalise turns float64 from encoding/json into json.Number so integral
// values keep their spelling.
func normalise(v any) any {
	switch x := v.(type) {
	case float64:
		return json.Number(fmt.Sprint(x))
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
	}
	return v
}

func contains(list []string, k string) bool {
	for _, s := range list {
		if s == k {
			return true
		}
	}
	return false
}
