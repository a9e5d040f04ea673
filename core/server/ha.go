package server

import (
	"context"
	"errors"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/storage"
)

// High availability. Every unsealed node is a standby or the active node;
// the active node is the raft leader once it has finished becoming active.
//
//   - Unsealed (every node): the barrier is open, the cluster transport has
//     the node's certificate, and the subsystems that run on every node
//     (EveryNode: the audit devices, which record forwarded requests; the
//     streams and query index of the node's own log) are started.
//   - Active (the leader only): after a raft barrier (every earlier write
//     applied) and a keyring reload, the identity store and the mounts are
//     loaded, the other subsystems start (authorization, leases, compliance,
//     reports) and the scheduled jobs run. Leases expire and periodic jobs
//     run here only: a node that stops leading stops them before anything
//     else, and the new active node loads the leases from the replicated
//     state, so no lease is revoked by two nodes.
//   - A node that stops leading (or seals) goes back to standby: scheduled
//     jobs stop, the active-only subsystems stop in reverse order, mounts
//     unload.

// StandbyReadIndexWait bounds how long an unsealing standby waits for the
// leader's read index before its subsystems start.
const StandbyReadIndexWait = 5 * time.Second

// EveryNode is implemented by subsystems that run on every unsealed node,
// standbys included; the others run on the active node only.
type EveryNode interface {
	EveryNode() bool
}

func everyNode(sub Subsystem) bool {
	if p, ok := sub.(Plug); ok {
		sub = p.Subsystem
	}
	e, ok := sub.(EveryNode)
	return ok && e.EveryNode()
}

// nodeRecord is what each node publishes about itself in the replicated
// storage (barrier), so that every node can name the active node's API
// address (sys/leader's leader_address).
type nodeRecord struct {
	NodeID      string    `json:"node_id"`
	APIAddr     string    `json:"api_addr"`
	ClusterAddr string    `json:"cluster_addr"`
	Updated     time.Time `json:"updated"`
}

const nodesPrefix = "core/cluster/nodes/"

// publishNode writes this node's record (a forwarded write on a standby).
// Best effort: it is retried at the next unseal.
func (s *Server) publishNode(ctx context.Context) {
	rec := nodeRecord{NodeID: s.NodeID(), APIAddr: s.apiAddr(), ClusterAddr: s.raft.Addr(), Updated: s.now().UTC()}
	var old nodeRecord
	if ok, err := storage.GetJSON(ctx, s.barrier, nodesPrefix+s.NodeID(), &old); err == nil && ok &&
		old.APIAddr == rec.APIAddr && old.ClusterAddr == rec.ClusterAddr {
		return
	}
	if err := storage.PutJSON(ctx, s.barrier, nodesPrefix+s.NodeID(), rec); err != nil {
		s.log.Warn("could not publish this node's addresses; sys/leader on other nodes may not name it", "error", err)
	}
}

// leaderAPIAddr returns the API address the leader published ("" when
// unknown or sealed).
func (s *Server) leaderAPIAddr(ctx context.Context) string {
	id, _ := s.raft.Leader()
	if id == "" {
		return ""
	}
	if id == s.NodeID() {
		return s.apiAddr()
	}
	var rec nodeRecord
	if ok, err := storage.GetJSON(ctx, s.barrier, nodesPrefix+id, &rec); err != nil || !ok {
		return ""
	}
	return rec.APIAddr
}

// startHA follows leadership while unsealed: it makes this node active when
// it leads and a standby when it stops. If the node leads already, it
// becomes active before startHA returns. Caller holds stateMu.
func (s *Server) startHA(ctx context.Context) {
	ch, cancel := s.raft.LeaderCh()
	hctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.haStop, s.haDone = func() { stop(); cancel() }, done
	if s.raft.IsLeader() {
		if err := s.activateLocked(ctx); err != nil {
			s.log.Error("could not become the active node", "error", err)
		}
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-hctx.Done():
				return
			case leader, ok := <-ch:
				if !ok {
					return
				}
				s.stateMu.Lock()
				if hctx.Err() == nil && s.unsealedFlag.Load() {
					if leader && s.raft.IsLeader() {
						if err := s.activateLocked(hctx); err != nil {
							// A leader that cannot serve hands over.
							s.log.Error("could not become the active node; stepping down", "error", err)
							go func() {
								sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
								defer cancel()
								if err := s.raft.StepDown(sctx); err != nil {
									s.log.Error("stepping down failed", "error", err)
								}
							}()
						}
					} else if !leader {
						s.deactivateLocked(hctx)
					}
				}
				s.stateMu.Unlock()
			}
		}
	}()
}

// activateLocked makes this leader the active node. Caller holds stateMu.
func (s *Server) activateLocked(ctx context.Context) error {
	if s.active.Load() || s.barrier.Sealed() {
		return nil
	}
	start := s.now()
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.raft.Barrier(bctx); err != nil {
		return err
	}
	// A standby's keyring may predate a rotation on the previous active
	// node.
	if err := s.barrier.Reload(ctx); err != nil {
		return err
	}
	// The namespace tree as the previous active node left it: mounts,
	// tokens and identity are resolved in it.
	if err := s.nss.Load(ctx); err != nil {
		return core.Errorf(core.CodeInternal, "namespaces failed to load: %v", err)
	}
	// Identity decides policies and disabled entities: without it the
	// node does not serve (fail closed).
	if err := s.ident.Load(ctx); err != nil {
		return core.Errorf(core.CodeInternal, "identity store failed to load: %v", err)
	}
	s.sys.InvalidateCORS()
	if err := s.router.Load(ctx); err != nil {
		s.log.Error("some mounts failed to load", "error", err)
	}
	var started []Subsystem
	for _, sub := range s.opts.Subsystems {
		if everyNode(sub) {
			continue
		}
		if err := sub.Unsealed(ctx); err != nil {
			for i := len(started) - 1; i >= 0; i-- {
				started[i].Sealing(ctx)
			}
			s.router.Unload(ctx)
			s.ident.Clear()
			return core.Errorf(core.CodeInternal, "%s failed to start: %v", sub.Name(), err)
		}
		started = append(started, sub)
	}
	s.loadAutopilotConfig(ctx)
	bg, stop := context.WithCancel(context.Background())
	s.stopBG = stop
	s.jobsDone.Add(1)
	go s.background(bg)
	if err := s.sys.RecordVersion(ctx); err != nil {
		s.log.Warn("could not record the version in sys/version-history", "error", err)
	}
	now := s.now()
	s.activeSince.Store(&now)
	s.active.Store(true)
	s.log.Info("this node is the active node", "took", now.Sub(start).String())
	return nil
}

// deactivateLocked steps back to standby. Caller holds stateMu.
func (s *Server) deactivateLocked(ctx context.Context) {
	if !s.active.Swap(false) {
		return
	}
	if s.stopBG != nil {
		s.stopBG()
		s.jobsDone.Wait()
		s.stopBG = nil
	}
	for i := len(s.opts.Subsystems) - 1; i >= 0; i-- {
		if sub := s.opts.Subsystems[i]; !everyNode(sub) {
			sub.Sealing(ctx)
		}
	}
	s.router.Unload(ctx)
	s.ident.Clear()
	s.activeSince.Store(nil)
	s.log.Info("this node is a standby")
}

// onReplicatedKeys keeps a standby's keyring current: a rotation or a
// restored snapshot on the active node replaces the keyring record.
func (s *Server) onReplicatedKeys(keys []string) {
	reload := keys == nil
	for _, k := range keys {
		if k == barrier.KeyringPath {
			reload = true
			break
		}
	}
	// On raft's apply goroutine: no barrier lock here (a barrier write may
	// hold it while it waits for this very apply).
	if !reload || s.active.Load() || !s.unsealedFlag.Load() {
		return
	}
	go func() {
		if err := s.barrier.Reload(context.Background()); err != nil && !errors.Is(err, core.ErrSealed) {
			s.log.Error("the replicated keyring does not open with this node's root key", "error", err)
		}
	}()
}

// --- autopilot configuration, kept in the barrier ---

const autopilotKey = "core/raft/autopilot/configuration"

func (s *Server) loadAutopilotConfig(ctx context.Context) {
	c := raftstore.DefaultAutopilotConfig()
	if ok, err := storage.GetJSON(ctx, s.barrier, autopilotKey, &c); err != nil {
		s.log.Warn("autopilot configuration unreadable; using the defaults", "error", err)
	} else if !ok {
		c = raftstore.DefaultAutopilotConfig()
	}
	s.raft.SetAutopilotConfig(c)
}
