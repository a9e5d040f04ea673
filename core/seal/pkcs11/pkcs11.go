//go:build cgo

package pkcs11

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/ThalesGroup/crypto11"

	"github.com/vigilsec/vigil/core/seal"
)

// Available reports whether this binary can load PKCS#11 modules.
const Available = true

const (
	blobVersion = 1
	ivSize      = 12
)

// aad binds ciphertexts to their use.
var aad = []byte("vigil root key")

// Seal wraps with an AES key in a PKCS#11 token. The module is opened and
// logged into on first use, and again after a failure, so the server starts
// while the token is unavailable and recovers when it returns. Safe for
// concurrent use.
type Seal struct {
	cfg Config

	mu  sync.Mutex
	ctx *crypto11.Context
	key *crypto11.SecretKey
}

var _ seal.Seal = (*Seal)(nil)

// Factory builds the seal from a config block (seal.Factory). It does not
// open the module.
func Factory(_ context.Context, o seal.Options) (seal.Seal, error) {
	c, err := ParseConfig(o)
	if err != nil {
		return nil, err
	}
	return New(c), nil
}

// New returns a seal for c; the token is opened on first use.
func New(c Config) *Seal { return &Seal{cfg: c} }

// Type implements seal.Seal.
func (s *Seal) Type() string { return Type }

func (s *Seal) where() string {
	t := s.cfg.TokenLabel
	if t == "" && s.cfg.Slot != nil {
		t = fmt.Sprintf("slot %d", *s.cfg.Slot)
	}
	k := s.cfg.KeyLabel
	if k == "" {
		k = "id " + s.cfg.KeyID
	}
	return fmt.Sprintf("token %q key %q", t, k)
}

// open returns the key, opening the module, logging in and finding (or
// generating) the key when needed. Caller holds s.mu.
func (s *Seal) open() (*crypto11.SecretKey, error) {
	if s.key != nil {
		return s.key, nil
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: s.cfg.Lib, TokenLabel: s.cfg.TokenLabel, SlotNumber: s.cfg.Slot, Pin: s.cfg.Pin, GCMIVLength: ivSize})
	if err != nil {
		return nil, fmt.Errorf("open module %s, %s: %w", s.cfg.Lib, s.where(), err)
	}
	var id, label []byte
	if s.cfg.KeyID != "" {
		id = []byte(s.cfg.KeyID)
	}
	if s.cfg.KeyLabel != "" {
		label = []byte(s.cfg.KeyLabel)
	}
	var key *crypto11.SecretKey
	keys, err := ctx.FindKeys(id, label)
	if len(keys) > 1 {
		_ = ctx.Close()
		return nil, fmt.Errorf("%s: %d keys match; give key_id to choose one", s.where(), len(keys))
	}
	if len(keys) == 1 {
		key = keys[0]
	}
	if err == nil && key == nil {
		if !s.cfg.GenerateKey {
			_ = ctx.Close()
			return nil, fmt.Errorf("%s: the key does not exist (set generate_key = \"true\" to create it)", s.where())
		}
		if id == nil {
			id = make([]byte, 16)
			rand.Read(id)
		}
		key, err = ctx.GenerateSecretKeyWithLabel(id, label, 256, crypto11.CipherAES)
	}
	if err != nil {
		_ = ctx.Close()
		return nil, fmt.Errorf("%s: find or generate the key: %w", s.where(), err)
	}
	s.ctx, s.key = ctx, key
	return key, nil
}

// reset closes the module after a failure so the next call reopens it.
func (s *Seal) reset() {
	if s.ctx != nil {
		_ = s.ctx.Close()
	}
	s.ctx, s.key = nil, nil
}

// do runs f with the key, turning crypto11's panics into errors and
// reopening the token after any failure.
func (s *Seal) do(f func(key *crypto11.SecretKey) ([]byte, error)) (out []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, err := s.open()
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%s: %v", s.where(), p)
		}
		if err != nil {
			s.reset()
		}
	}()
	return f(key)
}

// Wrap implements seal.Seal: [1][12-byte IV][ciphertext||tag].
func (s *Seal) Wrap(_ context.Context, plaintext []byte) ([]byte, error) {
	return s.do(func(key *crypto11.SecretKey) ([]byte, error) {
		aead, err := key.NewGCM()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.where(), err)
		}
		iv := make([]byte, ivSize)
		rand.Read(iv)
		out := append([]byte{blobVersion}, iv...)
		return aead.Seal(out, iv, plaintext, aad), nil
	})
}

// Unwrap implements seal.Seal.
func (s *Seal) Unwrap(_ context.Context, blob []byte) ([]byte, error) {
	if len(blob) < 1+ivSize+16 || blob[0] != blobVersion {
		return nil, errors.New("the wrapped key is not a pkcs11 blob")
	}
	pt, err := s.do(func(key *crypto11.SecretKey) ([]byte, error) {
		aead, err := key.NewGCM()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.where(), err)
		}
		pt, err := aead.Open(nil, blob[1:1+ivSize], blob[1+ivSize:], aad)
		if err != nil {
			return nil, fmt.Errorf("%s: decrypt: %w", s.where(), err)
		}
		return pt, nil
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

// Health implements seal.Seal: the token opens and the key encrypts.
func (s *Seal) Health(ctx context.Context) error {
	_, err := s.Wrap(ctx, []byte("health"))
	return err
}

// Close logs out and unloads the module.
func (s *Seal) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	return nil
}
