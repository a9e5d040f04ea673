package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/storage"
)

// Capabilities for automated snapshots and restore drills
// (autosnapshot.Host).

// Active reports whether this node is the active node, the one that runs
// scheduled work (snapshots, drills): see Server.active.
func (h *Host) Active() bool { return h.s.isActive() }

// ScratchDir is where snapshots are staged and restore drills unpack
// (the storage folder: same filesystem, same permissions).
func (h *Host) ScratchDir() string { return h.s.cfg.Storage.Path }

// SaveSnapshot writes a snapshot archive of the current state to w;
// inspect sees exactly the state the archive holds (see
// raftstore.SaveOptions).
func (h *Host) SaveSnapshot(ctx context.Context, w io.Writer, inspect func(ctx context.Context, v storage.Frozen) (json.RawMessage, error)) (*core.SnapshotArchiveInfo, error) {
	var opts raftstore.SaveOptions
	if inspect != nil {
		opts.Inspect = func(ctx context.Context, v *raftstore.View) (json.RawMessage, error) { return inspect(ctx, v) }
	}
	return h.s.raft.SaveSnapshotWith(ctx, w, opts)
}

// VerifySnapshot checks an archive as a restore would, including this
// cluster's seal on it, without changing anything.
func (h *Host) VerifySnapshot(ctx context.Context, r io.Reader, dir string) (*core.SnapshotArchiveInfo, error) {
	return h.s.raft.VerifyArchive(ctx, r, dir, false)
}

// RestoreScratch opens a new single-node raft store in dir, unrelated to
// the cluster (own node id, transport on a random loopback port), restores
// the archive into it without checking the cluster's seal (the caller
// verified it), calls fn with a view of the restored state and closes the
// store. The caller removes dir.
func (h *Host) RestoreScratch(ctx context.Context, dir string, archive io.Reader, fn func(v storage.Frozen) error) error {
	st, err := raftstore.Open(raftstore.Config{Dir: dir, NodeID: "restore-drill", BindAddr: "127.0.0.1:0", Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("open a scratch store: %w", err)
	}
	defer st.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := st.WaitLeader(wctx); err != nil {
		return fmt.Errorf("scratch store: %w", err)
	}
	if err := st.RestoreSnapshotForce(ctx, archive, true); err != nil {
		return fmt.Errorf("restore into the scratch store: %w", err)
	}
	return st.View(func(v *raftstore.View) error { return fn(v) })
}

// OpenCopy opens physical, a copy of this cluster's storage (a restored
// snapshot, or the view of one), with the keys the barrier holds in memory
// while unsealed, so that no key holder is needed (see
// barrier.OpenCopy). close zeroes the copy's keys.
func (h *Host) OpenCopy(ctx context.Context, physical storage.Storage) (storage.Storage, string, func(), error) {
	c, src, err := h.s.barrier.OpenCopy(ctx, physical)
	if err != nil {
		return nil, "", nil, err
	}
	return barrierStorage{c}, string(src), c.Seal, nil
}
