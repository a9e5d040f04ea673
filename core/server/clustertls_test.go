package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/vigilsec/vigil/core/clustertls"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// plainTransport is a raft transport over plain TCP, as anyone who reaches
// the cluster port could open.
func plainTransport(t *testing.T) *raft.NetworkTransport {
	t.Helper()
	tr, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, 5*time.Second, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// The server's cluster port speaks only mutual TLS with the certificates of
// its cluster CA, created at init and kept in the barrier: a plaintext
// client cannot append entries or install a snapshot, and while sealed
// nobody can connect at all.
func TestClusterPortNeedsTheClusterCertificate(t *testing.T) {
	srv := servertest.MustStart(t, bare, servertest.Options{})
	ctx := context.Background()
	ca, err := clustertls.LoadCA(ctx, srv.Barrier())
	if err != nil {
		t.Fatalf("no cluster CA after init: %v", err)
	}
	node, err := clustertls.Load(ctx, srv.Barrier(), srv.NodeID())
	if err != nil {
		t.Fatalf("no certificate for the node: %v", err)
	}
	if !srv.Raft().TLSReady() {
		t.Fatal("the unsealed server's raft transport has no TLS identity")
	}
	// Nothing of it is stored in plain form: the raft state holds only
	// barrier ciphertext.
	raw, err := srv.Raft().Get(ctx, "core/cluster/tls/nodes/"+srv.NodeID())
	if err != nil || raw == nil {
		t.Fatalf("raw record: %v %v", raw, err)
	}
	if bytes.Contains(raw, []byte("PRIVATE KEY")) || bytes.Contains(raw, []byte("BEGIN CERTIFICATE")) || node.NodeID != srv.NodeID() {
		t.Fatal("the node's key is stored in plain form")
	}

	term := srv.Raft().Stats()["term"]
	tr := plainTransport(t)
	hdr := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("rogue"), Addr: []byte(tr.LocalAddr())}
	target := raft.ServerAddress(srv.Raft().Addr())
	var ae raft.AppendEntriesResponse
	if err := tr.AppendEntries(raft.ServerID(srv.NodeID()), target, &raft.AppendEntriesRequest{RPCHeader: hdr, Term: 1 << 40}, &ae); err == nil {
		t.Fatalf("plaintext AppendEntries accepted: %+v", ae)
	}
	var is raft.InstallSnapshotResponse
	if err := tr.InstallSnapshot(raft.ServerID(srv.NodeID()), target, &raft.InstallSnapshotRequest{RPCHeader: hdr, SnapshotVersion: raft.SnapshotVersionMax,
		Term: 1 << 40, LastLogIndex: 1 << 30, LastLogTerm: 1 << 40, Size: 4}, &is, bytes.NewReader([]byte("evil"))); err == nil {
		t.Fatalf("plaintext InstallSnapshot accepted: %+v", is)
	}
	if got := srv.Raft().Stats()["term"]; got != term || !srv.Raft().IsLeader() {
		t.Fatalf("term %s -> %s, leader %v", term, got, srv.Raft().IsLeader())
	}

	// A certificate issued by the cluster CA is accepted while unsealed...
	peer, err := ca.Issue("node2", clustertls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert, pool, err := peer.TLS()
	if err != nil {
		t.Fatal(err)
	}
	// dial connects with cert; wait is how long to wait for a refusal
	// (short when the connection is expected to be accepted).
	dial := func(wait time.Duration) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.Raft().Addr(),
			&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: clustertls.ServerName, MinVersion: tls.VersionTLS13})
		if err != nil {
			return err
		}
		defer c.Close()
		// TLS 1.3: the server checks the client certificate after the
		// client's handshake ends; a refusal shows on the first read.
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil // still connected: accepted
		}
		return err
	}
	// ...only when it is the node's current certificate: node2 was never
	// issued one by this cluster (PeerCheck), so it is refused.
	if err := dial(10 * time.Second); err == nil {
		t.Fatal("a certificate not on record for its node was accepted")
	}
	issued, err := srv.IssueClusterCertificate(ctx, "node2")
	if err != nil {
		t.Fatal(err)
	}
	cert, pool, err = issued.TLS()
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(300 * time.Millisecond); err != nil {
		t.Fatalf("the certificate issued at join is refused: %v", err)
	}
	if err := clustertls.Revoke(ctx, srv.Barrier(), "node2"); err != nil {
		t.Fatal(err)
	}
	if err := dial(10 * time.Second); err == nil {
		t.Fatal("a revoked node's certificate was accepted")
	}

	// Sealed: no identity, every connection refused.
	issued, err = srv.IssueClusterCertificate(ctx, "node2")
	if err != nil {
		t.Fatal(err)
	}
	cert, pool, _ = issued.TLS()
	if err := srv.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if srv.Raft().TLSReady() {
		t.Fatal("the sealed server's transport kept its identity")
	}
	if err := dial(10 * time.Second); err == nil {
		t.Fatal("a sealed server accepted a cluster connection")
	}
	if _, err := srv.IssueClusterCertificate(ctx, "node3"); err == nil {
		t.Fatal("a sealed server issued a certificate")
	}
	srv.MustUnseal()
	if err := dial(300 * time.Millisecond); err != nil {
		t.Fatalf("after unseal: %v", err)
	}
}
