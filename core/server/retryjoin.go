package server

import (
	"context"
	"net/url"
	"os"
	"time"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/system"
)

// clusterDefaults fills what a node's configuration leaves out from the
// environment, as Vault does, so that one configuration serves every pod
// of a StatefulSet: node_id from VIGIL_RAFT_NODE_ID (or VAULT_RAFT_NODE_ID,
// else "node1"), api_addr from VIGIL_API_ADDR (VAULT_API_ADDR) and
// cluster_addr from VIGIL_CLUSTER_ADDR (VAULT_CLUSTER_ADDR).
func clusterDefaults(cfg *config.Config) {
	env := func(names ...string) string {
		for _, n := range names {
			if v := os.Getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	if cfg.Storage.NodeID == "" {
		cfg.Storage.NodeID = env("VIGIL_RAFT_NODE_ID", "VAULT_RAFT_NODE_ID")
	}
	if cfg.Storage.NodeID == "" {
		cfg.Storage.NodeID = "node1"
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = env("VIGIL_API_ADDR", "VAULT_API_ADDR")
	}
	if cfg.ClusterAddr == "" {
		cfg.ClusterAddr = env("VIGIL_CLUSTER_ADDR", "VAULT_CLUSTER_ADDR")
	}
}

// raftTuning applies the storage "raft" block's tuning to the raft store:
// the advertised cluster address and autopilot's intervals.
func raftTuning(cfg *config.Config, rc *raftstore.Config) error {
	if cfg.ClusterAddr != "" && rc.AdvertiseAddr == "" {
		rc.AdvertiseAddr = hostPort(cfg.ClusterAddr)
	}
	rc.AutopilotUpdateInterval = cfg.Storage.AutopilotUpdateInterval
	rc.AutopilotReconcileInterval = cfg.Storage.AutopilotReconcileInterval
	return nil
}

// RetryJoinInterval is how often a node without raft state tries its
// retry_join blocks.
const RetryJoinInterval = 2 * time.Second

// startRetryJoin runs the retry_join blocks of a node that has no raft
// state: each block in turn, every RetryJoinInterval, until a join
// completes (or the node is initialised itself). A join waits for the
// unseal keys of an operator (Shamir) before it can answer.
func (s *Server) startRetryJoin() {
	blocks := retryJoinBlocks(s.cfg)
	if len(blocks) == 0 {
		return
	}
	if has, err := s.raft.HasState(); err != nil || has {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.retryStop, s.retryDone = cancel, done
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			if has, _ := s.raft.HasState(); has && !s.barrier.Sealed() {
				return
			}
			pj := s.joinPending()
			if pj != nil && s.now().Sub(pj.started) > JoinChallengeTTL {
				s.log.Info("retry_join: the join was not completed in time; asking again")
				s.dropJoin(pj)
				pj = nil
			}
			if pj == nil && s.barrier.Sealed() {
				if has, _ := s.raft.HasState(); !has {
					b := blocks[i%len(blocks)]
					if err := s.Join(ctx, b); err != nil {
						s.log.Debug("retry_join: not joined", "leader", b.LeaderAPIAddr, "error", err)
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(RetryJoinInterval):
			}
		}
	}()
}

func (s *Server) stopRetryJoin() {
	if s.retryStop != nil {
		s.retryStop()
		<-s.retryDone
		s.retryStop = nil
	}
}

// retryJoinBlocks reads the configuration's retry_join blocks as join
// requests (leader_ca_cert_file and the client files read here: a file
// that cannot be read is logged at join time as a failed attempt).
func retryJoinBlocks(cfg *config.Config) []system.JoinRequest {
	var out []system.JoinRequest
	for _, rj := range cfg.Storage.RetryJoin {
		r := system.JoinRequest{LeaderAPIAddr: rj.LeaderAPIAddr, LeaderCACert: rj.LeaderCACert,
			LeaderClientCert: rj.LeaderClientCert, LeaderClientKey: rj.LeaderClientKey, LeaderTLSServerName: rj.LeaderTLSServerName,
			NonVoter: cfg.Storage.RetryJoinAsNonVoter}
		for _, f := range []struct {
			path string
			dst  *string
		}{{rj.LeaderCACertFile, &r.LeaderCACert}, {rj.LeaderClientCertFile, &r.LeaderClientCert}, {rj.LeaderClientKeyFile, &r.LeaderClientKey}} {
			if f.path != "" {
				if b, err := os.ReadFile(f.path); err == nil {
					*f.dst = string(b)
				}
			}
		}
		u, err := url.Parse(r.LeaderAPIAddr)
		if err != nil || u.Host == "" {
			continue
		}
		if self, err := url.Parse(cfg.APIAddr); err == nil && self.Host == u.Host {
			continue // this node's own entry (one file lists every node)
		}
		out = append(out, r)
	}
	return out
}
