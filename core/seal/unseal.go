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

// Unseal adds one key share, given as hex or standard base64, to the current
// unseal round. When the round reaches the threshold the shares are combined,
// the root key is decrypted and the barrier is unsealed; the round then ends
// whatever the outcome. Unseal always returns the status after the call, also
// with an error.
//
// Errors (all core.CodeInvalid unless storage fails):
//   - core.ErrNotInitialized;
//   - ErrBadKeyEncoding, or a wrong-length or malformed share: progress kept;
//   - ErrShareProvided for a share already given this round: progress kept;
//   - ErrUnsealFailed (wrapping the cause) when the threshold of shares does
//     not reconstruct the unseal key: progress reset, barrier still sealed.
//
// Unsealing an unsealed seal is a no-op that returns the status.
func (s *Seal) Unseal(ctx context.Context, key string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.loadConfig(ctx)
	if err != nil {
		return s.statusLocked(cfg), err
	}
	if cfg == nil {
		return s.statusLocked(nil), core.ErrNotInitialized
	}
	if !s.barrier.Sealed() {
		return s.statusLocked(cfg), nil
	}
	share, err := decodeShare(key, cfg.SecretShares)
	if err != nil {
		return s.statusLocked(cfg), err
	}
	for _, have := range s.shares {
		if subtle.ConstantTimeCompare(have, share) == 1 {
			clear(share)
			return s.statusLocked(cfg), ErrShareProvided
		}
	}
	if len(s.shares) == 0 {
		s.nonce = newUUID()
	}
	s.shares = append(s.shares, share)
	if len(s.shares) < cfg.SecretThreshold {
		return s.statusLocked(cfg), nil
	}

	// The round is complete; it ends here whether or not it succeeds.
	var unsealKey []byte
	if cfg.SecretShares == 1 {
		unsealKey = append([]byte(nil), s.shares[0]...)
	} else {
		unsealKey, err = shamir.Combine(s.shares)
	}
	s.resetLocked()
	if err != nil {
		return s.statusLocked(cfg), fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	err = s.unsealLocked(ctx, unsealKey)
	clear(unsealKey)
	return s.statusLocked(cfg), err
}

// UnsealWithKey unseals with the combined unseal key (InitResult.UnsealKey),
// for dev mode's auto-unseal. It discards any unseal round in progress.
// Errors: core.ErrNotInitialized, ErrUnsealFailed (wrapped) for a wrong key,
// or a storage error. It is a no-op when already unsealed.
func (s *Seal) UnsealWithKey(ctx context.Context, unsealKey []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.loadConfig(ctx)
	if err != nil {
		return err
	}
	if cfg == nil {
		return core.ErrNotInitialized
	}
	s.resetLocked()
	if !s.barrier.Sealed() {
		return nil
	}
	return s.unsealLocked(ctx, unsealKey)
}

// unsealLocked decrypts the root key with unsealKey and unseals the barrier.
func (s *Seal) unsealLocked(ctx context.Context, unsealKey []byte) error {
	record, err := s.physical.Get(ctx, RootKeyPath)
	if err != nil {
		return core.Errorf(core.CodeInternal, "seal: read root key: %w", err)
	}
	if record == nil {
		return core.Errorf(core.CodeInternal, "seal: root key record %q is missing", RootKeyPath)
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
	if err := s.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("seal: unseal barrier: %w", err)
	}
	return nil
}

// Reset discards the shares of the unseal round in progress.
func (s *Seal) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

// Seal seals the barrier (zeroing its keys) and discards any unseal round in
// progress.
func (s *Seal) Seal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.barrier.Seal()
	s.resetLocked()
}

func (s *Seal) resetLocked() {
	for _, sh := range s.shares {
		clear(sh)
	}
	s.shares, s.nonce = nil, ""
}

// decodeShare decodes a share given as hex (tried first, as Vault does) or
// standard base64 and checks its length for a seal of the given share count.
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
		return nil, core.Invalid("unseal key share must be %d bytes, got %d", want, len(b))
	}
	if shares > 1 && b[len(b)-1] == 0 {
		return nil, core.Invalid("unseal key share is malformed: zero x coordinate")
	}
	return b, nil
}
