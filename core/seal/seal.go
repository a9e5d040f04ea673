// Package seal implements Vigil's Shamir seal: it guards the barrier's root
// key with an unseal key that is split into key shares at initialization and
// reassembled from a threshold of them to unseal, as HashiCorp Vault's
// default "shamir" seal does.
//
// Physical layout (plaintext records, outside the barrier, under the core/seal/
// prefix the barrier reserves):
//
//	core/seal/config    JSON Config
//	core/seal/root-key  the root key, AES-256-GCM encrypted with the unseal key:
//	                    [1 byte version = 1][12-byte nonce][ciphertext || tag],
//	                    with the path as additional authenticated data
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/shamir"
	"github.com/vigilsec/vigil/core/storage"
)

// Physical keys written by the seal.
const (
	ConfigPath  = "core/seal/config"
	RootKeyPath = "core/seal/root-key"
)

// KeySize is the size in bytes of the unseal key; with more than one share,
// each share is KeySize+shamir.ShareOverhead bytes.
const KeySize = 32

// Type is the seal type reported in Config and Status.
const Type = "shamir"

const rootKeyVersion = 1

// Sentinel errors; compare with errors.Is. All carry core.CodeInvalid.
var (
	ErrAlreadyInitialized = &core.Error{Code: core.CodeInvalid, Msg: "Vault is already initialized"}
	ErrBadKeyEncoding     = &core.Error{Code: core.CodeInvalid, Msg: "'key' must be a valid hex or base64 string"}
	ErrShareProvided      = &core.Error{Code: core.CodeInvalid, Msg: "unseal key share already provided"}
	// ErrUnsealFailed is wrapped, together with the cause, when a complete set
	// of shares (or an unseal key) does not decrypt the root key.
	ErrUnsealFailed = &core.Error{Code: core.CodeInvalid, Msg: "unseal failed: the key shares do not reconstruct the unseal key"}
)

// Config is the seal configuration stored at ConfigPath.
type Config struct {
	Type            string    `json:"type"`
	SecretShares    int       `json:"secret_shares"`
	SecretThreshold int       `json:"secret_threshold"`
	Nonce           string    `json:"nonce"` // random UUID chosen at initialization
	InitializedAt   time.Time `json:"initialized_at"`
	KeyHolders      int       `json:"key_holders"` // number of distinct share holders (= SecretShares)
}

// InitParams are the sys/init parameters the Shamir seal uses.
type InitParams struct {
	SecretShares    int
	SecretThreshold int
}

// Validate checks p as Vault does and returns a core.CodeInvalid error
// worded like Vault's ("invalid seal configuration: ...").
func (p InitParams) Validate() error {
	var why string
	switch {
	case p.SecretShares < 1:
		why = "shares must be at least one"
	case p.SecretThreshold < 1:
		why = "threshold must be at least one"
	case p.SecretShares > 1 && p.SecretThreshold == 1:
		why = "threshold must be greater than one for multiple shares"
	case p.SecretShares > 255:
		why = "shares must be less than 256"
	case p.SecretThreshold > p.SecretShares:
		why = "threshold cannot be larger than shares"
	default:
		return nil
	}
	return core.Invalid("invalid seal configuration: %s", why)
}

// InitResult is what Init hands back once: the key shares for the key holders
// and the combined unseal key (for dev mode, which stores it to auto-unseal).
type InitResult struct {
	Keys      [][]byte
	UnsealKey []byte
}

// KeysHex returns the shares hex-encoded, as sys/init's "keys".
func (r *InitResult) KeysHex() []string { return encodeAll(r.Keys, hex.EncodeToString) }

// KeysBase64 returns the shares in standard base64, as sys/init's "keys_base64".
func (r *InitResult) KeysBase64() []string {
	return encodeAll(r.Keys, base64.StdEncoding.EncodeToString)
}

func encodeAll(keys [][]byte, enc func([]byte) string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = enc(k)
	}
	return out
}

// Status is the seal state in the shape of Vault's sys/seal-status (the
// caller adds version, cluster and storage fields). Nonce identifies the
// unseal round in progress and is empty when none is.
type Status struct {
	Type        string `json:"type"`
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	T           int    `json:"t"`
	N           int    `json:"n"`
	Progress    int    `json:"progress"`
	Nonce       string `json:"nonce"`
}

// Option configures a Seal.
type Option func(*Seal)

// WithNow sets the clock used for Config.InitializedAt. The default is time.Now.
func WithNow(now func() time.Time) Option { return func(s *Seal) { s.now = now } }

// Seal guards a barrier's root key. physical must be the storage the barrier
// wraps. All methods are safe for concurrent use; they serialize on one mutex,
// so an unseal round is processed one share at a time.
type Seal struct {
	physical storage.Storage
	barrier  *barrier.Barrier
	now      func() time.Time

	mu     sync.Mutex
	config *Config  // cached once the seal is known to be initialized
	shares [][]byte // shares provided in the current unseal round
	nonce  string   // the current round's nonce; "" when no round is in progress
}

// New returns a seal for b, whose physical storage is physical.
func New(physical storage.Storage, b *barrier.Barrier, opts ...Option) *Seal {
	s := &Seal{physical: physical, barrier: b, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Init initializes the seal and the barrier: it generates an unseal key and a
// root key, initializes the barrier with the root key, stores the root key
// encrypted with the unseal key and the seal config, and splits the unseal key
// into p.SecretShares shares (a single share is the unseal key itself).
//
// Like Vault, Init leaves the barrier SEALED. A caller that needs to write
// through the barrier right away (to create the root token, say) calls
// UnsealWithKey(ctx, res.UnsealKey), writes, and calls Seal.
//
// Errors: the Validate error for bad parameters, ErrAlreadyInitialized, or a
// storage error. The seal's records are written in one transaction before the
// barrier's keyring, and initialization counts as done only once both exist,
// so an Init interrupted by a crash can simply be retried.
func (s *Seal) Init(ctx context.Context, p InitParams) (*InitResult, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.readConfig(ctx)
	if err != nil {
		return nil, err
	}
	hasKeyring, err := s.barrier.Initialized(ctx)
	if err != nil {
		return nil, fmt.Errorf("seal: init: %w", err)
	}
	switch {
	case hasKeyring && cfg != nil:
		return nil, ErrAlreadyInitialized
	case hasKeyring:
		return nil, core.Errorf(core.CodeInternal, "seal: init: a barrier keyring exists without a seal configuration; refusing to overwrite it")
	}

	unsealKey, rootKey := randomKey(), randomKey()
	defer clear(rootKey)
	encRoot, err := encryptRootKey(unsealKey, rootKey)
	if err != nil {
		return nil, err
	}
	cfg = &Config{
		Type:            Type,
		SecretShares:    p.SecretShares,
		SecretThreshold: p.SecretThreshold,
		Nonce:           newUUID(),
		InitializedAt:   s.now().UTC(),
		KeyHolders:      p.SecretShares,
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: init: encode config: %w", err)
	}
	var keys [][]byte
	if p.SecretShares == 1 {
		keys = [][]byte{append([]byte(nil), unsealKey...)}
	} else if keys, err = shamir.Split(unsealKey, p.SecretShares, p.SecretThreshold); err != nil {
		return nil, fmt.Errorf("seal: init: %w", err)
	}

	err = storage.Txn(ctx, s.physical, []storage.TxnOp{
		{Kind: storage.OpPut, Key: RootKeyPath, Value: encRoot},
		{Kind: storage.OpPut, Key: ConfigPath, Value: cfgJSON},
	})
	if err != nil {
		return nil, fmt.Errorf("seal: init: write seal records: %w", err)
	}
	if err := s.barrier.Initialize(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("seal: init: %w", err)
	}
	s.config = cfg
	s.resetLocked()
	return &InitResult{Keys: keys, UnsealKey: unsealKey}, nil
}

// Initialized reports whether Init has completed: the seal config and the
// barrier keyring both exist.
func (s *Seal) Initialized(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.loadConfig(ctx)
	return cfg != nil, err
}

// Config returns a copy of the stored seal configuration, or
// core.ErrNotInitialized.
func (s *Seal) Config(ctx context.Context) (Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.loadConfig(ctx)
	if err != nil {
		return Config{}, err
	}
	if cfg == nil {
		return Config{}, core.ErrNotInitialized
	}
	return *cfg, nil
}

// Status returns the seal status. It errors only when storage does.
func (s *Seal) Status(ctx context.Context) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.loadConfig(ctx)
	if err != nil {
		return Status{Type: Type, Sealed: true}, err
	}
	return s.statusLocked(cfg), nil
}

func (s *Seal) statusLocked(cfg *Config) Status {
	st := Status{Type: Type, Sealed: s.barrier.Sealed()}
	if cfg != nil {
		st.Initialized = true
		st.T, st.N = cfg.SecretThreshold, cfg.SecretShares
		st.Progress, st.Nonce = len(s.shares), s.nonce
	}
	return st
}

// loadConfig returns the config if the seal is initialized (config and
// keyring both present), nil if not. Caller holds s.mu.
func (s *Seal) loadConfig(ctx context.Context) (*Config, error) {
	if s.config != nil {
		return s.config, nil
	}
	cfg, err := s.readConfig(ctx)
	if err != nil || cfg == nil {
		return nil, err
	}
	ok, err := s.barrier.Initialized(ctx)
	if err != nil || !ok {
		return nil, err
	}
	s.config = cfg
	return cfg, nil
}

// readConfig reads ConfigPath, returning nil if it is missing.
func (s *Seal) readConfig(ctx context.Context) (*Config, error) {
	var cfg Config
	ok, err := storage.GetJSON(ctx, s.physical, ConfigPath, &cfg)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: read config: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return &cfg, nil
}

func randomKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k) // never returns an error; the runtime aborts instead
	return k
}

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: %w", err)
	}
	return aead, nil
}

func encryptRootKey(unsealKey, rootKey []byte) ([]byte, error) {
	aead, err := newAEAD(unsealKey)
	if err != nil {
		return nil, err
	}
	return aead.Seal([]byte{rootKeyVersion}, nil, rootKey, []byte(RootKeyPath)), nil
}

// decryptRootKey authenticates and decrypts a stored root-key record.
func decryptRootKey(unsealKey, record []byte) ([]byte, error) {
	if len(unsealKey) != KeySize {
		return nil, fmt.Errorf("unseal key is %d bytes, want %d", len(unsealKey), KeySize)
	}
	if len(record) < 1 || record[0] != rootKeyVersion {
		return nil, core.Errorf(core.CodeInternal, "seal: stored root key record is malformed")
	}
	aead, err := newAEAD(unsealKey)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, nil, record[1:], []byte(RootKeyPath))
}
