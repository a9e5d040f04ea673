// Package raftstore is Vigil's physical storage: a hashicorp/raft log,
// replicated between nodes, whose state machine applies writes to a bbolt
// file. It implements storage.Storage and storage.Transactional.
//
// On disk, under Config.Dir:
//
//	raft/raft.db       raft log and stable store (raft-boltdb/v2)
//	raft/snapshots/    raft snapshots (raft.FileSnapshotStore, 2 retained)
//	vigil.db           the applied state (bbolt), with its applied index
//
// Writes go through the leader's raft log; reads are served from the local
// state. The state file records the index of the last applied entry in the
// same transaction as the data, so a restart neither restores a snapshot nor
// applies an entry twice (raft.Config.NoSnapshotRestoreOnStart).
package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/vigilsec/vigil/core"

	berrors "go.etcd.io/bbolt/errors"
)

// Config configures a Store. Zero values take the documented defaults.
type Config struct {
	// Dir is the node's data folder (required).
	Dir string
	// NodeID is this node's stable raft server ID (required).
	NodeID string
	// BindAddr is the TCP address of the raft transport, e.g. "127.0.0.1:8201".
	// Port 0 picks a free port; Addr reports the real address.
	BindAddr string
	// AdvertiseAddr is the address other nodes dial; defaults to the bound
	// address. A missing or zero port is replaced by the bound port. Required
	// when BindAddr's host is unspecified (0.0.0.0, ::).
	AdvertiseAddr string
	// TLS is the node's identity on the transport: every connection, in and
	// out, is mutual TLS against it. Nil means none yet: every connection
	// is refused until SetTLSIdentity installs one (a server installs it
	// when it unseals; a single node needs no connection to lead).
	TLS *TLSIdentity
	// Plaintext runs the transport over unauthenticated TCP instead. It is
	// refused unless the bound and advertised addresses are loopback: only
	// for tests and tools on one machine.
	Plaintext bool
	// Bootstrap makes a node with no existing raft state bootstrap a
	// single-node cluster with itself as the only voter. Ignored when state
	// exists.
	Bootstrap bool
	// Logger receives raft's logs. Default: discard.
	Logger *slog.Logger

	// SnapshotThreshold is the number of new log entries that triggers a raft
	// snapshot (and log compaction). Default 8192.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks SnapshotThreshold. Default 120s.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries stay in the log after a snapshot.
	// Default 10240.
	TrailingLogs uint64
	// ApplyTimeout bounds how long a write waits to be enqueued on the
	// leader (raft's apply timeout). Default 10s.
	ApplyTimeout time.Duration
	// HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout tune failure
	// detection. Defaults 500ms, 500ms, 250ms: a bootstrapped single node is
	// leader within about a second of Open.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// MaxAppendEntries is the most entries raft groups into one log write,
	// one replication RPC and one state transaction. Concurrent writers share
	// those fsyncs. Default 256, maximum 1024.
	MaxAppendEntries int
	// MaxEntrySize is the largest encoded write (Put, Delete or Txn) in
	// bytes. Default 1 MiB, as in Vault.
	MaxEntrySize int

	// OnApply, when set, is called after each applied batch with the keys it
	// changed (possibly with duplicates), and with nil after a snapshot
	// restore replaced the whole state. It runs on raft's apply goroutine:
	// it must be fast and must not write to the Store (that would deadlock);
	// reading is fine.
	OnApply func(keys []string)
	// Now is the clock for snapshot timestamps. Default time.Now.
	Now func() time.Time

	// AutopilotUpdateInterval and AutopilotReconcileInterval are how often
	// the leader's autopilot refreshes server health and acts on it
	// (promotions, dead-server cleanup). Defaults 2s and 10s (Vault's
	// autopilot_update_interval and autopilot_reconcile_interval).
	AutopilotUpdateInterval    time.Duration
	AutopilotReconcileInterval time.Duration
	// OnRemoved, when set, is called on the leader after autopilot removed
	// a dead server (the server revokes its cluster certificate there).
	OnRemoved func(id string)
}

func (c *Config) setDefaults() error {
	switch {
	case c.Dir == "":
		return core.Invalid("raft: config: Dir is required")
	case c.NodeID == "":
		return core.Invalid("raft: config: NodeID is required")
	case c.BindAddr == "":
		return core.Invalid("raft: config: BindAddr is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SnapshotInterval, 120*time.Second)
	def(&c.ApplyTimeout, 10*time.Second)
	def(&c.HeartbeatTimeout, 500*time.Millisecond)
	def(&c.ElectionTimeout, 500*time.Millisecond)
	def(&c.LeaderLeaseTimeout, 250*time.Millisecond)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.MaxAppendEntries <= 0 {
		c.MaxAppendEntries = 256
	}
	if c.MaxEntrySize <= 0 {
		c.MaxEntrySize = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Store is a raft-replicated key/value store. All methods are safe for
// concurrent use. Close releases it; a closed Store returns CodeUnavailable.
type Store struct {
	cfg      Config
	logger   hclog.Logger
	raft     *raft.Raft
	trans    *raft.NetworkTransport
	stream   raft.StreamLayer
	logStore *raftboltdb.BoltStore
	snaps    raft.SnapshotStore
	fsm      *fsm
	rpc      *rpcState // cluster RPC; nil on a plaintext transport
	pilot    *pilot

	sealerMu sync.RWMutex
	sealer   SnapshotSealer

	// confirmed is when the last leadership confirmation that succeeded
	// started, as nanoseconds after epoch (monotonic; 0: never).
	epoch     time.Time
	confirmed atomic.Int64

	notifyCh  chan bool     // raft's leadership notifications
	done      chan struct{} // closed by Close
	subsMu    sync.Mutex
	subs      map[chan bool]struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Open opens or creates the node's storage in cfg.Dir, starts the raft
// transport on cfg.BindAddr and starts raft. With cfg.Bootstrap and no
// existing state it bootstraps a single-voter cluster; WaitLeader then
// returns once the node leads. Data written before a previous Close (or
// crash) is readable as soon as Open returns. Errors are *core.Error:
// CodeInvalid for bad configuration, CodeUnavailable when the files are
// locked by another process or the address is in use.
func Open(cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:      cfg,
		logger:   newHCLogger(cfg.Logger, "raft"),
		epoch:    time.Now(),
		notifyCh: make(chan bool, 8),
		done:     make(chan struct{}),
		subs:     map[chan bool]struct{}{},
	}
	if err := s.open(); err != nil {
		s.release()
		return nil, err
	}
	s.wg.Add(1)
	go s.fanOutLeadership()
	s.startPilot()
	return s, nil
}

func (s *Store) open() error {
	cfg := &s.cfg
	raftDir := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return core.Errorf(core.CodeInternal, "raft: %w", err)
	}
	var err error
	s.fsm, err = openFSM(filepath.Join(cfg.Dir, "vigil.db"), s.logger.Named("fsm"), cfg.OnApply)
	if err != nil {
		return lockErr(err)
	}
	s.logStore, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(raftDir, "raft.db"),
		BoltOptions: boltOptions(false),
	})
	if err != nil {
		return lockErr(fmt.Errorf("raft: open log: %w", err))
	}
	fss, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, s.logger.Named("snapshots"))
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: snapshot store: %w", err)
	}
	s.snaps = metaSnapshotStore{fss}
	if err := s.catchUp(); err != nil {
		return err
	}
	if s.trans, s.stream, err = newTransport(cfg.BindAddr, cfg.AdvertiseAddr, cfg.Plaintext, cfg.TLS, s.logger.Named("transport")); err != nil {
		return err
	}
	s.startRPC()

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = s.logger
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = true
	rc.NotifyCh = s.notifyCh
	if err := raft.ValidateConfig(rc); err != nil {
		return core.Invalid("raft: config: %v", err)
	}

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(s.logStore, s.logStore, s.snaps)
		if err != nil {
			return core.Errorf(core.CodeInternal, "raft: %w", err)
		}
		if !has {
			conf := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter, ID: rc.LocalID, Address: s.trans.LocalAddr(),
			}}}
			if err := raft.BootstrapCluster(rc, s.logStore, s.logStore, s.snaps, s.trans, conf); err != nil {
				return core.Errorf(core.CodeInternal, "raft: bootstrap: %w", err)
			}
		}
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, s.logStore, s.logStore, s.snaps, s.trans)
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: start: %w", err)
	}
	return nil
}

func lockErr(err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return core.Errorf(core.CodeUnavailable, "raft: data folder is locked by another process: %w", err)
	}
	return core.Errorf(core.CodeInternal, "%w", err)
}

// catchUp makes sure the state file is not behind raft's newest snapshot
// before raft starts. With NoSnapshotRestoreOnStart raft resumes applying
// after the snapshot's index, so entries between the state's applied index
// and the snapshot would otherwise be skipped. That happens only when the
// state file is older than the snapshot (a crash between a follower storing
// an installed snapshot and swapping it in, or a state file restored from a
// backup). Entries still in the log are applied from it; otherwise the
// snapshot is restored.
func (s *Store) catchUp() error {
	list, err := s.snaps.List()
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil
	}
	snap := list[0]
	from := s.fsm.appliedIndex.Load() + 1
	if from > snap.Index {
		return nil
	}
	// Apply the gap from the log in chunks. If an entry is missing (the log
	// was compacted), fall back to the snapshot, which replaces whatever
	// the chunks applied.
	s.logger.Info("state file is behind the newest snapshot; catching up", "applied", from-1, "snapshot", snap.Index)
	batch := make([]*raft.Log, 0, 256)
	for i := from; i <= snap.Index; i++ {
		l := new(raft.Log)
		if err := s.logStore.GetLog(i, l); err != nil {
			return s.restoreFrom(snap)
		}
		batch = append(batch, l)
		if len(batch) == cap(batch) || i == snap.Index {
			s.fsm.ApplyBatch(batch) // per-entry errors are deterministic, as on peers
			if err := s.fsm.failure(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// restoreFrom restores the FSM from a stored raft snapshot.
func (s *Store) restoreFrom(snap *raft.SnapshotMeta) error {
	s.logger.Warn("log entries missing; restoring the snapshot", "snapshot", snap.ID)
	_, rc, err := s.snaps.Open(snap.ID)
	if err != nil {
		return core.Errorf(core.CodeInternal, "raft: open snapshot %s: %w", snap.ID, err)
	}
	if err := s.fsm.Restore(rc); err != nil {
		return core.Errorf(core.CodeInternal, "raft: restore snapshot %s: %w", snap.ID, err)
	}
	return nil
}

// Close shuts raft down (without leaving the cluster), stops the transport
// and closes the files. It is idempotent; Open on the same Dir resumes.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.raft != nil {
			if err := s.raft.Shutdown().Error(); err != nil {
				s.closeErr = err
			}
		}
		close(s.done)
		s.wg.Wait()
		if err := s.release(); err != nil && s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

// release closes whatever open() managed to open, in reverse order.
func (s *Store) release() error {
	var errs []error
	if s.trans != nil {
		errs = append(errs, s.trans.Close())
	}
	s.stopRPC()
	if s.logStore != nil {
		errs = append(errs, s.logStore.Close())
	}
	if s.fsm != nil {
		errs = append(errs, s.fsm.close())
	}
	return errors.Join(errs...)
}
