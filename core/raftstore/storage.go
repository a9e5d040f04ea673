package raftstore

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/hashicorp/raft"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
	"go.etcd.io/bbolt"
)

var (
	_ storage.Storage       = (*Store)(nil)
	_ storage.Transactional = (*Store)(nil)
)

// errClosed is returned by every operation on a closed Store.
var errClosed = core.Errorf(core.CodeUnavailable, "raft: store is closed")

// Get returns the value of key from this node's applied state, or (nil, nil)
// when the key does not exist. It never contacts the leader: on a follower it
// may trail the leader; use Barrier on the leader for read-your-writes after a
// leadership change. Safe for concurrent use.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.fsm.get(key)
}

// List returns the immediate children of prefix in this node's applied
// state, in storage.List's shape: keys as their last segment, folders as
// "name/", sorted and deduplicated. Same consistency as Get.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.fsm.list(prefix)
}

// Put stores value at key through raft. It returns once the write is
// committed and applied to this node's state, so a following Get on this node
// sees it. A follower forwards the write to the leader over the cluster RPC
// and waits until it has applied it itself; a follower without one (sealed,
// not joined, or a plaintext transport) returns a CodeUnavailable error
// naming the leader.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	return s.Txn(ctx, []storage.TxnOp{{Kind: storage.OpPut, Key: key, Value: value}})
}

// Delete removes key through raft; deleting a missing key is not an error.
// Same semantics as Put.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.Txn(ctx, []storage.TxnOp{{Kind: storage.OpDelete, Key: key}})
}

// Txn applies ops atomically: they travel as one raft entry and are applied
// in one bbolt transaction, so every node sees all of them or none. An empty
// ops list is a no-op. Errors: CodeInvalid / CodeTooLarge for bad keys or an
// entry over Config.MaxEntrySize; CodeUnavailable when this node is not the
// leader, leadership is lost mid-write (the write may or may not have been
// applied), raft is shut down, or the state machine has failed; ctx.Err()
// when ctx has ended before the write is submitted. Once submitted, Txn
// waits for the outcome whatever ctx does: a caller that gives up must not
// report a failure for a write that commits (raft bounds the wait: the
// entry commits, or leadership is lost, or raft shuts down).
func (s *Store) Txn(ctx context.Context, ops []storage.TxnOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	select {
	case <-s.done:
		return errClosed
	default:
	}
	if err := s.fsm.failure(); err != nil {
		return err
	}
	cmd, err := encodeCommand(ops)
	if err != nil {
		return err
	}
	if len(cmd) > s.cfg.MaxEntrySize {
		return core.Errorf(core.CodeTooLarge, "raft: write of %d bytes exceeds the %d byte entry limit", len(cmd), s.cfg.MaxEntrySize)
	}
	if s.raft.State() != raft.Leader {
		return s.forwardTxn(ctx, cmd)
	}
	f := s.raft.Apply(cmd, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		return s.raftErr("apply", err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// wait waits for f, or for ctx to end.
func wait(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) notLeader() error {
	id, addr := s.Leader()
	leader := "unknown"
	if id != "" {
		leader = id + " at " + addr
	}
	return core.Errorf(core.CodeUnavailable, "raft: not the leader (leader is %s)", leader)
}

// raftErr maps raft's errors to coded errors.
func (s *Store) raftErr(what string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return s.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return core.Errorf(core.CodeUnavailable, "raft: %s: leadership lost before the entry committed; it may or may not be applied", what)
	case errors.Is(err, raft.ErrRaftShutdown):
		return errClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return core.Errorf(core.CodeUnavailable, "raft: %s: timed out waiting to enqueue", what)
	case errors.Is(err, raft.ErrAbortedByRestore):
		return core.Errorf(core.CodeUnavailable, "raft: %s: aborted by a snapshot restore", what)
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	return core.Errorf(core.CodeInternal, "raft: %s: %w", what, err)
}

// view runs fn in a read transaction on the current state.
func (f *fsm) view(fn func(tx *bbolt.Tx) error) error {
	if err := f.failure(); err != nil {
		return err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return errClosed
	}
	return f.db.View(fn)
}

func (f *fsm) get(key string) ([]byte, error) {
	var out []byte
	err := f.view(func(tx *bbolt.Tx) error {
		out = txGet(tx, key)
		return nil
	})
	return out, err
}

// txGet returns a copy of key's value in tx (nil when missing).
func txGet(tx *bbolt.Tx, key string) []byte {
	k, v := tx.Bucket(bucketData).Cursor().Seek([]byte(key))
	if k == nil || string(k) != key {
		return nil
	}
	out := make([]byte, len(v)) // non-nil even for an empty value
	copy(out, v)
	return out
}

// list walks keys under prefix, jumping over each folder's subtree with one
// Seek, so listing a prefix costs O(children), not O(descendants).
func (f *fsm) list(prefix string) ([]string, error) {
	var out []string
	err := f.view(func(tx *bbolt.Tx) error {
		out = txList(tx, prefix)
		return nil
	})
	return out, err
}

// txList lists the children of prefix in tx (see storage.Storage.List).
func txList(tx *bbolt.Tx, prefix string) []string {
	var full []string
	c := tx.Bucket(bucketData).Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); {
		rest := string(k[len(p):])
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			full = append(full, string(k))
			k, _ = c.Next()
			continue
		}
		folder := prefix + rest[:i+1]
		full = append(full, folder)
		// '0' is the byte after '/': the first key past the folder.
		k, _ = c.Seek([]byte(folder[:len(folder)-1] + "0"))
	}
	return storage.ChildrenOf(prefix, full)
}
