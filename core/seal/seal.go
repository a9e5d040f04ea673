// Package seal guards the barrier's root key. A Seal is one small interface
// — wrap and unwrap the root key, report type and health — implemented by
// the Shamir seal here (the unseal key split into key shares, as HashiCorp
// Vault's default "shamir" seal) and by the auto-unseal seals in the
// subpackages awskms, pkcs11 and transit. One conformance suite
// (core/seal/sealtest) runs against each of them.
//
// The Manager ties a Seal to the barrier: initialisation, the Shamir unseal
// round, auto-unseal, recovery keys (an auto-unsealed server's shares, used
// for rekey and root generation but never to unseal), seal migration, rekey
// and root-token generation rounds.
//
// Physical layout (outside the barrier, under the core/seal/ prefix the
// barrier reserves):
//
//	core/seal/config          JSON Config
//	core/seal/root-key        the root key wrapped by the seal: for Shamir
//	                          [1 byte version = 1][12-byte nonce][ciphertext || tag]
//	                          (AES-256-GCM with the unseal key, the path as
//	                          additional data); for an auto seal the JSON
//	                          {"seal": type, "blob": base64} where blob is what
//	                          the seal's Wrap returned
//	core/seal/recovery-check  auto seals only: HMAC-SHA-256 of a fixed label
//	                          keyed with the recovery key, so recovery shares
//	                          can be checked while the recovery key itself is
//	                          never stored, not even wrapped
//
// The commitments to the held shares (package custody) are in the barrier.
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
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/storage"
)

// Seal is one kind of seal: something that can wrap the root key for
// storage and unwrap it again. Implementations are safe for concurrent use.
//
// Wrap returns an opaque blob; Unwrap returns the plaintext given to Wrap,
// or an error when the blob was not made by this seal's key (a wrong key,
// a tampered blob) or the seal's backend is unreachable. Errors name the
// seal type and the cause. Health reports whether the backend answers
// (and the key can be used) right now; it must not change state.
type Seal interface {
	Type() string
	Wrap(ctx context.Context, plaintext []byte) ([]byte, error)
	Unwrap(ctx context.Context, blob []byte) ([]byte, error)
	Health(ctx context.Context) error
}

// Physical keys written by the seal.
const (
	ConfigPath        = "core/seal/config"
	RootKeyPath       = "core/seal/root-key"
	RecoveryCheckPath = "core/seal/recovery-check"
)

// KeySize is the size in bytes of the unseal key and of the recovery key;
// with more than one share, each share is KeySize+shamir.ShareOverhead bytes.
const KeySize = 32

// Type is the Shamir seal's type name.
const Type = core.SealTypeShamir

const rootKeyVersion = 1

// Sentinel errors; compare with errors.Is. All carry core.CodeInvalid
// unless noted.
var (
	ErrAlreadyInitialized = &core.Error{Code: core.CodeInvalid, Msg: "Vault is already initialized"}
	ErrBadKeyEncoding     = &core.Error{Code: core.CodeInvalid, Msg: "'key' must be a valid hex or base64 string"}
	ErrShareProvided      = &core.Error{Code: core.CodeInvalid, Msg: "unseal key share already provided"}
	// ErrUnsealFailed is wrapped, together with the cause, when a complete set
	// of shares (or an unseal key) does not decrypt the root key.
	ErrUnsealFailed = &core.Error{Code: core.CodeInvalid, Msg: "unseal failed: the key shares do not reconstruct the unseal key"}
	// ErrRecoveryKeyMismatch: a complete set of recovery shares does not
	// reconstruct this server's recovery key.
	ErrRecoveryKeyMismatch = &core.Error{Code: core.CodeInvalid, Msg: "the recovery key shares do not reconstruct the recovery key"}
	// ErrAutoUnseal: unseal keys were given to a server that auto-unseals.
	ErrAutoUnseal = &core.Error{Code: core.CodeInvalid, Msg: "this server is unsealed by its seal, not with key shares (recovery keys are for rekey and root generation)"}
	// ErrMigrationPending: the configured seal differs from the stored one;
	// only `vigil operator unseal -migrate` may proceed.
	ErrMigrationPending = &core.Error{Code: core.CodeInvalid, Msg: "a seal migration is pending: provide the keys with -migrate (sys/unseal with \"migrate\": true)"}
	// ErrNoMigration: -migrate was given but the seals match.
	ErrNoMigration = &core.Error{Code: core.CodeInvalid, Msg: "no seal migration is pending: the configured seal is the stored one"}
	// ErrSealUnavailable matches (errors.Is) every seal failure: the error
	// names the seal type, the step and the cause (core.CodeUnavailable).
	ErrSealUnavailable = &core.Error{Code: core.CodeUnavailable}
)

// Config is the seal configuration stored at ConfigPath.
//
// For the Shamir seal SecretShares/SecretThreshold describe the unseal key
// shares and the recovery fields are zero; for an auto seal the secret
// fields are 1/1 (the seal holds the key) and RecoveryShares and
// RecoveryThreshold describe the recovery key shares.
type Config struct {
	Type              string    `json:"type"`
	SecretShares      int       `json:"secret_shares"`
	SecretThreshold   int       `json:"secret_threshold"`
	RecoveryShares    int       `json:"recovery_shares,omitempty"`
	RecoveryThreshold int       `json:"recovery_threshold,omitempty"`
	Nonce             string    `json:"nonce"` // random UUID chosen at initialization
	InitializedAt     time.Time `json:"initialized_at"`
	KeyHolders        int       `json:"key_holders"` // number of distinct share holders (= held shares)
	// Holders labels the held shares in order (-key-holders), when given.
	Holders []string `json:"holders,omitempty"`
	// ShareSet names the custody commitments to the held shares.
	ShareSet string `json:"share_set,omitempty"`
	// MigratedAt is when the seal type last changed (zero: never).
	MigratedAt time.Time `json:"migrated_at,omitzero"`
}

// Recovery reports whether the held shares are recovery shares (an auto seal).
func (c *Config) Recovery() bool { return c.Type != "" && c.Type != Type }

// Held returns the number of held shares and their threshold: unseal shares
// for Shamir, recovery shares for an auto seal.
func (c *Config) Held() (shares, threshold int) {
	if c.Recovery() {
		return c.RecoveryShares, c.RecoveryThreshold
	}
	return c.SecretShares, c.SecretThreshold
}

// InitParams are the sys/init parameters.
type InitParams struct {
	SecretShares      int
	SecretThreshold   int
	RecoveryShares    int
	RecoveryThreshold int
	// Holders labels the held shares in order (optional; at most one
	// label per share, distinct, non-empty).
	Holders []string
}

// validateShares checks a share count and threshold as Vault does and
// returns a core.CodeInvalid error worded like Vault's.
func validateShares(what string, shares, threshold int) error {
	var why string
	switch {
	case shares < 1:
		why = what + "shares must be at least one"
	case threshold < 1:
		why = what + "threshold must be at least one"
	case shares > 1 && threshold == 1:
		why = what + "threshold must be greater than one for multiple shares"
	case shares > 255:
		why = what + "shares must be less than 256"
	case threshold > shares:
		why = what + "threshold cannot be larger than shares"
	default:
		return nil
	}
	return core.Invalid("invalid seal configuration: %s", why)
}

// Validate checks p for a Shamir seal.
func (p InitParams) Validate() error {
	if err := validateShares("", p.SecretShares, p.SecretThreshold); err != nil {
		return err
	}
	return validateHolders(p.Holders, p.SecretShares)
}

func validateHolders(holders []string, shares int) error {
	if len(holders) == 0 {
		return nil
	}
	if len(holders) != shares {
		return core.Invalid("key_holders names %d holders for %d shares: give one label per share", len(holders), shares)
	}
	seen := map[string]bool{}
	for _, h := range holders {
		switch {
		case h == "":
			return core.Invalid("key_holders: a holder label is empty")
		case len(h) > 128:
			return core.Invalid("key_holders: label %q is longer than 128 characters", h[:32]+"...")
		case seen[h]:
			return core.Invalid("key_holders: %q is named twice; each share goes to a different holder", h)
		}
		seen[h] = true
	}
	return nil
}

// InitResult is what Init hands back once.
type InitResult struct {
	// Keys are the unseal key shares (Shamir) — none for an auto seal.
	Keys [][]byte
	// RecoveryKeys are the recovery key shares (auto seal only).
	RecoveryKeys [][]byte
	// UnsealKey is the combined Shamir unseal key (for dev mode, which
	// stores it to auto-unseal); nil for an auto seal.
	UnsealKey []byte
	// Shares is the commitments to the held shares; the caller stores it
	// with custody.Store once the barrier is unsealed.
	Shares *custody.ShareSet
	Config Config
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
// unseal round in progress and is empty when none is. For an auto seal T
// and N describe the recovery shares, as in Vault.
type Status struct {
	Type         string `json:"type"`
	Initialized  bool   `json:"initialized"`
	Sealed       bool   `json:"sealed"`
	T            int    `json:"t"`
	N            int    `json:"n"`
	Progress     int    `json:"progress"`
	Nonce        string `json:"nonce"`
	Migration    bool   `json:"migration"`
	RecoverySeal bool   `json:"recovery_seal"`
	// Error describes why the seal could not be used, if it could not.
	Error string `json:"error,omitempty"`
}

// Option configures a Manager.
type Option func(*Manager)

// WithNow sets the clock used for Config.InitializedAt. The default is time.Now.
func WithNow(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithAutoSeal makes the Manager auto-unseal with s (config `seal "type"`).
// Without it the Manager uses the Shamir seal.
func WithAutoSeal(s Seal) Option { return func(m *Manager) { m.auto = s } }

// WithDisabledSeal names the seal a migration moves away from (config
// `seal "type" { disabled = "true" }`).
func WithDisabledSeal(s Seal) Option { return func(m *Manager) { m.from = s } }

// Manager guards a barrier's root key with a Seal. physical must be the
// storage the barrier wraps. All methods are safe for concurrent use; they
// serialize on one mutex, so a share round is processed one share at a time.
type Manager struct {
	physical storage.Storage
	barrier  *barrier.Barrier
	now      func() time.Time
	auto     Seal // nil: Shamir
	from     Seal // the disabled seal, when migrating away from an auto seal

	mu     sync.Mutex
	config *Config // cached once the seal is known to be initialized
	unseal round   // the unseal (or migration) round
	rekey  *rekeyOp
	health health
}

// New returns a Manager for b, whose physical storage is physical.
func New(physical storage.Storage, b *barrier.Barrier, opts ...Option) *Manager {
	m := &Manager{physical: physical, barrier: b, now: time.Now}
	for _, o := range opts {
		o(m)
	}
	return m
}

// ConfiguredType is the type of the configured seal ("shamir" without an
// auto seal).
func (m *Manager) ConfiguredType() string {
	if m.auto != nil {
		return m.auto.Type()
	}
	return Type
}

// Auto reports whether an auto seal is configured.
func (m *Manager) Auto() bool { return m.auto != nil }

// Init initializes the seal and the barrier: it generates a root key,
// initializes the barrier with it and stores it wrapped by the seal. With
// the Shamir seal the unseal key is split into p.SecretShares shares (a
// single share is the unseal key itself); with an auto seal a recovery key
// is split into p.RecoveryShares shares and the secret parameters are
// ignored.
//
// Like Vault, Init leaves the barrier SEALED. A Shamir caller that needs to
// write through the barrier right away calls UnsealWithKey(ctx,
// res.UnsealKey); an auto-seal caller calls AutoUnseal.
//
// Errors: a validation error for bad parameters, ErrAlreadyInitialized, the
// seal's error (wrapping ErrSealUnavailable) or a storage error. The seal's
// records are written in one transaction before the barrier's keyring, and
// initialization counts as done only once both exist, so an Init
// interrupted by a crash can simply be retried.
func (m *Manager) Init(ctx context.Context, p InitParams) (*InitResult, error) {
	held, heldT := p.SecretShares, p.SecretThreshold
	kind := custody.KindUnseal
	if m.auto != nil {
		held, heldT, kind = p.RecoveryShares, p.RecoveryThreshold, custody.KindRecovery
		if err := validateShares("recovery ", held, heldT); err != nil {
			return nil, err
		}
	} else if err := validateShares("", held, heldT); err != nil {
		return nil, err
	}
	if err := validateHolders(p.Holders, held); err != nil {
		return nil, err
	}
	if m.auto == nil && m.from != nil {
		return nil, core.Invalid("init: the only seal configured is disabled; enable it or remove it to use the Shamir seal")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.readConfig(ctx)
	if err != nil {
		return nil, err
	}
	hasKeyring, err := m.barrier.Initialized(ctx)
	if err != nil {
		return nil, fmt.Errorf("seal: init: %w", err)
	}
	switch {
	case hasKeyring && cfg != nil:
		return nil, ErrAlreadyInitialized
	case hasKeyring:
		return nil, core.Errorf(core.CodeInternal, "seal: init: a barrier keyring exists without a seal configuration; refusing to overwrite it")
	}

	heldKey, rootKey := randomKey(), randomKey()
	defer clear(rootKey)
	cfg = &Config{Type: m.ConfiguredType(), Nonce: newUUID(), InitializedAt: m.now().UTC(), KeyHolders: held,
		Holders: append([]string(nil), p.Holders...)}
	ops := []storage.TxnOp{}
	if m.auto == nil {
		cfg.SecretShares, cfg.SecretThreshold = held, heldT
		rec, err := encryptRootKey(heldKey, rootKey)
		if err != nil {
			return nil, err
		}
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: RootKeyPath, Value: rec})
	} else {
		cfg.SecretShares, cfg.SecretThreshold = 1, 1
		cfg.RecoveryShares, cfg.RecoveryThreshold = held, heldT
		rec, err := m.wrapRecord(ctx, m.auto, rootKey)
		if err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		ops = append(ops,
			storage.TxnOp{Kind: storage.OpPut, Key: RootKeyPath, Value: rec},
			storage.TxnOp{Kind: storage.OpPut, Key: RecoveryCheckPath, Value: recoveryCheck(heldKey, cfg.Nonce)})
	}
	shares, err := splitKey(heldKey, held, heldT)
	if err != nil {
		return nil, fmt.Errorf("seal: init: %w", err)
	}
	set := custody.NewShareSet(kind, shares, heldT, p.Holders, held > 1, m.now())
	cfg.ShareSet = set.ID
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: init: encode config: %w", err)
	}
	ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: ConfigPath, Value: cfgJSON})
	if err := storage.Txn(ctx, m.physical, ops); err != nil {
		return nil, fmt.Errorf("seal: init: write seal records: %w", err)
	}
	if err := m.barrier.Initialize(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("seal: init: %w", err)
	}
	m.config = cfg
	m.unseal.reset()
	res := &InitResult{Shares: set, Config: *cfg}
	if m.auto == nil {
		res.Keys, res.UnsealKey = shares, heldKey
	} else {
		res.RecoveryKeys = shares
		clear(heldKey)
	}
	return res, nil
}

// Initialized reports whether Init has completed: the seal config and the
// barrier keyring both exist.
func (m *Manager) Initialized(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	return cfg != nil, err
}

// Config returns a copy of the stored seal configuration, or
// core.ErrNotInitialized.
func (m *Manager) Config(ctx context.Context) (Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	if err != nil {
		return Config{}, err
	}
	if cfg == nil {
		return Config{}, core.ErrNotInitialized
	}
	return *cfg, nil
}

// Status returns the seal status. It errors only when storage does.
func (m *Manager) Status(ctx context.Context) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	if err != nil {
		return Status{Type: m.ConfiguredType(), Sealed: true}, err
	}
	return m.statusLocked(cfg), nil
}

func (m *Manager) statusLocked(cfg *Config) Status {
	st := Status{Type: m.ConfiguredType(), Sealed: m.barrier.Sealed(), RecoverySeal: m.auto != nil}
	if cfg != nil {
		st.Initialized = true
		st.N, st.T = cfg.Held()
		if pending, _ := m.migrationLocked(cfg); pending {
			st.Migration = true
			// During a migration the shares asked for are the source's.
			st.Type = cfg.Type
			st.RecoverySeal = cfg.Recovery()
		}
		st.Progress, st.Nonce = len(m.unseal.shares), m.unseal.nonce
	}
	if m.auto != nil || m.from != nil {
		st.Error = m.health.message()
	}
	return st
}

// loadConfig returns the config if the seal is initialized (config and
// keyring both present), nil if not. Caller holds m.mu.
func (m *Manager) loadConfig(ctx context.Context) (*Config, error) {
	if m.config != nil {
		return m.config, nil
	}
	cfg, err := m.readConfig(ctx)
	if err != nil || cfg == nil {
		return nil, err
	}
	ok, err := m.barrier.Initialized(ctx)
	if err != nil || !ok {
		return nil, err
	}
	m.config = cfg
	return cfg, nil
}

// Reload drops the cached configuration (after a snapshot restore, or when
// another node changed it).
func (m *Manager) Reload() {
	m.mu.Lock()
	m.config = nil
	m.mu.Unlock()
}

// readConfig reads ConfigPath, returning nil if it is missing.
func (m *Manager) readConfig(ctx context.Context) (*Config, error) {
	var cfg Config
	ok, err := storage.GetJSON(ctx, m.physical, ConfigPath, &cfg)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: read config: %w", err)
	}
	if !ok {
		return nil, nil
	}
	if cfg.Type == "" {
		cfg.Type = Type
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

// decryptRootKey authenticates and decrypts a stored Shamir root-key record.
func decryptRootKey(unsealKey, record []byte) ([]byte, error) {
	if len(unsealKey) != KeySize {
		return nil, fmt.Errorf("unseal key is %d bytes, want %d", len(unsealKey), KeySize)
	}
	if len(record) < 1 || record[0] != rootKeyVersion {
		return nil, core.Errorf(core.CodeInternal, "seal: stored root key record is not a Shamir record")
	}
	aead, err := newAEAD(unsealKey)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, nil, record[1:], []byte(RootKeyPath))
}
