package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core/clustertls"
	"github.com/vigilsec/vigil/core/raftstore"
)

// installClusterTLS gives the raft transport this node's identity from the
// barrier (see package clustertls): on the leader it creates the cluster CA
// and the node's certificate when they are missing (at init, or the first
// unseal of a cluster initialised without them); elsewhere the certificate
// must already be there (issued at join). Until it runs — and again once
// the node seals — the transport refuses every connection.
func (s *Server) installClusterTLS(ctx context.Context) error {
	o := clustertls.Options{Now: s.now}
	var n *clustertls.NodeCert
	var err error
	if s.raft.IsLeader() {
		n, err = clustertls.Ensure(ctx, s.barrier, s.clusterName(), s.NodeID(), o)
	} else {
		n, err = clustertls.Load(ctx, s.barrier, s.NodeID())
	}
	if err != nil {
		return fmt.Errorf("cluster TLS: %w", err)
	}
	cert, pool, err := n.TLS()
	if err != nil {
		return err
	}
	s.raft.SetTLSIdentity(&raftstore.TLSIdentity{
		Certificate: cert, CAs: pool, ServerName: clustertls.ServerName,
		Peer: clustertls.PeerCheck(s.barrier),
	})
	return nil
}

// dropClusterTLS removes the transport identity (the node sealed).
func (s *Server) dropClusterTLS() { s.raft.SetTLSIdentity(nil) }

// IssueClusterCertificate is the leader's half of a join (see package
// clustertls): after the joining node nodeID has proven it may join, it
// issues and stores the node's certificate and returns it for the join
// answer. It fails on a sealed node or a follower.
func (s *Server) IssueClusterCertificate(ctx context.Context, nodeID string) (*clustertls.NodeCert, error) {
	if s.barrier.Sealed() {
		return nil, errors.New("cluster TLS: the node is sealed")
	}
	if !s.raft.IsLeader() {
		return nil, errors.New("cluster TLS: only the leader issues node certificates")
	}
	return clustertls.Issue(ctx, s.barrier, nodeID, clustertls.Options{Now: s.now})
}
