package system

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/storage"
)

// snapshotHost is what the restore test needs from the server beyond Core:
// *server.Server implements it. It is found by type assertion so that the
// sys/ mount's Deps stay unchanged.
type snapshotHost interface {
	Barrier() *barrier.Barrier
	Raft() *raftstore.Store
	DataDir() string
}

func (b *Backend) host() (snapshotHost, bool) {
	h, ok := b.d.Core.(snapshotHost)
	return h, ok
}

// recordSnapshotSave stores a SnapshotSaveRecord. Best effort: a snapshot
// that was taken is returned even if the record cannot be written (the
// compliance check then reports no recent snapshot, the safe direction).
func (b *Backend) recordSnapshotSave(ctx context.Context, size int) {
	h, ok := b.host()
	if !ok {
		return
	}
	_ = storage.PutJSON(context.WithoutCancel(ctx), h.Barrier(), core.SnapshotSaveKey, core.SnapshotSaveRecord{Time: b.d.Now().UTC(), Bytes: size})
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
	h, ok := b.host()
	if !ok {
		return nil, core.Invalid("raft storage is not in use")
	}
	var rec core.SnapshotTestRecord
	found, err := storage.GetJSON(ctx, h.Barrier(), core.SnapshotTestKey, &rec)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: snapshotTestData(rec)}, nil
}

func (b *Backend) snapshotTest(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	h, ok := b.host()
	if !ok || b.d.Snapshots == nil {
		return nil, core.Invalid("raft storage is not in use")
	}
	rec := RunSnapshotTest(ctx, b.d.Snapshots, h.Raft(), h.DataDir(), b.d.Now)
	if err := storage.PutJSON(context.WithoutCancel(ctx), h.Barrier(), core.SnapshotTestKey, rec); err != nil {
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

// RunSnapshotTest takes a snapshot through snaps, restores it into a
// scratch raft store under dir (removed afterwards) and compares it with
// live. It never returns an error: failures are in the record.
func RunSnapshotTest(ctx context.Context, snaps Snapshotter, live storage.Storage, dir string, now func() time.Time) core.SnapshotTestRecord {
	if now == nil {
		now = time.Now
	}
	start := now()
	rec := core.SnapshotTestRecord{Time: start.UTC()}
	fail := func(format string, args ...any) core.SnapshotTestRecord {
		rec.OK, rec.Error = false, fmt.Sprintf(format, args...)
		rec.DurationMS = now().Sub(start).Milliseconds()
		return rec
	}
	var archive []byte
	// The key count of a busy node can change between the snapshot and the
	// count: try a few times for a stable pair.
	for attempt := 0; ; attempt++ {
		var buf bytes.Buffer
		before, err := countKeys(ctx, live)
		if err != nil {
			return fail("count live keys: %v", err)
		}
		if err := snaps.SaveSnapshot(ctx, &buf); err != nil {
			return fail("take snapshot: %v", err)
		}
		after, err := countKeys(ctx, live)
		if err != nil {
			return fail("count live keys: %v", err)
		}
		archive, rec.LiveKeys = buf.Bytes(), after
		if before == after || attempt == 2 {
			break
		}
	}
	rec.SnapshotBytes = len(archive)
	if dir == "" {
		dir = os.TempDir()
	}
	scratch, err := os.MkdirTemp(dir, "snapshot-test-")
	if err != nil {
		return fail("scratch folder: %v", err)
	}
	defer os.RemoveAll(scratch)
	st, err := raftstore.Open(raftstore.Config{Dir: scratch, NodeID: "snapshot-test", BindAddr: "127.0.0.1:0", Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail("open scratch store: %v", err)
	}
	defer st.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := st.WaitLeader(wctx); err != nil {
		return fail("scratch store: %v", err)
	}
	// force: the scratch store has no snapshot sealer; the archive's own
	// checksums and the bbolt consistency check are still verified.
	if err := st.RestoreSnapshotForce(ctx, bytes.NewReader(archive), true); err != nil {
		return fail("restore into scratch store: %v", err)
	}
	if v, err := st.Get(ctx, barrier.KeyringPath); err != nil {
		return fail("read restored keyring: %v", err)
	} else {
		rec.Keyring = v != nil
	}
	if v, err := st.Get(ctx, seal.ConfigPath); err != nil {
		return fail("read restored seal configuration: %v", err)
	} else {
		rec.SealConfig = v != nil
	}
	if rec.RestoredKeys, err = countKeys(ctx, st); err != nil {
		return fail("count restored keys: %v", err)
	}
	switch {
	case !rec.Keyring:
		return fail("the restored snapshot has no barrier keyring (%s)", barrier.KeyringPath)
	case !rec.SealConfig:
		return fail("the restored snapshot has no seal configuration (%s)", seal.ConfigPath)
	case rec.RestoredKeys != rec.LiveKeys:
		return fail("the restored snapshot holds %d keys, this node %d", rec.RestoredKeys, rec.LiveKeys)
	}
	rec.OK = true
	rec.DurationMS = now().Sub(start).Milliseconds()
	return rec
}

func countKeys(ctx context.Context, s storage.Storage) (int, error) {
	keys, err := storage.ListAll(ctx, s, "")
	return len(keys), err
}
