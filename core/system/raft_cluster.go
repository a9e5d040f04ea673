package system

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Cluster is the raft cluster API of the sys/ mount: joining, membership
// and autopilot, in Vault's shapes.
type Cluster interface {
	// Join makes this (sealed) node start joining the cluster led by the
	// node at req.LeaderAPIAddr. With Shamir keys the join completes when
	// the node is unsealed; with auto-unseal at once.
	Join(ctx context.Context, req JoinRequest) error
	// JoinChallenge and JoinAnswer are the leader's half of a join.
	JoinChallenge(ctx context.Context, nodeID string) (*JoinChallenge, error)
	JoinAnswer(ctx context.Context, req JoinAnswerRequest) (*JoinAnswer, error)
	// Peers lists the raft configuration; RemovePeer removes a member and
	// revokes its cluster certificate.
	Peers(ctx context.Context) ([]Peer, uint64, error)
	RemovePeer(ctx context.Context, id string) error
	// AutopilotState is the leader's view of every node's health.
	AutopilotState(ctx context.Context) (map[string]any, error)
	AutopilotConfig(ctx context.Context) (AutopilotConfig, error)
	SetAutopilotConfig(ctx context.Context, c AutopilotConfig) error
}

// JoinRequest is sys/storage/raft/join's body (Vault's).
type JoinRequest struct {
	LeaderAPIAddr       string
	LeaderCACert        string
	LeaderClientCert    string
	LeaderClientKey     string
	LeaderTLSServerName string
	NonVoter            bool
	Retry               bool
}

// JoinChallenge is what the leader hands a node that asks to join: a
// random challenge encrypted by the cluster's keyring, and the seal
// records (encrypted themselves) with which a holder of the unseal keys
// opens it.
type JoinChallenge struct {
	Challenge []byte
	Records   map[string][]byte
}

// JoinAnswerRequest is a joining node's answer.
type JoinAnswerRequest struct {
	NodeID      string
	Answer      []byte
	ClusterAddr string
	NonVoter    bool
}

// JoinAnswer is the leader's reply to a correct answer: the node's cluster
// certificate (encrypted like the challenge), the raft index the node must
// reach before it unseals, and the leader.
type JoinAnswer struct {
	Certificate []byte
	Index       uint64
	LeaderID    string
	LeaderAddr  string
}

// Peer is one member of the raft configuration.
type Peer struct {
	NodeID  string
	Address string
	Leader  bool
	Voter   bool
}

// AutopilotConfig is sys/storage/raft/autopilot/configuration.
type AutopilotConfig struct {
	CleanupDeadServers             bool
	DeadServerLastContactThreshold time.Duration
	LastContactThreshold           time.Duration
	MaxTrailingLogs                uint64
	MinQuorum                      uint
	ServerStabilizationTime        time.Duration
}

func (b *Backend) clusterRoutes() []framework.Route {
	str := func() *framework.FieldSchema { return &framework.FieldSchema{Type: framework.TypeString} }
	boolean := func() *framework.FieldSchema { return &framework.FieldSchema{Type: framework.TypeBool} }
	return []framework.Route{
		// Node-local, on a sealed node that has no token yet: as Vault.
		{Pattern: `storage/raft/join`, Unaudited: true, SealedOK: true, Unauthenticated: true,
			Fields: map[string]*framework.FieldSchema{
				"leader_api_addr": str(), "leader_ca_cert": str(), "leader_client_cert": str(), "leader_client_key": str(),
				"leader_tls_servername": str(), "auto_join": str(), "auto_join_scheme": str(),
				"auto_join_port": {Type: framework.TypeInt}, "non_voter": boolean(), "retry": boolean(),
			},
			Operations: one(core.OpUpdate, b.raftJoin)},
		// The leader's half of a join. Audited: a node that cannot prove
		// it holds the unseal keys is refused, and the attempt recorded.
		{Pattern: `storage/raft/bootstrap/challenge`, Unauthenticated: true,
			Fields:     map[string]*framework.FieldSchema{"server_id": str()},
			Operations: one(core.OpUpdate, b.raftChallenge)},
		{Pattern: `storage/raft/bootstrap/answer`, Unauthenticated: true,
			Fields: map[string]*framework.FieldSchema{"server_id": str(), "answer": str(), "cluster_addr": str(),
				"non_voter": boolean()},
			Operations: one(core.OpUpdate, b.raftAnswer)},
		{Pattern: `storage/raft/configuration`, Operations: one(core.OpRead, b.raftConfiguration)},
		{Pattern: `storage/raft/remove-peer`, Sudo: true,
			Fields:     map[string]*framework.FieldSchema{"server_id": str(), "dr_operation_token": str()},
			Operations: one(core.OpUpdate, b.raftRemovePeer)},
		{Pattern: `storage/raft/autopilot/state`, Operations: one(core.OpRead, b.autopilotState)},
		{Pattern: `storage/raft/autopilot/configuration`,
			Fields: map[string]*framework.FieldSchema{
				"cleanup_dead_servers": boolean(), "dead_server_last_contact_threshold": {Type: framework.TypeDurationSecond},
				"last_contact_threshold": {Type: framework.TypeDurationSecond}, "max_trailing_logs": {Type: framework.TypeInt},
				"min_quorum": {Type: framework.TypeInt}, "server_stabilization_time": {Type: framework.TypeDurationSecond},
				"disable_upgrade_migration": boolean(),
			},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.autopilotConfig, core.OpUpdate: b.setAutopilotConfig}},
	}
}

func (b *Backend) cluster() (Cluster, error) {
	if b.d.Cluster == nil {
		return nil, core.Invalid("raft storage is not in use")
	}
	return b.d.Cluster, nil
}

func (b *Backend) raftJoin(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	if d.String("auto_join") != "" {
		return nil, core.Invalid("auto_join (cloud auto-discovery) is not supported: give leader_api_addr")
	}
	req := JoinRequest{LeaderAPIAddr: d.String("leader_api_addr"), LeaderCACert: d.String("leader_ca_cert"),
		LeaderClientCert: d.String("leader_client_cert"), LeaderClientKey: d.String("leader_client_key"),
		LeaderTLSServerName: d.String("leader_tls_servername"), NonVoter: d.Bool("non_voter"), Retry: d.Bool("retry")}
	if req.LeaderAPIAddr == "" {
		return nil, core.Invalid("leader_api_addr is required")
	}
	if err := c.Join(ctx, req); err != nil {
		return nil, err
	}
	return &core.Response{Bare: true, Data: map[string]any{"joined": true}}, nil
}

func (b *Backend) raftChallenge(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	id := d.String("server_id")
	if id == "" {
		return nil, core.Invalid("server_id is required")
	}
	ch, err := c.JoinChallenge(ctx, id)
	if err != nil {
		return nil, err
	}
	recs := map[string]any{}
	for k, v := range ch.Records {
		recs[k] = base64.StdEncoding.EncodeToString(v)
	}
	return &core.Response{Data: map[string]any{"challenge": base64.StdEncoding.EncodeToString(ch.Challenge), "records": recs}}, nil
}

func (b *Backend) raftAnswer(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	ans, err := base64.StdEncoding.DecodeString(d.String("answer"))
	if err != nil || len(ans) == 0 {
		return nil, core.Invalid("answer must be base64")
	}
	req := JoinAnswerRequest{NodeID: d.String("server_id"), Answer: ans, ClusterAddr: d.String("cluster_addr"), NonVoter: d.Bool("non_voter")}
	if req.NodeID == "" || req.ClusterAddr == "" {
		return nil, core.Invalid("server_id and cluster_addr are required")
	}
	res, err := c.JoinAnswer(ctx, req)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"certificate": base64.StdEncoding.EncodeToString(res.Certificate),
		"index": res.Index, "leader_id": res.LeaderID, "leader_cluster_addr": res.LeaderAddr}}, nil
}

func (b *Backend) raftConfiguration(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	peers, index, err := c.Peers(ctx)
	if err != nil {
		return nil, err
	}
	servers := make([]any, 0, len(peers))
	for _, p := range peers {
		servers = append(servers, map[string]any{"node_id": p.NodeID, "address": p.Address, "leader": p.Leader,
			"voter": p.Voter, "protocol_version": "3"})
	}
	return &core.Response{Data: map[string]any{"config": map[string]any{"servers": servers, "index": index}}}, nil
}

func (b *Backend) raftRemovePeer(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	id := d.String("server_id")
	if id == "" {
		return nil, core.Invalid("server_id is required")
	}
	return nil, c.RemovePeer(ctx, id)
}

func (b *Backend) autopilotState(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	st, err := c.AutopilotState(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: st}, nil
}

func autopilotData(c AutopilotConfig) map[string]any {
	return map[string]any{
		"cleanup_dead_servers":               c.CleanupDeadServers,
		"dead_server_last_contact_threshold": c.DeadServerLastContactThreshold.String(),
		"last_contact_threshold":             c.LastContactThreshold.String(),
		"max_trailing_logs":                  c.MaxTrailingLogs,
		"min_quorum":                         c.MinQuorum,
		"server_stabilization_time":          c.ServerStabilizationTime.String(),
		"disable_upgrade_migration":          false,
	}
}

func (b *Backend) autopilotConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	cfg, err := c.AutopilotConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: autopilotData(cfg)}, nil
}

func (b *Backend) setAutopilotConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := b.cluster()
	if err != nil {
		return nil, err
	}
	cfg, err := c.AutopilotConfig(ctx)
	if err != nil {
		return nil, err
	}
	if d.Has("cleanup_dead_servers") {
		cfg.CleanupDeadServers = d.Bool("cleanup_dead_servers")
	}
	if d.Has("dead_server_last_contact_threshold") {
		cfg.DeadServerLastContactThreshold = d.Duration("dead_server_last_contact_threshold")
	}
	if d.Has("last_contact_threshold") {
		cfg.LastContactThreshold = d.Duration("last_contact_threshold")
	}
	if d.Has("max_trailing_logs") {
		cfg.MaxTrailingLogs = uint64(max(d.Int("max_trailing_logs"), 0))
	}
	if d.Has("min_quorum") {
		cfg.MinQuorum = uint(max(d.Int("min_quorum"), 0))
	}
	if d.Has("server_stabilization_time") {
		cfg.ServerStabilizationTime = d.Duration("server_stabilization_time")
	}
	if cfg.CleanupDeadServers && cfg.MinQuorum < 3 {
		return nil, core.Invalid("min_quorum must be at least 3 when cleanup_dead_servers is set")
	}
	if cfg.CleanupDeadServers && cfg.DeadServerLastContactThreshold < time.Minute {
		return nil, core.Invalid("dead_server_last_contact_threshold must be at least 1m")
	}
	return nil, c.SetAutopilotConfig(ctx, cfg)
}
