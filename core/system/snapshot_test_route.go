package system

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// recordSnapshotSave stores a SnapshotSaveRecord. Best effort: a snapshot
// that was taken is returned even if the record cannot be written (the
// compliance check then reports no recent snapshot, the safe direction).
func (b *Backend) recordSnapshotSave(ctx context.Context, size int) {
	if b.d.Records == nil {
		return
	}
	_ = storage.PutJSON(context.WithoutCancel(ctx), b.d.Records, core.SnapshotSaveKey, core.SnapshotSaveRecord{Time: b.d.Now().UTC(), Bytes: size})
}

// snapshotTestRoute is POST sys/storage/raft/snapshot-test (sudo): take a
// snapshot, restore it into a scratch raft store in a temporary folder,
// check that the store opens, that the barrier keyring and the seal
// configuration are present and that the key count matches this node's,
// and record the result (also when it fails). GET returns the last record.
func (b *Backend) snapshotTestRoute() framework.Route {
	return framework.Route{Pattern: `storage/raft/snapshot-test`, Sudo: true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.snapshotTest, core.OpRead: b.lastSnapshotTest},
		Help:       "Test that a snapshot restores: restore into a scratch store, verify, record the result."}
}

func (b *Backend) lastSnapshotTest(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if b.d.Records == nil {
		return nil, core.Invalid("raft storage is not in use")
	}
	var rec core.SnapshotTestRecord
	found, err := storage.GetJSON(ctx, b.d.Records, core.SnapshotTestKey, &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: snapshotTestData(rec)}, nil
}

func (b *Backend) snapshotTest(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if b.d.SnapshotTest == nil || b.d.Records == nil {
		return nil, core.Invalid("raft storage is not in use")
	}
	rec := b.d.SnapshotTest(ctx)
	if err := storage.PutJSON(context.WithoutCancel(ctx), b.d.Records, core.SnapshotTestKey, rec); err != nil {
		return nil, fmt.Errorf("snapshot test: record the result: %w", err)
	}
	return &core.Response{Data: snapshotTestData(rec)}, nil
}

func snapshotTestData(r core.SnapshotTestRecord) map[string]any {
	d := map[string]any{"time": r.Time.UTC().Format(time.RFC3339Nano), "ok": r.OK, "snapshot_bytes": r.SnapshotBytes,
		"live_keys": r.LiveKeys, "restored_keys": r.RestoredKeys, "keyring_present": r.Keyring,
		"seal_config_present": r.SealConfig, "duration_ms": r.DurationMS}
	if r.Error != "" {
		d["error"] = r.Error
	}
	return d
}
