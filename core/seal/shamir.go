package seal

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/shamir"
)

// ShamirSeal is the Shamir seal as a Seal: it wraps with AES-256-GCM under
// the unseal key that the key shares reconstruct. It has no backend, so it
// is always healthy.
type ShamirSeal struct{ key []byte }

var _ Seal = (*ShamirSeal)(nil)

// NewShamir returns the Shamir seal for an unseal key of KeySize bytes.
// The key is copied.
func NewShamir(unsealKey []byte) (*ShamirSeal, error) {
	if len(unsealKey) != KeySize {
		return nil, core.Invalid("shamir seal: unseal key must be %d bytes, got %d", KeySize, len(unsealKey))
	}
	return &ShamirSeal{key: append([]byte(nil), unsealKey...)}, nil
}

// Type implements Seal.
func (s *ShamirSeal) Type() string { return Type }

// Wrap implements Seal: [1][nonce][ciphertext||tag], as stored at RootKeyPath.
func (s *ShamirSeal) Wrap(_ context.Context, plaintext []byte) ([]byte, error) {
	return encryptRootKey(s.key, plaintext)
}

// Unwrap implements Seal. A blob made under another key fails with an error
// wrapping ErrUnsealFailed.
func (s *ShamirSeal) Unwrap(_ context.Context, blob []byte) ([]byte, error) {
	pt, err := decryptRootKey(s.key, blob)
	if err != nil {
		var coded *core.Error
		if errors.As(err, &coded) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	return pt, nil
}

// Health implements Seal; the Shamir seal has no backend.
func (s *ShamirSeal) Health(context.Context) error { return nil }

// splitKey splits key into shares; one share is the key itself.
func splitKey(key []byte, shares, threshold int) ([][]byte, error) {
	if shares == 1 {
		return [][]byte{append([]byte(nil), key...)}, nil
	}
	return shamir.Split(key, shares, threshold)
}

// combineShares reverses splitKey.
func combineShares(shares [][]byte, total int) ([]byte, error) {
	if total == 1 {
		return append([]byte(nil), shares[0]...), nil
	}
	return shamir.Combine(shares)
}
