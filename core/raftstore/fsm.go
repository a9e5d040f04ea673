package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
	"go.etcd.io/bbolt"
)

// Layout of the FSM state file (Dir/vigil.db):
//
//	bucket "data": user key -> value
//	bucket "meta": "applied" -> index (8 bytes BE) || term (8 bytes BE)
//	               "format"  -> stateFormat
//
// The applied index is written in the same bbolt transaction as the data it
// describes, so after a crash the file is always self-consistent and the FSM
// knows exactly which raft entries it has already applied.
var (
	bucketData = []byte("data")
	bucketMeta = []byte("meta")
	keyApplied = []byte("applied")
	keyFormat  = []byte("format")
)

// stateFormat is the version of the state file layout above.
const stateFormat byte = 1

// fsmSnapshotMagic starts every raft snapshot the FSM writes: 7 magic bytes
// and a format version, followed by a complete bbolt file.
var fsmSnapshotMagic = []byte("VIGLFSM\x01")

// fsm is the raft state machine: it applies committed commands to a bbolt
// file. raft calls ApplyBatch, Snapshot and Restore from one goroutine; the
// read methods (get, list, beginRead) may run concurrently with all of them.
//
// mu guards the db handle, not the data: readers hold it shared for the
// length of one bbolt transaction; Restore holds it exclusively only to swap
// the handle, so readers see either the old state or the new one.
type fsm struct {
	path    string
	logger  hclog.Logger
	onApply func(keys []string)

	mu sync.RWMutex
	db *bbolt.DB // nil once closed

	appliedIndex atomic.Uint64
	appliedTerm  atomic.Uint64
	failed       atomic.Pointer[core.Error]

	// beforeCommit, when set (tests only), runs inside each apply
	// transaction; an error aborts it like a failing disk would.
	beforeCommit atomic.Pointer[func() error]
}

var _ raft.BatchingFSM = (*fsm)(nil)

func boltOptions(readOnly bool) *bbolt.Options {
	return &bbolt.Options{
		Timeout:        time.Second,
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		ReadOnly:       readOnly,
	}
}

// openFSM opens (creating if needed) the state file at path.
func openFSM(path string, logger hclog.Logger, onApply func([]string)) (*fsm, error) {
	db, err := openStateDB(path)
	if err != nil {
		return nil, err
	}
	f := &fsm{path: path, logger: logger, onApply: onApply, db: db}
	if err := f.loadApplied(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return f, nil
}

func openStateDB(path string) (*bbolt.DB, error) {
	db, err := bbolt.Open(path, 0o600, boltOptions(false))
	if err != nil {
		return nil, fmt.Errorf("raft: open state %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketData); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyFormat); {
		case v == nil:
			return meta.Put(keyFormat, []byte{stateFormat})
		case !bytes.Equal(v, []byte{stateFormat}):
			return fmt.Errorf("unsupported state format %v", v)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raft: init state %s: %w", path, err)
	}
	return db, nil
}

func (f *fsm) loadApplied() error {
	return f.db.View(func(tx *bbolt.Tx) error {
		idx, term := readApplied(tx)
		f.appliedIndex.Store(idx)
		f.appliedTerm.Store(term)
		return nil
	})
}

func readApplied(tx *bbolt.Tx) (index, term uint64) {
	if b := tx.Bucket(bucketMeta); b != nil {
		if v := b.Get(keyApplied); len(v) == 16 {
			return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
		}
	}
	return 0, 0
}

func writeApplied(tx *bbolt.Tx, index, term uint64) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], index)
	binary.BigEndian.PutUint64(v[8:], term)
	return tx.Bucket(bucketMeta).Put(keyApplied, v[:])
}

// failure returns the error that stopped the FSM, or nil.
func (f *fsm) failure() error {
	if e := f.failed.Load(); e != nil {
		return e
	}
	return nil
}

func (f *fsm) fail(err error) *core.Error {
	e := core.Errorf(core.CodeUnavailable, "raft: state machine stopped after a storage failure, restart required: %w", err)
	f.failed.CompareAndSwap(nil, e)
	f.logger.Error("state machine stopped", "error", err)
	return f.failed.Load()
}

// Apply applies one log. raft uses ApplyBatch; Apply exists for FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies logs in one bbolt transaction (one fsync), together with
// the index and term of the last one. Logs at or below the stored applied
// index were applied before a restart and are skipped: raft replays them
// because of NoSnapshotRestoreOnStart.
//
// The response for each command log is nil or an error: a malformed command
// gets its own deterministic error; a storage failure stops the FSM (every
// later batch fails and reads return CodeUnavailable) without advancing the
// applied index, so the entries are applied from the raft log after restart.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	if err := f.failure(); err != nil {
		fillErr(resp, err)
		return resp
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		fillErr(resp, errClosed)
		return resp
	}
	applied := f.appliedIndex.Load()
	if len(logs) == 0 || logs[len(logs)-1].Index <= applied {
		return resp // replayed after a restart: nothing new, no fsync
	}
	var keys []string
	var last *raft.Log
	err := f.db.Update(func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketData)
		for i, l := range logs {
			if l.Index <= applied {
				continue
			}
			last = l
			if l.Type != raft.LogCommand {
				continue
			}
			ops, err := decodeCommand(l.Data)
			if err != nil {
				resp[i] = core.Errorf(core.CodeInternal, "raft: log %d: %w", l.Index, err)
				continue
			}
			for _, o := range ops {
				if o.kind == storage.OpPut {
					err = data.Put(o.key, o.value)
				} else {
					err = data.Delete(o.key)
				}
				if err != nil {
					return err
				}
				if f.onApply != nil {
					keys = append(keys, string(o.key))
				}
			}
		}
		if last == nil {
			return nil
		}
		if hook := f.beforeCommit.Load(); hook != nil {
			if err := (*hook)(); err != nil {
				return err
			}
		}
		return writeApplied(tx, last.Index, last.Term)
	})
	if err != nil {
		fillErr(resp, f.fail(err))
		return resp
	}
	if last != nil {
		f.appliedIndex.Store(last.Index)
		f.appliedTerm.Store(last.Term)
	}
	if len(keys) > 0 {
		f.onApply(keys)
	}
	return resp
}

func fillErr(resp []any, err error) {
	for i := range resp {
		resp[i] = err
	}
}

// Snapshot captures a bbolt read transaction; Persist streams it. The
// transaction is consistent with the applied index stored inside it.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.failure(); err != nil {
		return nil, err
	}
	tx, err := f.beginRead()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{tx: tx}, nil
}

// beginRead starts a read transaction on the current state. The caller must
// roll it back. The transaction stays valid across a Restore (it pins the old
// file until it ends).
func (f *fsm) beginRead() (*bbolt.Tx, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return nil, errClosed
	}
	return f.db.Begin(false)
}

type fsmSnapshot struct{ tx *bbolt.Tx }

// Persist writes the snapshot header and the bbolt file to sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	_, err := sink.Write(fsmSnapshotMagic)
	if err == nil {
		_, err = s.tx.WriteTo(sink)
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raft: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release ends the read transaction.
func (s *fsmSnapshot) Release() { _ = s.tx.Rollback() }

// Restore replaces the whole state with a snapshot stream written by Persist
// (or built by RestoreSnapshot). The stream is copied to a temporary file
// next to the state file, validated, stamped with the snapshot's raft index
// and term, fsynced, then renamed over the state file and reopened. A
// failure before the rename leaves the current state untouched.
func (f *fsm) Restore(rc io.ReadCloser) error {
	meta := snapshotMetaOf(rc)
	defer rc.Close()
	tmp, err := f.writeTemp(rc)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // no-op after a successful rename

	index, term := uint64(0), uint64(0)
	if meta != nil {
		index, term = meta.Index, meta.Term
	} else {
		// Unknown raft index: 0 is safe, it only makes the FSM apply
		// every later entry raft hands it.
		f.logger.Warn("restoring a snapshot without raft metadata; applied index reset to 0")
	}
	if err := stampState(tmp, index, term); err != nil {
		return err
	}

	f.mu.Lock()
	old := f.db
	if old == nil {
		f.mu.Unlock()
		return errClosed
	}
	if err := os.Rename(tmp, f.path); err != nil {
		f.mu.Unlock()
		return fmt.Errorf("raft: restore: %w", err)
	}
	syncDir(filepath.Dir(f.path))
	db, err := openStateDB(f.path)
	if err != nil {
		// The old handle pins the old inode; keep serving it, but stop
		// applying: the file on disk no longer matches it.
		f.mu.Unlock()
		return f.fail(err)
	}
	f.db = db
	f.appliedIndex.Store(index)
	f.appliedTerm.Store(term)
	f.mu.Unlock()

	// Waits for snapshot read transactions still pinning the old file.
	_ = old.Close()
	f.logger.Info("restored state from snapshot", "index", index, "term", term)
	if f.onApply != nil {
		f.onApply(nil)
	}
	return nil
}

// writeTemp copies a snapshot stream (header + bbolt file) into a fsynced
// temporary file and validates it.
func (f *fsm) writeTemp(r io.Reader) (string, error) {
	hdr := make([]byte, len(fsmSnapshotMagic))
	if _, err := io.ReadFull(r, hdr); err != nil || !bytes.Equal(hdr, fsmSnapshotMagic) {
		return "", fmt.Errorf("raft: restore: not a Vigil state snapshot (header %q, %v)", hdr, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".restore-*")
	if err != nil {
		return "", fmt.Errorf("raft: restore: %w", err)
	}
	name := tmp.Name()
	_, err = io.Copy(tmp, r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_, _, err = validateState(name)
	}
	if err != nil {
		_ = os.Remove(name)
		return "", fmt.Errorf("raft: restore: %w", err)
	}
	return name, nil
}

// validateState checks that path is a structurally sound bbolt file
// (checkBoltFile) with Vigil's buckets and format, and returns the applied
// index and term stored in it.
func validateState(path string) (index, term uint64, err error) {
	if err := checkBoltFile(path); err != nil {
		return 0, 0, fmt.Errorf("corrupt state database: %w", err)
	}
	defer func() { // belt and braces: bbolt must not take the server down
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt state database: %v", p)
		}
	}()
	db, err := bbolt.Open(path, 0o600, boltOptions(true))
	if err != nil {
		return 0, 0, fmt.Errorf("not a bbolt database: %w", err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		data := tx.Bucket(bucketData)
		if data == nil {
			return errors.New(`missing bucket "data"`)
		}
		// A nested bucket would make a later Put of that key fail in
		// every node's apply loop.
		c := data.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				return fmt.Errorf("unexpected nested bucket %q in data", k)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return errors.New(`missing bucket "meta"`)
		}
		if v := meta.Get(keyFormat); !bytes.Equal(v, []byte{stateFormat}) {
			return fmt.Errorf("unsupported state format %v", v)
		}
		index, term = readApplied(tx)
		return nil
	})
	return index, term, err
}

// stampState records index/term as the applied position of the state file
// at path (fsynced by the bbolt commit).
func stampState(path string, index, term uint64) error {
	db, err := bbolt.Open(path, 0o600, boltOptions(false))
	if err != nil {
		return fmt.Errorf("raft: restore: %w", err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return writeApplied(tx, index, term) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raft: restore: stamp index: %w", err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// close closes the state file. Later reads return errClosed.
func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	return err
}

// metaSnapshotStore wraps a SnapshotStore so that the reader raft hands to
// FSM.Restore carries the snapshot's metadata. raft wraps that reader in its
// own counting reader, which exposes the original through
// raft.ReadCloserWrapper; snapshotMetaOf unwraps it. This is how Restore
// learns the raft index the restored state corresponds to (for a user
// restore, raft assigns a new index above its log, unknown to the caller).
type metaSnapshotStore struct{ raft.SnapshotStore }

type metaReader struct {
	io.ReadCloser
	meta *raft.SnapshotMeta
}

// Open opens snapshot id, attaching its metadata to the reader.
func (s metaSnapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	return meta, &metaReader{ReadCloser: rc, meta: meta}, nil
}

func snapshotMetaOf(rc io.ReadCloser) *raft.SnapshotMeta {
	for range 8 {
		switch r := rc.(type) {
		case *metaReader:
			return r.meta
		case raft.ReadCloserWrapper:
			rc = r.WrappedReadCloser()
		default:
			return nil
		}
	}
	return nil
}
