package seal

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/shamir"
)

// round collects the distinct shares of one threshold round (unseal,
// migration, rekey, root generation). It is not safe for concurrent use;
// its owner serializes.
type round struct {
	nonce  string
	shares [][]byte
}

// Round is a threshold round for callers outside the package (root-token
// generation): the shares given so far and the round's nonce.
type Round = round

// Add appends share; see add.
func (r *round) Add(share []byte) error { return r.add(share) }

// Shares returns the shares given (not copies: the round owns them).
func (r *round) Shares() [][]byte { return r.shares }

// Len is the number of shares given.
func (r *round) Len() int { return len(r.shares) }

// Nonce identifies the round ("" before the first share unless set).
func (r *round) Nonce() string { return r.nonce }

// Start begins a round with a fresh nonce, discarding any shares.
func (r *round) Start() string { r.reset(); r.nonce = newUUID(); return r.nonce }

// Reset zeroes and discards the shares and the nonce.
func (r *round) Reset() { r.reset() }

// add appends share, starting the round (and its nonce) with the first.
// A share already given this round is ErrShareProvided.
func (r *round) add(share []byte) error {
	for _, have := range r.shares {
		if subtle.ConstantTimeCompare(have, share) == 1 {
			return ErrShareProvided
		}
	}
	if len(r.shares) == 0 && r.nonce == "" {
		r.nonce = newUUID()
	}
	r.shares = append(r.shares, share)
	return nil
}

func (r *round) reset() {
	for _, sh := range r.shares {
		clear(sh)
	}
	r.shares, r.nonce = nil, ""
}

// Unseal adds one key share, given as hex or standard base64, to the current
// unseal round. When the round reaches the threshold the shares are combined,
// the root key is decrypted and the barrier is unsealed; the round then ends
// whatever the outcome. Unseal always returns the status after the call, also
// with an error.
//
// Errors (all core.CodeInvalid unless storage fails):
//   - core.ErrNotInitialized;
//   - ErrMigrationPending when the configured seal differs from the stored
//     one (use Migrate), ErrAutoUnseal when an auto seal is configured;
//   - ErrBadKeyEncoding, or a wrong-length or malformed share: progress kept;
//   - ErrShareProvided for a share already given this round: progress kept;
//   - ErrUnsealFailed (wrapping the cause) when the threshold of shares does
//     not reconstruct the unseal key: progress reset, barrier still sealed.
//
// Unsealing an unsealed seal is a no-op that returns the status.
func (m *Manager) Unseal(ctx context.Context, key string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	if err != nil {
		return m.statusLocked(cfg), err
	}
	if cfg == nil {
		return m.statusLocked(nil), core.ErrNotInitialized
	}
	if !m.barrier.Sealed() {
		return m.statusLocked(cfg), nil
	}
	if pending, perr := m.migrationLocked(cfg); pending {
		if perr != nil {
			return m.statusLocked(cfg), perr
		}
		return m.statusLocked(cfg), ErrMigrationPending
	}
	if m.auto != nil {
		return m.statusLocked(cfg), ErrAutoUnseal
	}
	share, err := decodeShare(key, cfg.SecretShares)
	if err != nil {
		return m.statusLocked(cfg), err
	}
	if err := m.unseal.add(share); err != nil {
		clear(share)
		return m.statusLocked(cfg), err
	}
	if len(m.unseal.shares) < cfg.SecretThreshold {
		return m.statusLocked(cfg), nil
	}

	// The round is complete; it ends here whether or not it succeeds.
	unsealKey, err := combineShares(m.unseal.shares, cfg.SecretShares)
	m.unseal.reset()
	if err != nil {
		return m.statusLocked(cfg), fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	err = m.unsealLocked(ctx, unsealKey)
	clear(unsealKey)
	return m.statusLocked(cfg), err
}

// UnsealWithKey unseals a Shamir seal with the combined unseal key
// (InitResult.UnsealKey), for dev mode's auto-unseal. It discards any
// unseal round in progress. Errors: core.ErrNotInitialized, ErrUnsealFailed
// (wrapped) for a wrong key, or a storage error. It is a no-op when already
// unsealed.
func (m *Manager) UnsealWithKey(ctx context.Context, unsealKey []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	if err != nil {
		return err
	}
	if cfg == nil {
		return core.ErrNotInitialized
	}
	m.unseal.reset()
	if !m.barrier.Sealed() {
		return nil
	}
	return m.unsealLocked(ctx, unsealKey)
}

// AutoUnseal unwraps the root key with the configured auto seal and unseals
// the barrier. It is a no-op when unsealed. Errors: core.ErrNotInitialized,
// a core.CodeInvalid error when no auto seal is configured,
// ErrMigrationPending, or the seal's error — naming the seal type and the
// cause, wrapping ErrSealUnavailable when the backend could not be used —
// after which the caller retries.
func (m *Manager) AutoUnseal(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	if err != nil {
		return err
	}
	if cfg == nil {
		return core.ErrNotInitialized
	}
	if !m.barrier.Sealed() {
		return nil
	}
	if m.auto == nil {
		return core.Invalid("no auto seal is configured")
	}
	if pending, perr := m.migrationLocked(cfg); pending {
		if perr != nil {
			return perr
		}
		return ErrMigrationPending
	}
	record, err := m.rootKeyRecord(ctx)
	if err != nil {
		return err
	}
	rootKey, err := m.unwrapRecord(ctx, m.auto, record)
	if err != nil {
		return err
	}
	defer clear(rootKey)
	if err := m.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("%s seal: the unwrapped root key does not open the barrier: %w", m.auto.Type(), err)
	}
	return nil
}

// unsealLocked decrypts the Shamir root-key record with unsealKey and
// unseals the barrier.
func (m *Manager) unsealLocked(ctx context.Context, unsealKey []byte) error {
	record, err := m.rootKeyRecord(ctx)
	if err != nil {
		return err
	}
	rootKey, err := decryptRootKey(unsealKey, record)
	if err != nil {
		var coded *core.Error
		if errors.As(err, &coded) {
			return err // malformed record: not the key holders' fault
		}
		return fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	defer clear(rootKey)
	if err := m.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("seal: unseal barrier: %w", err)
	}
	return nil
}

// Reset discards the shares of the unseal round in progress.
func (m *Manager) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unseal.reset()
}

// Seal seals the barrier (zeroing its keys) and discards any unseal round in
// progress.
func (m *Manager) Seal() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.barrier.Seal()
	m.unseal.reset()
}

// decodeShare decodes a share given as hex (tried first, as Vault does) or
// standard base64 and checks its length for a key of the given share count.
func decodeShare(key string, shares int) ([]byte, error) {
	b, err := hex.DecodeString(key)
	if err != nil {
		if b, err = base64.StdEncoding.DecodeString(key); err != nil {
			return nil, ErrBadKeyEncoding
		}
	}
	want := KeySize
	if shares > 1 {
		want += shamir.ShareOverhead
	}
	if len(b) != want {
		return nil, core.Invalid("key share must be %d bytes, got %d", want, len(b))
	}
	if shares > 1 && b[len(b)-1] == 0 {
		return nil, core.Invalid("key share is malformed: zero x coordinate")
	}
	return b, nil
}

// DecodeShare decodes a held share (hex or base64) for the current key and
// checks its length. For key-custody drills, which verify shares one by one.
func (m *Manager) DecodeShare(ctx context.Context, key string) ([]byte, error) {
	cfg, err := m.Config(ctx)
	if err != nil {
		return nil, err
	}
	n, _ := cfg.Held()
	return decodeShare(key, n)
}
