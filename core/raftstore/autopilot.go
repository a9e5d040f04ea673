package raftstore

import (
	"context"
	"sync"
	"time"

	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/hashicorp/raft"
)

// AutopilotConfig is autopilot's configuration, in Vault's terms
// (sys/storage/raft/autopilot/configuration).
type AutopilotConfig struct {
	// CleanupDeadServers removes a server that has not answered for
	// DeadServerLastContactThreshold, as long as MinQuorum voters remain.
	CleanupDeadServers             bool          `json:"cleanup_dead_servers"`
	DeadServerLastContactThreshold time.Duration `json:"dead_server_last_contact_threshold"`
	// LastContactThreshold: a server not heard from for longer is unhealthy.
	LastContactThreshold time.Duration `json:"last_contact_threshold"`
	// MaxTrailingLogs: a server further behind the leader's log is unhealthy.
	MaxTrailingLogs uint64 `json:"max_trailing_logs"`
	// MinQuorum is the fewest voters dead-server cleanup leaves.
	MinQuorum uint `json:"min_quorum"`
	// ServerStabilizationTime is how long a new server must stay healthy
	// before it is promoted to voter.
	ServerStabilizationTime time.Duration `json:"server_stabilization_time"`
}

// DefaultAutopilotConfig is Vault's default autopilot configuration.
func DefaultAutopilotConfig() AutopilotConfig {
	return AutopilotConfig{
		DeadServerLastContactThreshold: 24 * time.Hour,
		LastContactThreshold:           10 * time.Second,
		MaxTrailingLogs:                1000,
		MinQuorum:                      3,
		ServerStabilizationTime:        10 * time.Second,
	}
}

// AutopilotServer is one server in AutopilotState.
type AutopilotServer struct {
	ID          string
	Address     string
	NodeStatus  string // alive, failed, left
	Status      string // leader, voter, non-voter
	Healthy     bool
	StableSince time.Time
	LastContact time.Duration
	LastTerm    uint64
	LastIndex   uint64
}

// AutopilotState is the leader's view of the cluster's health.
type AutopilotState struct {
	Healthy          bool
	FailureTolerance int
	Leader           string
	Voters           []string
	NonVoters        []string
	Servers          map[string]AutopilotServer
}

// pilot is the autopilot delegate: it knows the servers from the raft
// configuration, probes them over the cluster RPC and removes the failed
// ones when configured to.
type pilot struct {
	s  *Store
	ap *autopilot.Autopilot

	mu       sync.Mutex
	cfg      AutopilotConfig
	lastSeen map[raft.ServerID]time.Time
	state    *autopilot.State
	running  bool
}

var _ autopilot.ApplicationIntegration = (*pilot)(nil)

// startPilot creates autopilot; it runs while this node leads.
func (s *Store) startPilot() {
	p := &pilot{s: s, cfg: DefaultAutopilotConfig(), lastSeen: map[raft.ServerID]time.Time{}}
	opts := []autopilot.Option{autopilot.WithLogger(s.logger.Named("autopilot"))}
	if s.cfg.AutopilotUpdateInterval > 0 {
		opts = append(opts, autopilot.WithUpdateInterval(s.cfg.AutopilotUpdateInterval))
	}
	if s.cfg.AutopilotReconcileInterval > 0 {
		opts = append(opts, autopilot.WithReconcileInterval(s.cfg.AutopilotReconcileInterval))
	}
	p.ap = autopilot.New(s.raft, p, opts...)
	s.pilot = p
	ch, cancel := s.LeaderCh()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		var stop context.CancelFunc
		for {
			select {
			case leader, ok := <-ch:
				if !ok {
					if stop != nil {
						stop()
						<-p.ap.Stop()
					}
					return
				}
				switch {
				case leader && stop == nil:
					var ctx context.Context
					ctx, stop = context.WithCancel(context.Background())
					p.mu.Lock()
					p.lastSeen = map[raft.ServerID]time.Time{}
					p.running = true
					p.mu.Unlock()
					p.ap.Start(ctx)
				case !leader && stop != nil:
					stop()
					<-p.ap.Stop()
					stop = nil
					p.mu.Lock()
					p.running, p.state = false, nil
					p.mu.Unlock()
				}
			case <-s.done:
				if stop != nil {
					stop()
					<-p.ap.Stop()
				}
				return
			}
		}
	}()
}

// SetAutopilotConfig replaces autopilot's configuration (kept in memory:
// the server stores it in the barrier and sets it on every node).
func (s *Store) SetAutopilotConfig(c AutopilotConfig) {
	s.pilot.mu.Lock()
	s.pilot.cfg = c
	s.pilot.mu.Unlock()
}

// AutopilotConfiguration returns autopilot's current configuration.
func (s *Store) AutopilotConfiguration() AutopilotConfig {
	s.pilot.mu.Lock()
	defer s.pilot.mu.Unlock()
	return s.pilot.cfg
}

// AutopilotState returns the leader's autopilot state; ok is false on a
// follower, or before the leader's first update.
func (s *Store) AutopilotState() (AutopilotState, bool) {
	s.pilot.mu.Lock()
	st, running := s.pilot.state, s.pilot.running
	s.pilot.mu.Unlock()
	if !running || st == nil {
		if !running {
			return AutopilotState{}, false
		}
		if st = s.pilot.ap.GetState(); st == nil || len(st.Servers) == 0 {
			return AutopilotState{}, false
		}
	}
	out := AutopilotState{Healthy: st.Healthy, FailureTolerance: st.FailureTolerance, Leader: string(st.Leader),
		Servers: map[string]AutopilotServer{}}
	for _, v := range st.Voters {
		out.Voters = append(out.Voters, string(v))
	}
	for id, ss := range st.Servers {
		status := string(ss.State)
		if status == string(autopilot.RaftNonVoter) || status == string(autopilot.RaftStaging) {
			out.NonVoters = append(out.NonVoters, string(id))
		}
		out.Servers[string(id)] = AutopilotServer{
			ID: string(id), Address: string(ss.Server.Address), NodeStatus: string(ss.Server.NodeStatus),
			Status: status, Healthy: ss.Health.Healthy, StableSince: ss.Health.StableSince,
			LastContact: ss.Stats.LastContact, LastTerm: ss.Stats.LastTerm, LastIndex: ss.Stats.LastIndex,
		}
	}
	return out, true
}

// AutopilotConfig implements autopilot.ApplicationIntegration.
func (p *pilot) AutopilotConfig() *autopilot.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &autopilot.Config{
		CleanupDeadServers:      p.cfg.CleanupDeadServers,
		LastContactThreshold:    p.cfg.LastContactThreshold,
		MaxTrailingLogs:         p.cfg.MaxTrailingLogs,
		MinQuorum:               p.cfg.MinQuorum,
		ServerStabilizationTime: p.cfg.ServerStabilizationTime,
	}
}

// NotifyState keeps the newest state.
func (p *pilot) NotifyState(st *autopilot.State) {
	p.mu.Lock()
	if p.running {
		p.state = st
	}
	p.mu.Unlock()
}

// KnownServers are the servers of the raft configuration; a server that has
// not answered a stats probe for DeadServerLastContactThreshold is failed.
func (p *pilot) KnownServers() map[raft.ServerID]*autopilot.Server {
	f := p.s.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	_, leaderID := p.s.raft.LeaderWithID()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[raft.ServerID]*autopilot.Server{}
	for _, srv := range f.Configuration().Servers {
		seen, ok := p.lastSeen[srv.ID]
		if !ok || srv.ID == raft.ServerID(p.s.cfg.NodeID) {
			seen = now // first noticed now: it has the whole threshold to answer
			p.lastSeen[srv.ID] = now
		}
		status := autopilot.NodeAlive
		if now.Sub(seen) > p.cfg.DeadServerLastContactThreshold {
			status = autopilot.NodeFailed
		}
		out[srv.ID] = &autopilot.Server{ID: srv.ID, Name: string(srv.ID), Address: srv.Address,
			NodeStatus: status, RaftVersion: raft.ProtocolVersionMax, IsLeader: srv.ID == leaderID,
			NodeType: autopilot.NodeVoter}
	}
	return out
}

// FetchServerStats probes every server of the configuration (failed ones
// too, so that one that comes back is alive again) and returns the stats
// of those asked for.
func (p *pilot) FetchServerStats(ctx context.Context, want map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	f := p.s.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	self := raft.ServerID(p.s.cfg.NodeID)
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[raft.ServerID]*autopilot.ServerStats{}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == self {
			st := p.s.localStats()
			mu.Lock()
			out[srv.ID] = &autopilot.ServerStats{LastContact: 0, LastTerm: st.LastTerm, LastIndex: st.LastIndex}
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(srv raft.Server) {
			defer wg.Done()
			st, err := p.s.FetchStats(ctx, string(srv.Address))
			if err != nil || st.NodeID != string(srv.ID) {
				return
			}
			lc := time.Duration(st.LastContactMS) * time.Millisecond
			if st.LastContactMS < 0 {
				lc = -1
			}
			mu.Lock()
			out[srv.ID] = &autopilot.ServerStats{LastContact: lc, LastTerm: st.LastTerm, LastIndex: st.LastIndex}
			mu.Unlock()
			p.mu.Lock()
			p.lastSeen[srv.ID] = time.Now()
			p.mu.Unlock()
		}(srv)
	}
	wg.Wait()
	for id := range out {
		if _, ok := want[id]; !ok {
			delete(out, id)
		}
	}
	return out
}

// RemoveFailedServer removes a dead server and tells the store's OnRemoved.
func (p *pilot) RemoveFailedServer(srv *autopilot.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), p.s.cfg.ApplyTimeout)
	defer cancel()
	if err := p.s.RemoveServer(ctx, string(srv.ID)); err != nil {
		p.s.logger.Warn("autopilot: removing a dead server failed", "id", srv.ID, "error", err)
		return
	}
	p.s.logger.Info("autopilot: removed a dead server", "id", srv.ID)
	if f := p.s.cfg.OnRemoved; f != nil {
		f(string(srv.ID))
	}
}
