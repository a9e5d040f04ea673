package server

import (
	"context"
	"encoding/json"
	"io"

	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/storage"
)

// Capabilities for automated snapshots and restore drills
// (autosnapshot.Host).

// Active reports whether this node is the active node: the one that runs
// scheduled work (snapshots, drills). Today the raft leader.
func (h *Host) Active() bool { return h.s.raft.IsLeader() }

// SaveSnapshot writes a snapshot archive of the current state to w;
// inspect sees exactly the state the archive holds (see
// raftstore.SaveOptions).
func (h *Host) SaveSnapshot(ctx context.Context, w io.Writer, inspect func(ctx context.Context, v *raftstore.View) (json.RawMessage, error)) (*raftstore.SnapshotInfo, error) {
	return h.s.raft.SaveSnapshotWith(ctx, w, raftstore.SaveOptions{Inspect: inspect})
}

// VerifySnapshot checks an archive as a restore would, including this
// cluster's seal on it, without changing anything.
func (h *Host) VerifySnapshot(ctx context.Context, r io.Reader, dir string) (*raftstore.SnapshotInfo, error) {
	return h.s.raft.VerifyArchive(ctx, r, dir, false)
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
