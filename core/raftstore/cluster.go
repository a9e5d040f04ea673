package raftstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vigilsec/vigil/core"
)

// Server is one member of the raft configuration.
type Server struct {
	ID      string `json:"node_id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
}

// NodeID returns this node's raft ID.
func (s *Store) NodeID() string { return s.cfg.NodeID }

// Addr returns the transport address other nodes use to reach this node
// (the advertised address, with the real port when BindAddr used port 0).
func (s *Store) Addr() string { return string(s.trans.LocalAddr()) }

// Leader returns the current leader's ID and address as known to this node,
// or empty strings when there is none.
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// IsLeader reports whether this node is currently the leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// ConfirmLeader returns nil when this node is the leader and a quorum of
// voters has confirmed it within the leader lease (Config.LeaderLeaseTimeout,
// shorter than the heartbeat timeout after which a follower would vote for
// another node): when the last confirmation started longer ago, it asks
// the followers again (one heartbeat round; at once on a single node). A
// leader that was paused or partitioned for longer than its lease must be
// confirmed before it serves reads from its own copy: meanwhile another
// node may have been elected and acknowledged writes. Steady traffic pays
// one round per lease. Errors: CodeUnavailable when this node is not, or
// no longer, the leader; ctx.Err() when ctx ends first.
func (s *Store) ConfirmLeader(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return s.notLeader()
	}
	if c := s.confirmed.Load(); c != 0 && time.Since(s.epoch)-time.Duration(c) < s.cfg.LeaderLeaseTimeout {
		return nil
	}
	start := int64(time.Since(s.epoch)) + 1
	if err := wait(ctx, s.raft.VerifyLeader()); err != nil {
		return s.raftErr("confirm leadership", err)
	}
	for {
		c := s.confirmed.Load()
		if c >= start || s.confirmed.CompareAndSwap(c, start) {
			return nil
		}
	}
}

// State returns this node's raft state: "Follower", "Candidate", "Leader" or
// "Shutdown".
func (s *Store) State() string { return s.raft.State().String() }

// AppliedIndex returns the index of the last raft entry written to the state
// file. Trailing entries that carry no data (no-ops, barriers) do not move
// it, so it can be slightly below raft's applied index.
func (s *Store) AppliedIndex() uint64 { return s.fsm.appliedIndex.Load() }

// Stats returns raft's statistics plus "fsm_applied_index",
// "fsm_applied_term" and "fsm_failed" (the failure, or "").
func (s *Store) Stats() map[string]string {
	st := s.raft.Stats()
	st["fsm_applied_index"] = strconv.FormatUint(s.fsm.appliedIndex.Load(), 10)
	st["fsm_applied_term"] = strconv.FormatUint(s.fsm.appliedTerm.Load(), 10)
	st["fsm_failed"] = ""
	if err := s.fsm.failure(); err != nil {
		st["fsm_failed"] = err.Error()
	}
	return st
}

// Configuration returns the latest raft configuration, marking the leader.
func (s *Store) Configuration() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.raftErr("configuration", err)
	}
	leader, _ := s.Leader()
	var out []Server
	for _, srv := range f.Configuration().Servers {
		out = append(out, Server{
			ID:      string(srv.ID),
			Address: string(srv.Address),
			Voter:   srv.Suffrage == raft.Voter,
			Leader:  string(srv.ID) == leader,
		})
	}
	return out, nil
}

// AddVoter adds (or updates the address of) a voting member. Leader only; it
// returns once the configuration change is committed. The new node must be
// running (Open without Bootstrap) at addr; it then catches up by
// replication or snapshot.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return core.Invalid("raft: add voter: id and address are required")
	}
	f := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout)
	if err := wait(ctx, f); err != nil {
		return s.raftErr("add voter", err)
	}
	return nil
}

// AddNonvoter adds (or updates the address of) a member that receives
// replication but does not vote. Leader only; it returns once the change is
// committed. Autopilot promotes it to voter once it has been healthy (caught
// up and in contact) for the server stabilization time.
func (s *Store) AddNonvoter(ctx context.Context, id, addr string) error {
	if id == "" || addr == "" {
		return core.Invalid("raft: add non-voter: id and address are required")
	}
	f := s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout)
	if err := wait(ctx, f); err != nil {
		return s.raftErr("add non-voter", err)
	}
	return nil
}

// HasState reports whether this node has raft state: it bootstrapped a
// cluster, or joined one and received entries. A node without state is
// neither a cluster of its own nor a member of one yet.
func (s *Store) HasState() (bool, error) {
	has, err := raft.HasExistingState(s.logStore, s.logStore, s.snaps)
	if err != nil {
		return false, core.Errorf(core.CodeInternal, "raft: %w", err)
	}
	return has, nil
}

// Bootstrap makes a node without raft state the single voter of a new
// cluster (Config.Bootstrap, done later: at initialisation). It returns
// once the node leads. A node that has state is left alone (nil).
func (s *Store) Bootstrap(ctx context.Context) error {
	has, err := s.HasState()
	if err != nil || has {
		return err
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(s.cfg.NodeID), Address: s.trans.LocalAddr(),
	}}}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return core.Errorf(core.CodeInternal, "raft: bootstrap: %w", err)
	}
	return s.WaitLeader(ctx)
}

// RemoveServer removes a member. Leader only; it returns once the change is
// committed. A leader that removes itself steps down and shuts its raft down
// (State "Shutdown"); a removed follower simply stops receiving replication
// and should be closed by its operator.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	if id == "" {
		return core.Invalid("raft: remove server: id is required")
	}
	f := s.raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout)
	if err := wait(ctx, f); err != nil {
		return s.raftErr("remove server", err)
	}
	return nil
}

// Barrier blocks until every entry committed before it is applied to this
// node's state. Leader only. A new leader calls it before serving reads
// that must reflect all earlier writes.
func (s *Store) Barrier(ctx context.Context) error {
	if err := wait(ctx, s.raft.Barrier(s.cfg.ApplyTimeout)); err != nil {
		return s.raftErr("barrier", err)
	}
	return nil
}

// WaitLeader blocks until this node knows a leader. If the leader is this
// node, it also waits for a Barrier, so that every earlier entry is applied.
// It returns ctx.Err() when ctx ends first and a CodeUnavailable error when
// the store is closed.
func (s *Store) WaitLeader(ctx context.Context) error {
	ch := make(chan raft.Observation, 1)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(obs)
	defer s.raft.DeregisterObserver(obs)
	for {
		if id, _ := s.Leader(); id != "" {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errClosed
		}
	}
	if s.IsLeader() {
		return s.Barrier(ctx)
	}
	return nil
}

// LeaderCh returns a channel that receives true when this node becomes the
// leader and false when it stops being the leader, and a function that
// unsubscribes. The channel holds one value; when the reader falls behind,
// older values are replaced by the newest, so it always ends on the current
// state. It is closed by cancel or Close.
func (s *Store) LeaderCh() (<-chan bool, func()) {
	ch := make(chan bool, 1)
	s.subsMu.Lock()
	select {
	case <-s.done:
		close(ch)
		s.subsMu.Unlock()
		return ch, func() {}
	default:
	}
	s.subs[ch] = struct{}{}
	s.subsMu.Unlock()
	return ch, func() {
		s.subsMu.Lock()
		defer s.subsMu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// fanOutLeadership forwards raft's leadership notifications to LeaderCh
// subscribers without ever blocking raft.
func (s *Store) fanOutLeadership() {
	defer s.wg.Done()
	for {
		select {
		case v := <-s.notifyCh:
			s.subsMu.Lock()
			for ch := range s.subs {
				select {
				case ch <- v:
				default:
					select { // replace the stale value
					case <-ch:
					default:
					}
					ch <- v // room: this goroutine is the only sender
				}
			}
			s.subsMu.Unlock()
		case <-s.done:
			s.subsMu.Lock()
			for ch := range s.subs {
				delete(s.subs, ch)
				close(ch)
			}
			s.subsMu.Unlock()
			return
		}
	}
}

// SoleVoter reports whether this node's latest configuration has exactly
// one voter, itself: a single-node cluster, which elects itself.
func (s *Store) SoleVoter() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	voters, self := 0, false
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters++
			self = self || string(srv.ID) == s.cfg.NodeID
		}
	}
	return voters == 1 && self
}

// StepDown asks raft to hand leadership to another voter (a leader that
// cannot serve). It returns once the transfer is done or has failed.
func (s *Store) StepDown(ctx context.Context) error {
	if err := wait(ctx, s.raft.LeadershipTransfer()); err != nil {
		return s.raftErr("leadership transfer", err)
	}
	return nil
}
