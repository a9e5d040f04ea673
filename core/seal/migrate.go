package seal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// faultHook, when set (tests only), is called at each migration stage;
// an error stops the migration there, as a crash would.
var faultHook func(stage string) error

func fault(stage string) error {
	if faultHook != nil {
		return faultHook(stage)
	}
	return nil
}

// migrationLocked reports whether the stored seal differs from the
// configured one, and an error when the migration cannot proceed because
// the stored seal is not configured (not even disabled).
func (m *Manager) migrationLocked(cfg *Config) (bool, error) {
	if cfg == nil || cfg.Type == m.ConfiguredType() {
		return false, nil
	}
	if cfg.Type != Type && (m.from == nil || m.from.Type() != cfg.Type) {
		return true, core.Invalid("the stored seal is %q but the configuration does not have it: to migrate away from it, keep its seal %q block with disabled = \"true\"", cfg.Type, cfg.Type)
	}
	return true, nil
}

// MigrationPending reports whether a seal migration is pending.
func (m *Manager) MigrationPending(ctx context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	if err != nil || cfg == nil {
		return false, err
	}
	pending, _ := m.migrationLocked(cfg)
	return pending, nil
}

// Migrate adds one share to a seal migration round (sys/unseal with
// "migrate": true). The shares are the stored seal's held shares: unseal
// keys when migrating away from Shamir, recovery keys when migrating away
// from an auto seal. At the threshold the root key is recovered with the
// old seal and rewrapped with the configured one, and the barrier unseals:
//
//   - Shamir → auto seal: the unseal shares become the recovery shares;
//   - auto seal → Shamir: the recovery shares become the unseal shares;
//   - auto seal → another auto seal: the recovery shares stay.
//
// The switch — root-key record, seal configuration, recovery check — is one
// storage transaction. A migration interrupted before it changed nothing
// (give the shares again); one interrupted after it is complete (the
// server comes up on the new seal). Either way it can be resumed by
// restarting with the same configuration.
//
// Errors as for Unseal, plus ErrNoMigration, ErrRecoveryKeyMismatch and the
// seals' errors.
func (m *Manager) Migrate(ctx context.Context, key string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cfg, err := m.loadConfig(ctx)
	if err != nil {
		return m.statusLocked(cfg), err
	}
	if cfg == nil {
		return m.statusLocked(nil), core.ErrNotInitialized
	}
	pending, perr := m.migrationLocked(cfg)
	switch {
	case !pending:
		return m.statusLocked(cfg), ErrNoMigration
	case perr != nil:
		return m.statusLocked(cfg), perr
	case !m.barrier.Sealed():
		return m.statusLocked(cfg), core.Invalid("the server is unsealed: restart it with the new seal configuration to migrate")
	}
	heldN, heldT := cfg.Held()
	share, err := decodeShare(key, heldN)
	if err != nil {
		return m.statusLocked(cfg), err
	}
	if err := m.unseal.add(share); err != nil {
		clear(share)
		return m.statusLocked(cfg), err
	}
	if len(m.unseal.shares) < heldT {
		return m.statusLocked(cfg), nil
	}
	heldKey, err := combineShares(m.unseal.shares, heldN)
	m.unseal.reset()
	if err != nil {
		return m.statusLocked(cfg), fmt.Errorf("%w: %w", ErrUnsealFailed, err)
	}
	defer clear(heldKey)
	err = m.migrateLocked(ctx, cfg, heldKey)
	return m.statusLocked(m.config), err
}

func (m *Manager) migrateLocked(ctx context.Context, cfg *Config, heldKey []byte) error {
	record, err := m.rootKeyRecord(ctx)
	if err != nil {
		return err
	}
	var rootKey []byte
	if cfg.Type == Type {
		if rootKey, err = decryptRootKey(heldKey, record); err != nil {
			var coded *core.Error
			if errors.As(err, &coded) {
				return err // malformed record: not the key holders' fault
			}
			return fmt.Errorf("%w: %w", ErrUnsealFailed, err)
		}
	} else {
		if err := m.verifyRecoveryKey(ctx, cfg, heldKey); err != nil {
			return err
		}
		if rootKey, err = m.unwrapRecord(ctx, m.from, record); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	defer clear(rootKey)
	if err := fault("recovered"); err != nil {
		return err
	}

	next := *cfg
	next.Type = m.ConfiguredType()
	next.MigratedAt = m.now().UTC()
	var ops []storage.TxnOp
	if m.auto == nil {
		rec, err := encryptRootKey(heldKey, rootKey)
		if err != nil {
			return err
		}
		next.SecretShares, next.SecretThreshold = cfg.RecoveryShares, cfg.RecoveryThreshold
		next.RecoveryShares, next.RecoveryThreshold = 0, 0
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: RootKeyPath, Value: rec},
			storage.TxnOp{Kind: storage.OpDelete, Key: RecoveryCheckPath})
	} else {
		rec, err := m.wrapRecord(ctx, m.auto, rootKey)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: RootKeyPath, Value: rec})
		if cfg.Type == Type {
			next.RecoveryShares, next.RecoveryThreshold = cfg.SecretShares, cfg.SecretThreshold
			next.SecretShares, next.SecretThreshold = 1, 1
			ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: RecoveryCheckPath, Value: recoveryCheck(heldKey, cfg.Nonce)})
		}
	}
	cfgJSON, err := json.Marshal(&next)
	if err != nil {
		return core.Errorf(core.CodeInternal, "seal: migrate: encode config: %w", err)
	}
	ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: ConfigPath, Value: cfgJSON})
	if err := fault("before-commit"); err != nil {
		return err
	}
	if err := storage.Txn(ctx, m.physical, ops); err != nil {
		return fmt.Errorf("seal: migrate: write seal records: %w", err)
	}
	m.config = &next
	if err := fault("after-commit"); err != nil {
		return err
	}
	if err := m.barrier.Unseal(ctx, rootKey); err != nil {
		return fmt.Errorf("seal: migrate: unseal barrier: %w", err)
	}
	return nil
}
