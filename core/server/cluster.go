package server

import (
	"context"
	"sort"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/clustertls"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/system"
)

var _ system.Cluster = (*Server)(nil)

// Peers lists the raft configuration and its index.
func (s *Server) Peers(ctx context.Context) ([]system.Peer, uint64, error) {
	conf, err := s.raft.Configuration()
	if err != nil {
		return nil, 0, err
	}
	out := make([]system.Peer, 0, len(conf))
	for _, c := range conf {
		out = append(out, system.Peer{NodeID: c.ID, Address: c.Address, Leader: c.Leader, Voter: c.Voter})
	}
	return out, s.raft.AppliedIndex(), nil
}

// RemovePeer removes id from the raft configuration and revokes its cluster
// certificate, so that the node cannot take part again until it joins anew.
func (s *Server) RemovePeer(ctx context.Context, id string) error {
	if err := validNodeID(id); err != nil {
		return err
	}
	conf, err := s.raft.Configuration()
	if err != nil {
		return err
	}
	found := false
	for _, c := range conf {
		found = found || c.ID == id
	}
	if !found {
		return core.Errorf(core.CodeNotFound, "node %q is not a member of the raft configuration", id)
	}
	if id == s.NodeID() {
		return core.Invalid("the active node cannot remove itself: remove it from another node once it is a standby (step down first)")
	}
	if err := s.raft.RemoveServer(ctx, id); err != nil {
		return err
	}
	s.revokeNode(ctx, id)
	return nil
}

// revokeNode revokes a removed node's certificate and forgets its record.
func (s *Server) revokeNode(ctx context.Context, id string) {
	if err := clustertls.Revoke(ctx, s.barrier, id); err != nil {
		s.log.Error("removed node's cluster certificate could not be revoked", "node", id, "error", err)
	}
	_ = s.barrier.Delete(ctx, nodesPrefix+id)
	s.log.Info("node removed from the cluster; its cluster certificate is revoked", "node", id)
}

// onAutopilotRemoved runs on the leader after autopilot removed a dead
// server.
func (s *Server) onAutopilotRemoved(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.revokeNode(ctx, id)
}

// AutopilotState is sys/storage/raft/autopilot/state in Vault's shape.
func (s *Server) AutopilotState(ctx context.Context) (map[string]any, error) {
	st, ok := s.raft.AutopilotState()
	if !ok {
		return nil, core.Errorf(core.CodeUnavailable, "autopilot state is not available yet (it runs on the active node and needs a first update)")
	}
	servers := map[string]any{}
	ids := make([]string, 0, len(st.Servers))
	for id := range st.Servers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v := st.Servers[id]
		stable := ""
		if !v.StableSince.IsZero() {
			stable = v.StableSince.UTC().Format(time.RFC3339Nano)
		}
		servers[id] = map[string]any{
			"id": v.ID, "name": v.ID, "address": v.Address, "node_status": v.NodeStatus,
			"last_contact": v.LastContact.String(), "last_term": v.LastTerm, "last_index": v.LastIndex,
			"healthy": v.Healthy, "stable_since": stable, "status": v.Status, "version": Version,
			"node_type": "voter", "meta": nil,
		}
	}
	voters := st.Voters
	if voters == nil {
		voters = []string{}
	}
	sort.Strings(voters)
	out := map[string]any{"healthy": st.Healthy, "failure_tolerance": st.FailureTolerance, "leader": st.Leader,
		"voters": voters, "servers": servers, "optimistic_failure_tolerance": st.FailureTolerance}
	if len(st.NonVoters) > 0 {
		sort.Strings(st.NonVoters)
		out["non_voters"] = st.NonVoters
	}
	return out, nil
}

// AutopilotConfig returns the autopilot configuration.
func (s *Server) AutopilotConfig(ctx context.Context) (system.AutopilotConfig, error) {
	c := raftstore.DefaultAutopilotConfig()
	if _, err := storage.GetJSON(ctx, s.barrier, autopilotKey, &c); err != nil {
		return system.AutopilotConfig{}, err
	}
	return system.AutopilotConfig{CleanupDeadServers: c.CleanupDeadServers, DeadServerLastContactThreshold: c.DeadServerLastContactThreshold,
		LastContactThreshold: c.LastContactThreshold, MaxTrailingLogs: c.MaxTrailingLogs, MinQuorum: c.MinQuorum,
		ServerStabilizationTime: c.ServerStabilizationTime}, nil
}

// SetAutopilotConfig stores the configuration (replicated) and applies it.
func (s *Server) SetAutopilotConfig(ctx context.Context, c system.AutopilotConfig) error {
	rc := raftstore.AutopilotConfig{CleanupDeadServers: c.CleanupDeadServers, DeadServerLastContactThreshold: c.DeadServerLastContactThreshold,
		LastContactThreshold: c.LastContactThreshold, MaxTrailingLogs: c.MaxTrailingLogs, MinQuorum: c.MinQuorum,
		ServerStabilizationTime: c.ServerStabilizationTime}
	if err := storage.PutJSON(ctx, s.barrier, autopilotKey, rc); err != nil {
		return err
	}
	s.raft.SetAutopilotConfig(rc)
	return nil
}
