package raftstore

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"

	"go.etcd.io/bbolt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// View is a read-only view of the state at one applied index, backed by a
// bbolt read transaction. Writes fail with storage.ErrReadOnly. It is valid
// only during the call that hands it out.
type View struct {
	tx    *bbolt.Tx
	index uint64
	term  uint64
}

var _ storage.Frozen = (*View)(nil)

// Index and Term are the raft index and term the view is consistent with.
func (v *View) Index() uint64 { return v.index }
func (v *View) Term() uint64  { return v.term }

// Get returns a copy of key's value (nil when missing).
func (v *View) Get(_ context.Context, key string) ([]byte, error) { return txGet(v.tx, key), nil }

// List lists the children of prefix (see storage.Storage).
func (v *View) List(_ context.Context, prefix string) ([]string, error) {
	return txList(v.tx, prefix), nil
}

// Put fails: the view is read-only.
func (v *View) Put(context.Context, string, []byte) error { return storage.ErrReadOnly }

// Delete fails: the view is read-only.
func (v *View) Delete(context.Context, string) error { return storage.ErrReadOnly }

// Count returns the number of keys starting with prefix (every descendant,
// not only the children). It reads keys only, never values.
func (v *View) Count(prefix string) int {
	n := 0
	c := v.tx.Bucket(bucketData).Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		n++
	}
	return n
}

// SaveOptions extend SaveSnapshotWith.
type SaveOptions struct {
	// Inspect, when set, is called with a view of exactly the state the
	// archive holds, before it is written. Its result, which must be JSON,
	// is stored in meta.json as "attachments" (covered by SHA256SUMS and
	// its seal). An error aborts the save. Inspect must only read: the
	// view's transaction is open while it runs.
	Inspect func(ctx context.Context, v *View) (json.RawMessage, error)
}

// info describes m; the attachments are compacted (meta.json is indented).
func (m *archiveMeta) info() *core.SnapshotArchiveInfo {
	att := m.Attachments
	if len(att) > 0 {
		var b bytes.Buffer
		if json.Compact(&b, att) == nil {
			att = b.Bytes()
		}
	}
	return &core.SnapshotArchiveInfo{NodeID: m.NodeID, Index: m.Index, Term: m.Term, Created: m.Created,
		StateSize: m.StateSize, StateSHA256: m.StateSHA256, Attachments: att}
}

// VerifyArchive reads an archive written by SaveSnapshot completely and
// checks it as RestoreSnapshot would (gzip and tar framing, SHA256SUMS,
// format version, meta.json against the state, a full bbolt consistency
// check) and, unless force, that SHA256SUMS.sealed was made by this
// cluster. It changes nothing. A rejected archive yields a CodeInvalid
// error. The state is staged in a temporary file in dir (the store's
// folder when empty), removed before it returns.
func (s *Store) VerifyArchive(ctx context.Context, r io.Reader, dir string, force bool) (*core.SnapshotArchiveInfo, error) {
	if dir == "" {
		dir = s.cfg.Dir
	}
	path, meta, sealed, err := readArchive(ctx, r, dir)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	if !force {
		if err := s.verifySealed(sealed); err != nil {
			return nil, err
		}
	}
	return meta.info(), nil
}

// View calls fn with a read-only view of the current applied state. The
// view is valid only during fn, which must not write to the store (a write
// may wait for the view's transaction to end).
func (s *Store) View(fn func(v *View) error) error {
	return s.fsm.view(func(tx *bbolt.Tx) error {
		index, term := readApplied(tx)
		return fn(&View{tx: tx, index: index, term: term})
	})
}

// Walk calls fn with every key starting with prefix, in order, until fn
// returns an error (which Walk returns).
func (v *View) Walk(prefix string, fn func(key string) error) error {
	c := v.tx.Bucket(bucketData).Cursor()
	p := []byte(prefix)
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		if err := fn(string(k)); err != nil {
			return err
		}
	}
	return nil
}
