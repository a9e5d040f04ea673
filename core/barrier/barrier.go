// Package barrier is Vigil's encryption barrier: a storage.Storage that
// encrypts every value with AES-256-GCM before it reaches the physical
// backend, using a keyring of data keys that is itself encrypted with the
// root key held by the seal.
//
// Physical value format, for every key written through the barrier:
//
//	[1 byte version = 1][4 byte big-endian key term][12-byte random nonce][ciphertext || 16-byte tag]
//
// The storage key is the additional authenticated data, so a value copied or
// swapped to another key fails to decrypt. The keyring itself is stored at
// KeyringPath in the same format with term 0 (the root key).
package barrier

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// KeyringPath is the physical key holding the encrypted keyring.
const KeyringPath = "core/keyring"

// KeySize is the size in bytes of the root key and of every data key.
const KeySize = 32

const (
	formatVersion = 1
	headerSize    = 1 + 4
	nonceSize     = 12
	tagSize       = 16
	// Overhead is how many bytes longer a stored value is than its plaintext.
	Overhead = headerSize + nonceSize + tagSize

	rootTerm = 0 // the term under which the keyring is encrypted with the root key
)

// reservedPrefixes are physical keys the barrier refuses to read or write
// through itself: the keyring, and the seal's plaintext records under
// core/seal/ (written on the physical storage by package seal). Other core/
// keys are ordinary barrier-encrypted data.
var reservedPrefixes = []string{KeyringPath, "core/seal/"}

// Sentinel errors; compare with errors.Is. Operations on a sealed barrier
// return core.ErrSealed.
var (
	// ErrBadRootKey means the root key given to Unseal does not decrypt the keyring.
	ErrBadRootKey = &core.Error{Code: core.CodeInvalid, Msg: "barrier: root key does not decrypt the keyring"}
	// ErrAlreadyInitialized is returned by Initialize on an initialized barrier.
	ErrAlreadyInitialized = &core.Error{Code: core.CodeInvalid, Msg: "barrier: already initialized"}
	// ErrReserved is returned for keys the barrier reserves for its own use.
	ErrReserved = &core.Error{Code: core.CodePermissionDenied, Msg: "barrier: key is reserved"}
	// ErrDecrypt means a stored value is corrupt, truncated, was tampered with,
	// was moved from another key, or uses a term missing from the keyring.
	ErrDecrypt = &core.Error{Code: core.CodeInternal, Msg: "barrier: stored value failed to decrypt"}
)

// Option configures a Barrier.
type Option func(*Barrier)

// WithNow sets the clock used for key install times. The default is time.Now.
func WithNow(now func() time.Time) Option { return func(b *Barrier) { b.now = now } }

// Barrier encrypts a physical storage. It starts sealed; Unseal with the root
// key loads the keyring. All methods are safe for concurrent use: reads and
// writes share a read lock (held across the physical call, so once Seal
// returns no barrier operation is still in flight), while Unseal, Seal,
// Rotate and Reload take the write lock.
type Barrier struct {
	physical storage.Storage
	now      func() time.Time

	mu      sync.RWMutex
	rootKey []byte   // nil when sealed
	ring    *keyring // nil when sealed
}

var (
	_ storage.Storage       = (*Barrier)(nil)
	_ storage.Transactional = (*Barrier)(nil)
)

// New returns a sealed barrier over physical.
func New(physical storage.Storage, opts ...Option) *Barrier {
	b := &Barrier{physical: physical, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Initialized reports whether a keyring exists on the physical storage.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	v, err := b.physical.Get(ctx, KeyringPath)
	if err != nil {
		return false, fmt.Errorf("barrier: read keyring: %w", err)
	}
	return v != nil, nil
}

// Initialize creates a keyring with term 1 and a fresh random data key and
// stores it, encrypted with rootKey (KeySize bytes), at KeyringPath. The
// barrier stays sealed. It returns ErrAlreadyInitialized if a keyring exists
// and a core.CodeInvalid error for a root key of the wrong size. rootKey is
// not retained.
func (b *Barrier) Initialize(ctx context.Context, rootKey []byte) error {
	if len(rootKey) != KeySize {
		return core.Invalid("barrier: root key must be %d bytes, got %d", KeySize, len(rootKey))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ok, err := b.Initialized(ctx)
	if err != nil {
		return err
	}
	if ok {
		return ErrAlreadyInitialized
	}
	ring, err := newKeyring(b.now())
	if err != nil {
		return err
	}
	defer ring.zero()
	return b.persist(ctx, rootKey, ring)
}

// Unseal decrypts the keyring with rootKey and opens the barrier. A key that
// does not decrypt the keyring yields an error wrapping ErrBadRootKey and the
// barrier stays sealed; an uninitialized barrier yields core.ErrNotInitialized.
// Unsealing an unsealed barrier with its own root key is a no-op; with another
// key it returns ErrBadRootKey. The barrier keeps its own copy of rootKey.
func (b *Barrier) Unseal(ctx context.Context, rootKey []byte) error {
	if len(rootKey) != KeySize {
		return fmt.Errorf("barrier: unseal: root key must be %d bytes, got %d: %w", KeySize, len(rootKey), ErrBadRootKey)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ring != nil {
		if !equalKeys(b.rootKey, rootKey) {
			return fmt.Errorf("barrier: unseal: %w", ErrBadRootKey)
		}
		return nil
	}
	ring, err := b.load(ctx, rootKey)
	if err != nil {
		return err
	}
	b.rootKey = append([]byte(nil), rootKey...)
	b.ring = ring
	return nil
}

// Seal zeroes the root key and data keys held in memory and closes the
// barrier. It waits for in-flight operations. Sealing a sealed barrier is a
// no-op. (The expanded AES key schedules inside crypto/cipher cannot be
// zeroed; they become unreachable.)
func (b *Barrier) Seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.rootKey)
	b.rootKey = nil
	if b.ring != nil {
		b.ring.zero()
		b.ring = nil
	}
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.ring == nil
}

// Rotate adds a new term with a fresh data key, makes it the key for all new
// writes, and persists the keyring. Values written under older terms remain
// readable. It returns the new term, or core.ErrSealed. If persisting fails
// the in-memory keyring is unchanged.
func (b *Barrier) Rotate(ctx context.Context) (uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ring == nil {
		return 0, core.ErrSealed
	}
	next, err := b.ring.rotated(b.now())
	if err != nil {
		return 0, err
	}
	if err := b.persist(ctx, b.rootKey, next); err != nil {
		next.zeroNewest()
		return 0, err
	}
	b.ring = next
	return next.active.term, nil
}

// Reload re-reads the keyring from physical storage, for when another node
// rotated it. It returns core.ErrSealed when sealed, an error wrapping
// ErrBadRootKey if the stored keyring no longer opens with the root key, and a
// core.CodeInternal error (leaving the keyring unchanged) if the stored
// keyring lacks a term this barrier already holds, which would make data
// unreadable (a stale read).
func (b *Barrier) Reload(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ring == nil {
		return core.ErrSealed
	}
	ring, err := b.load(ctx, b.rootKey)
	if err != nil {
		return err
	}
	for term := range b.ring.keys {
		if _, ok := ring.keys[term]; !ok {
			ring.zero()
			return core.Errorf(core.CodeInternal, "barrier: reload: stored keyring lacks term %d (stale read?)", term)
		}
	}
	ring.adoptCounts(b.ring)
	b.ring.zero()
	b.ring = ring
	return nil
}

// ActiveTerm returns the term used for new writes and when its key was
// installed, or (0, zero time) when sealed.
func (b *Barrier) ActiveTerm() (uint32, time.Time) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return 0, time.Time{}
	}
	return b.ring.active.term, b.ring.active.installed
}

// KeyStatus is the barrier key state reported by sys/key-status.
type KeyStatus struct {
	Term        uint32    `json:"term"`
	InstallTime time.Time `json:"install_time"`
	// Encryptions counts values this process encrypted with the active key
	// since it was unsealed; it is not persisted or shared across nodes.
	// A random-nonce GCM key should be rotated well before 2^32 encryptions.
	Encryptions uint64 `json:"encryptions"`
}

// KeyStatus returns the active key's status, or core.ErrSealed.
func (b *Barrier) KeyStatus() (KeyStatus, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return KeyStatus{}, core.ErrSealed
	}
	a := b.ring.active
	return KeyStatus{Term: a.term, InstallTime: a.installed, Encryptions: a.encryptions.Load()}, nil
}

// Get returns the decrypted value at key, or (nil, nil) if it is missing.
// Errors: core.ErrSealed, ErrReserved, ErrDecrypt (wrapped) for a value that
// does not authenticate, or the physical storage's error.
func (b *Barrier) Get(ctx context.Context, key string) ([]byte, error) {
	if reserved(key) {
		return nil, reservedErr(key)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return nil, core.ErrSealed
	}
	raw, err := b.physical.Get(ctx, key)
	if err != nil || raw == nil {
		return nil, err
	}
	return b.ring.open(key, raw)
}

// Put encrypts value with the active key and stores it at key. Errors:
// core.ErrSealed, ErrReserved, or the physical storage's error.
func (b *Barrier) Put(ctx context.Context, key string, value []byte) error {
	if reserved(key) {
		return reservedErr(key)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return core.ErrSealed
	}
	return b.physical.Put(ctx, key, b.ring.seal(key, value))
}

// Encrypt returns what Put would store for value at key, without storing
// it: a value only a holder of this barrier's keyring can open (with Decrypt,
// for the same key). The cluster join uses it for a challenge that only a
// node holding the unseal keys can answer. Errors: core.ErrSealed.
func (b *Barrier) Encrypt(key string, value []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return nil, core.ErrSealed
	}
	return b.ring.seal(key, value), nil
}

// Decrypt opens raw, made by Encrypt (or stored by Put) for key. Errors:
// core.ErrSealed, or ErrDecrypt (wrapped) when raw does not authenticate.
func (b *Barrier) Decrypt(key string, raw []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return nil, core.ErrSealed
	}
	return b.ring.open(key, raw)
}

// Delete removes key. Errors: core.ErrSealed, ErrReserved, or the physical
// storage's error.
func (b *Barrier) Delete(ctx context.Context, key string) error {
	if reserved(key) {
		return reservedErr(key)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return core.ErrSealed
	}
	return b.physical.Delete(ctx, key)
}

// List passes through to the physical storage (keys are not secret). It
// returns core.ErrSealed when sealed.
func (b *Barrier) List(ctx context.Context, prefix string) ([]string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return nil, core.ErrSealed
	}
	return b.physical.List(ctx, prefix)
}

// Txn encrypts every put and hands all operations to the physical storage in
// one storage.Txn call, so they are atomic exactly when the physical storage
// is Transactional. Nothing is written if any operation is invalid (reserved
// key, unknown kind). Errors: core.ErrSealed, ErrReserved, a core.CodeInvalid
// error, or the physical storage's error.
func (b *Barrier) Txn(ctx context.Context, ops []storage.TxnOp) error {
	for _, op := range ops {
		if reserved(op.Key) {
			return reservedErr(op.Key)
		}
		if op.Kind != storage.OpPut && op.Kind != storage.OpDelete {
			return core.Invalid("barrier: unknown transaction op kind %d", op.Kind)
		}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.ring == nil {
		return core.ErrSealed
	}
	enc := make([]storage.TxnOp, len(ops))
	for i, op := range ops {
		enc[i] = storage.TxnOp{Kind: op.Kind, Key: op.Key}
		if op.Kind == storage.OpPut {
			enc[i].Value = b.ring.seal(op.Key, op.Value)
		}
	}
	return storage.Txn(ctx, b.physical, enc)
}

// load reads and decrypts the keyring with rootKey. Caller holds b.mu.
func (b *Barrier) load(ctx context.Context, rootKey []byte) (*keyring, error) {
	raw, err := b.physical.Get(ctx, KeyringPath)
	if err != nil {
		return nil, fmt.Errorf("barrier: read keyring: %w", err)
	}
	if raw == nil {
		return nil, core.ErrNotInitialized
	}
	aead, err := newAEAD(rootKey)
	if err != nil {
		return nil, err
	}
	plain, err := openValue(KeyringPath, raw, func(term uint32) cipher.AEAD {
		if term == rootTerm {
			return aead
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("barrier: unseal: %w: %w", ErrBadRootKey, err)
	}
	defer clear(plain)
	return decodeKeyring(plain)
}

// persist encrypts ring with rootKey and writes it to KeyringPath.
func (b *Barrier) persist(ctx context.Context, rootKey []byte, ring *keyring) error {
	plain := ring.encode()
	defer clear(plain)
	aead, err := newAEAD(rootKey)
	if err != nil {
		return err
	}
	if err := b.physical.Put(ctx, KeyringPath, sealValue(aead, rootTerm, KeyringPath, plain)); err != nil {
		return fmt.Errorf("barrier: write keyring: %w", err)
	}
	return nil
}

// equalKeys compares two keys in constant time.
func equalKeys(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

func reserved(key string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func reservedErr(key string) error { return fmt.Errorf("barrier: %q: %w", key, ErrReserved) }

// newAEAD returns AES-256-GCM with random nonces prepended to the ciphertext.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, core.Errorf(core.CodeInternal, "barrier: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "barrier: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "barrier: %w", err)
	}
	return aead, nil
}

// sealValue encrypts plain for storage at key under term, in the barrier format.
func sealValue(aead cipher.AEAD, term uint32, key string, plain []byte) []byte {
	out := make([]byte, headerSize, headerSize+nonceSize+len(plain)+tagSize)
	out[0] = formatVersion
	binary.BigEndian.PutUint32(out[1:headerSize], term)
	return aead.Seal(out, nil, plain, []byte(key))
}

// openValue authenticates and decrypts raw read from key, choosing the AEAD by
// the term in the header (lookup returns nil for an unknown term). It never
// modifies raw and allocates only the plaintext.
func openValue(key string, raw []byte, lookup func(term uint32) cipher.AEAD) ([]byte, error) {
	if len(raw) < Overhead {
		return nil, fmt.Errorf("%w: %q is %d bytes, shorter than the %d-byte minimum", ErrDecrypt, key, len(raw), Overhead)
	}
	if raw[0] != formatVersion {
		return nil, fmt.Errorf("%w: %q has format version %d", ErrDecrypt, key, raw[0])
	}
	term := binary.BigEndian.Uint32(raw[1:headerSize])
	aead := lookup(term)
	if aead == nil {
		return nil, fmt.Errorf("%w: %q uses unknown key term %d", ErrDecrypt, key, term)
	}
	body := raw[headerSize:]
	plain, err := aead.Open(make([]byte, 0, len(body)-nonceSize-tagSize), nil, body, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrDecrypt, key, err)
	}
	return plain, nil
}
