package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/system"
)

// runSnapshotTest takes a snapshot through snaps, restores it into a
// scratch raft store under dir (removed afterwards) and compares it with
// live. It never returns an error: failures are in the record.
func runSnapshotTest(ctx context.Context, snaps system.Snapshotter, live storage.Storage, dir string, now func() time.Time) core.SnapshotTestRecord {
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
