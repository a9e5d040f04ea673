package seal

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/storage"
)

// RekeyParams are the new shares of a rekey.
type RekeyParams struct {
	SecretShares    int
	SecretThreshold int
	Holders         []string
}

// RekeyStatus is a rekey round's state, in the shape of Vault's
// sys/rekey/init: T and N are the new shares, Required the current
// threshold.
type RekeyStatus struct {
	Nonce    string
	Started  bool
	T, N     int
	Progress int
	Required int
}

// RekeyResult is the outcome of a completed rekey.
type RekeyResult struct {
	Keys   [][]byte
	Shares *custody.ShareSet
	Config Config
}

type rekeyOp struct {
	recovery bool
	params   RekeyParams
	round    round
}

// heldTarget checks that recovery names this server's held key: the unseal
// key for Shamir, the recovery key for an auto seal.
func heldTarget(cfg *Config, recovery bool) error {
	switch {
	case recovery && !cfg.Recovery():
		return core.Invalid("this server uses the Shamir seal and has no recovery key: rekey the unseal key (sys/rekey)")
	case !recovery && cfg.Recovery():
		return core.Invalid("this server uses the %s seal: rekey the recovery key (sys/rekey-recovery-key, vigil operator rekey -target=recovery)", cfg.Type)
	}
	return nil
}

// RekeyInit starts a rekey of the held key (recovery selects the recovery
// key). Errors: core.ErrSealed, a validation error, a rekey already in
// progress, or the wrong target for this seal.
func (m *Manager) RekeyInit(ctx context.Context, recovery bool, p RekeyParams) (RekeyStatus, error) {
	if err := validateShares("", p.SecretShares, p.SecretThreshold); err != nil {
		return RekeyStatus{}, err
	}
	if err := validateHolders(p.Holders, p.SecretShares); err != nil {
		return RekeyStatus{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.unsealedConfigLocked(ctx)
	if err != nil {
		return RekeyStatus{}, err
	}
	if err := heldTarget(cfg, recovery); err != nil {
		return RekeyStatus{}, err
	}
	if m.rekey != nil {
		return RekeyStatus{}, core.Invalid("a rekey is already in progress (nonce %s); cancel it first", m.rekey.round.nonce)
	}
	m.rekey = &rekeyOp{recovery: recovery, params: p}
	m.rekey.round.Start()
	return m.rekeyStatusLocked(cfg, recovery), nil
}

// RekeyStatus returns the state of the rekey round for the target.
func (m *Manager) RekeyStatus(ctx context.Context, recovery bool) (RekeyStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.unsealedConfigLocked(ctx)
	if err != nil {
		return RekeyStatus{}, err
	}
	if err := heldTarget(cfg, recovery); err != nil {
		return RekeyStatus{}, err
	}
	return m.rekeyStatusLocked(cfg, recovery), nil
}

func (m *Manager) rekeyStatusLocked(cfg *Config, recovery bool) RekeyStatus {
	_, t := cfg.Held()
	st := RekeyStatus{Required: t}
	if op := m.rekey; op != nil && op.recovery == recovery {
		st.Started, st.Nonce = true, op.round.nonce
		st.T, st.N, st.Progress = op.params.SecretThreshold, op.params.SecretShares, len(op.round.shares)
	}
	return st
}

// RekeyCancel discards the rekey round (the nonce must match when given).
func (m *Manager) RekeyCancel(recovery bool, nonce string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	op := m.rekey
	if op == nil || op.recovery != recovery {
		return nil
	}
	if nonce != "" && nonce != op.round.nonce {
		return core.Invalid("incorrect nonce")
	}
	op.round.reset()
	m.rekey = nil
	return nil
}

// RekeyUpdate adds one current share to the rekey round. At the threshold
// the shares are verified, a new key is generated and split, the seal
// records switch to it in one transaction (after its share commitments are
// stored in the barrier), and the result carries the new shares. The
// round ends at the threshold whatever the outcome.
func (m *Manager) RekeyUpdate(ctx context.Context, recovery bool, key, nonce string) (RekeyStatus, *RekeyResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.unsealedConfigLocked(ctx)
	if err != nil {
		return RekeyStatus{}, nil, err
	}
	op := m.rekey
	if op == nil || op.recovery != recovery {
		return RekeyStatus{}, nil, core.Invalid("no rekey is in progress")
	}
	if nonce != op.round.nonce {
		return m.rekeyStatusLocked(cfg, recovery), nil, core.Invalid("incorrect nonce")
	}
	heldN, heldT := cfg.Held()
	share, err := decodeShare(key, heldN)
	if err != nil {
		return m.rekeyStatusLocked(cfg, recovery), nil, err
	}
	if err := op.round.add(share); err != nil {
		clear(share)
		return m.rekeyStatusLocked(cfg, recovery), nil, err
	}
	if len(op.round.shares) < heldT {
		return m.rekeyStatusLocked(cfg, recovery), nil, nil
	}
	heldKey, err := combineShares(op.round.shares, heldN)
	m.rekey = nil
	op.round.reset()
	if err != nil {
		return RekeyStatus{}, nil, fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	defer clear(heldKey)
	res, err := m.rekeyLocked(ctx, cfg, heldKey, op.params)
	return RekeyStatus{Nonce: nonce}, res, err
}

func (m *Manager) rekeyLocked(ctx context.Context, cfg *Config, heldKey []byte, p RekeyParams) (*RekeyResult, error) {
	newKey := randomKey()
	defer clear(newKey)
	next := *cfg
	var ops []storage.TxnOp
	kind := custody.KindUnseal
	if cfg.Recovery() {
		kind = custody.KindRecovery
		if err := m.verifyRecoveryKey(ctx, cfg, heldKey); err != nil {
			return nil, err
		}
		next.RecoveryShares, next.RecoveryThreshold = p.SecretShares, p.SecretThreshold
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: RecoveryCheckPath, Value: recoveryCheck(newKey, cfg.Nonce)})
	} else {
		record, err := m.rootKeyRecord(ctx)
		if err != nil {
			return nil, err
		}
		rootKey, err := decryptRootKey(heldKey, record)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsealFailed, err)
		}
		rec, err := encryptRootKey(newKey, rootKey)
		clear(rootKey)
		if err != nil {
			return nil, err
		}
		next.SecretShares, next.SecretThreshold = p.SecretShares, p.SecretThreshold
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: RootKeyPath, Value: rec})
	}
	shares, err := splitKey(newKey, p.SecretShares, p.SecretThreshold)
	if err != nil {
		return nil, fmt.Errorf("seal: rekey: %w", err)
	}
	set := custody.NewShareSet(kind, shares, p.SecretThreshold, p.Holders, p.SecretShares > 1, m.now())
	next.ShareSet, next.Holders, next.KeyHolders = set.ID, append([]string(nil), p.Holders...), p.SecretShares
	// Commitments first: until the seal records switch they are unused.
	if err := custody.Put(ctx, m.barrier, set); err != nil {
		return nil, fmt.Errorf("seal: rekey: %w", err)
	}
	cfgJSON, err := json.Marshal(&next)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: rekey: encode config: %w", err)
	}
	ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: ConfigPath, Value: cfgJSON})
	if err := storage.Txn(ctx, m.physical, ops); err != nil {
		return nil, fmt.Errorf("seal: rekey: write seal records: %w", err)
	}
	m.config = &next
	return &RekeyResult{Keys: shares, Shares: set, Config: next}, nil
}

// VerifyHeldShares combines a complete set of held shares (root-token
// generation) and checks them: they must reconstruct the unseal key
// (Shamir) or the recovery key (auto seal). The barrier must be unsealed.
func (m *Manager) VerifyHeldShares(ctx context.Context, shares [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.unsealedConfigLocked(ctx)
	if err != nil {
		return err
	}
	heldN, _ := cfg.Held()
	key, err := combineShares(shares, heldN)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	defer clear(key)
	if cfg.Recovery() {
		return m.verifyRecoveryKey(ctx, cfg, key)
	}
	record, err := m.rootKeyRecord(ctx)
	if err != nil {
		return err
	}
	rootKey, err := decryptRootKey(key, record)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	clear(rootKey)
	return nil
}

// HeldThreshold returns the number of held shares and their threshold.
func (m *Manager) HeldThreshold(ctx context.Context) (shares, threshold int, err error) {
	cfg, err := m.Config(ctx)
	if err != nil {
		return 0, 0, err
	}
	shares, threshold = cfg.Held()
	return shares, threshold, nil
}

func (m *Manager) unsealedConfigLocked(ctx context.Context) (*Config, error) {
	cfg, err := m.loadConfig(ctx)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, core.ErrNotInitialized
	}
	if m.barrier.Sealed() {
		return nil, core.ErrSealed
	}
	return cfg, nil
}
