package barrier

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core"
)

// dataKey is one term of the keyring. Its fields are immutable once the key
// is in a keyring, except the encryption counter.
type dataKey struct {
	term        uint32
	value       []byte
	installed   time.Time
	aead        cipher.AEAD
	encryptions atomic.Uint64
}

// keyring holds every data key by term; active is the newest, used for all
// writes. A keyring is never modified after construction (Rotate builds a new
// one sharing the older *dataKey values), so readers under the barrier's read
// lock need no further locking.
type keyring struct {
	keys   map[uint32]*dataKey
	active *dataKey
}

func newDataKey(term uint32, value []byte, installed time.Time) (*dataKey, error) {
	aead, err := newAEAD(value)
	if err != nil {
		return nil, err
	}
	return &dataKey{term: term, value: value, installed: installed, aead: aead}, nil
}

func randomDataKey(term uint32, now time.Time) (*dataKey, error) {
	value := make([]byte, KeySize)
	rand.Read(value) // never returns an error; the runtime aborts instead
	return newDataKey(term, value, now.UTC())
}

// newKeyring returns a keyring with term 1 and a fresh random key.
func newKeyring(now time.Time) (*keyring, error) {
	k, err := randomDataKey(1, now)
	if err != nil {
		return nil, err
	}
	return &keyring{keys: map[uint32]*dataKey{1: k}, active: k}, nil
}

// rotated returns a new keyring with every key of r plus a fresh active key
// at the next term. r is unchanged.
func (r *keyring) rotated(now time.Time) (*keyring, error) {
	if r.active.term == math.MaxUint32 {
		return nil, core.Errorf(core.CodeInternal, "barrier: key term space exhausted")
	}
	k, err := randomDataKey(r.active.term+1, now)
	if err != nil {
		return nil, err
	}
	next := &keyring{keys: make(map[uint32]*dataKey, len(r.keys)+1), active: k}
	for t, old := range r.keys {
		next.keys[t] = old
	}
	next.keys[k.term] = k
	return next, nil
}

// seal encrypts value for key with the active data key.
func (r *keyring) seal(key string, value []byte) []byte {
	r.active.encryptions.Add(1)
	return sealValue(r.active.aead, r.active.term, key, value)
}

// open decrypts a value read from key with the data key its header names.
func (r *keyring) open(key string, raw []byte) ([]byte, error) {
	return openValue(key, raw, func(term uint32) cipher.AEAD {
		if k := r.keys[term]; k != nil {
			return k.aead
		}
		return nil
	})
}

// adoptCounts copies the encryption counters of terms present in both rings.
func (r *keyring) adoptCounts(old *keyring) {
	for t, k := range r.keys {
		if o := old.keys[t]; o != nil {
			k.encryptions.Store(o.encryptions.Load())
		}
	}
}

// zero overwrites every key value in r.
func (r *keyring) zero() {
	for _, k := range r.keys {
		clear(k.value)
	}
}

// zeroNewest overwrites the active key only (used when a rotation is abandoned).
func (r *keyring) zeroNewest() { clear(r.active.value) }

// Serialized keyring (the plaintext encrypted with the root key). A fixed
// binary layout rather than JSON so that no copy of a key lingers in an
// encoder's pooled buffer:
//
//	[1 byte version = 1][4 byte active term][4 byte key count]
//	count × [4 byte term][8 byte install time, Unix ns][32 byte key]
const (
	keyringVersion   = 1
	keyringHeader    = 1 + 4 + 4
	keyringEntrySize = 4 + 8 + KeySize
)

// encode serializes r; the caller clears the result after use.
func (r *keyring) encode() []byte {
	out := make([]byte, keyringHeader, keyringHeader+len(r.keys)*keyringEntrySize)
	out[0] = keyringVersion
	binary.BigEndian.PutUint32(out[1:], r.active.term)
	binary.BigEndian.PutUint32(out[5:], uint32(len(r.keys)))
	// Terms are written in ascending order so the encoding is deterministic.
	for _, t := range slices.Sorted(maps.Keys(r.keys)) {
		k := r.keys[t]
		out = binary.BigEndian.AppendUint32(out, k.term)
		out = binary.BigEndian.AppendUint64(out, uint64(k.installed.UnixNano()))
		out = append(out, k.value...)
	}
	return out
}

// decodeKeyring parses encode's output, copying key material out of b.
func decodeKeyring(b []byte) (*keyring, error) {
	bad := func(why string) error {
		return core.Errorf(core.CodeInternal, "barrier: stored keyring is malformed: %s", why)
	}
	if len(b) < keyringHeader || b[0] != keyringVersion {
		return nil, bad("bad header")
	}
	activeTerm := binary.BigEndian.Uint32(b[1:])
	n := binary.BigEndian.Uint32(b[5:])
	body := b[keyringHeader:]
	if n == 0 || uint64(len(body)) != uint64(n)*keyringEntrySize {
		return nil, bad("bad key count")
	}
	r := &keyring{keys: make(map[uint32]*dataKey, n)}
	for ; len(body) > 0; body = body[keyringEntrySize:] {
		term := binary.BigEndian.Uint32(body)
		installed := time.Unix(0, int64(binary.BigEndian.Uint64(body[4:]))).UTC()
		if term == rootTerm || r.keys[term] != nil {
			r.zero()
			return nil, bad("zero or repeated term")
		}
		k, err := newDataKey(term, append([]byte(nil), body[12:keyringEntrySize]...), installed)
		if err != nil {
			r.zero()
			return nil, err
		}
		r.keys[term] = k
	}
	if r.active = r.keys[activeTerm]; r.active == nil {
		r.zero()
		return nil, bad("active term missing")
	}
	for t := range r.keys {
		if t > activeTerm {
			r.zero()
			return nil, bad("a term is newer than the active term")
		}
	}
	return r, nil
}
