package kv

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vigilsec/vigil/core/storage"
)

// UpgradeToV2 copies a version 1 mount's data into the version 2 layout:
// each secret becomes version 1 of a v2 key, created now. The router calls it
// when the mount is tuned from version 1 to 2, then calls Setup with version
// "2", which removes the v1 copies. Until then v1 requests fail with
// CodeUnavailable, so no write is lost in between.
//
// The copy is not destructive: if the upgrade fails, or the new version is
// never persisted, the mount keeps serving version 1 from intact data after
// its next Setup, and a later UpgradeToV2 starts over (discarding any partial
// v2 layout first). It is a no-op on a version 2 engine.
func (b *Backend) UpgradeToV2(ctx context.Context) error {
	st, err := b.state()
	if err != nil {
		return err
	}
	if st.version == 2 {
		return nil
	}
	b.gate.Lock()
	defer b.gate.Unlock()
	// While the mount is version 1, anything in the v2 layout is left over
	// from an interrupted upgrade: the v1 data is authoritative.
	for _, p := range []string{metaPrefix, versionsPrefix} {
		if err := storage.DeletePrefix(ctx, st.storage, p); err != nil {
			return fmt.Errorf("kv: upgrade: clear %s: %w", p, err)
		}
	}
	keys, err := storage.ListAll(ctx, st.storage, v1Prefix)
	if err != nil {
		return fmt.Errorf("kv: upgrade: list: %w", err)
	}
	for _, k := range keys {
		if err := migrateKey(ctx, st, k); err != nil {
			return err
		}
	}
	b.upgraded.Store(true)
	st.logger.Info("kv: upgraded data to version 2", "keys", len(keys))
	return nil
}

// finishUpgrade runs at a version 2 Setup: v1 secrets still present were
// copied by UpgradeToV2 (or, after a crash, are copied now when their v2 key
// is missing) and are then deleted.
func finishUpgrade(ctx context.Context, st *state) error {
	keys, err := storage.ListAll(ctx, st.storage, v1Prefix)
	if err != nil {
		return fmt.Errorf("kv: finish upgrade: list: %w", err)
	}
	if len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		m, err := loadMeta(ctx, st.storage, k)
		if err != nil {
			return err
		}
		if m == nil {
			if err := migrateKey(ctx, st, k); err != nil {
				return err
			}
		}
	}
	if err := storage.DeletePrefix(ctx, st.storage, v1Prefix); err != nil {
		return fmt.Errorf("kv: finish upgrade: %w", err)
	}
	st.logger.Info("kv: removed version 1 copies after upgrade", "keys", len(keys))
	return nil
}

// migrateKey writes the v1 secret at path as version 1 of a v2 key, in one
// transaction.
func migrateKey(ctx context.Context, st *state, path string) error {
	raw, err := st.storage.Get(ctx, v1Prefix+path)
	if err != nil {
		return fmt.Errorf("kv: upgrade %q: %w", path, err)
	}
	if raw == nil {
		return nil
	}
	if _, err := decodeObject(raw); err != nil {
		return fmt.Errorf("kv: upgrade %q: %w", path, err)
	}
	rec, err := json.Marshal(versionRecord{Data: raw})
	if err != nil {
		return fmt.Errorf("kv: upgrade %q: %w", path, err)
	}
	m := &keyMetadata{Path: path, Versions: map[int]*versionMetadata{}}
	m.addVersion(st.nowUTC(), &config{})
	put := storage.TxnOp{Kind: storage.OpPut, Key: versionKey(path, m.CurrentVersion), Value: rec}
	if err := saveMeta(ctx, st.storage, m, put); err != nil {
		return fmt.Errorf("kv: upgrade %q: %w", path, err)
	}
	return nil
}
