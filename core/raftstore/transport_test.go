package raftstore

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/clustertls"
)

// rogueTransport is a raft transport of a node outside the cluster: its
// stream is plaintext TCP, or TLS with an identity the cluster does not
// trust.
func rogueTransport(t *testing.T, plaintext bool, id *TLSIdentity) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stream raft.StreamLayer = &tcpStream{ln: ln, advertise: ln.Addr()}
	if !plaintext {
		s := newTLSStream(ln, ln.Addr(), hclog.NewNullLogger())
		s.id.Store(id)
		stream = s
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 1, Timeout: 5 * time.Second, Logger: hclog.NewNullLogger()})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// hdr is the RPC header of a node that speaks the current protocol, so a
// refusal can only come from the transport.
func hdr(tr *raft.NetworkTransport, id string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(tr.LocalAddr())}
}

func term(t *testing.T, s *Store) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s.Stats()["term"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A node without a certificate of the cluster CA can neither append
// entries, nor install a snapshot, nor call an election, nor disturb the
// leader: every RPC fails at the handshake and the node's state is as
// before.
func TestNodeWithoutClusterCertificateIsRefused(t *testing.T) {
	n1 := MustNode(t)
	mustPut(t, n1, "k", "v")
	before := dump(t, n1)
	term0 := term(t, n1)
	foreign, err := clustertls.NewCA("elsewhere", clustertls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	noCert := testIdentity("rogue")
	noCert.Certificate = tls.Certificate{} // trusts the cluster CA, presents nothing
	rogues := map[string]*raft.NetworkTransport{
		"plaintext":      rogueTransport(t, true, nil),
		"foreign CA":     rogueTransport(t, false, mustIdentity(t, foreign, "node1")),
		"no client cert": rogueTransport(t, false, noCert),
	}
	id, addr := raft.ServerID(n1.NodeID()), raft.ServerAddress(n1.Addr())
	for name, tr := range rogues {
		t.Run(name, func(t *testing.T) {
			high := term0 + 100
			var ae raft.AppendEntriesResponse
			err := tr.AppendEntries(id, addr, &raft.AppendEntriesRequest{
				RPCHeader: hdr(tr, "rogue"),
				Term:      high, PrevLogEntry: 0, PrevLogTerm: 0, LeaderCommitIndex: 1000,
				Entries: []*raft.Log{{Index: 1, Term: high, Type: raft.LogCommand, Data: []byte("rogue")}},
			}, &ae)
			if err == nil {
				t.Fatalf("AppendEntries from a node without the cluster certificate succeeded: %+v", ae)
			}
			var is raft.InstallSnapshotResponse
			snap := []byte("not a state file")
			err = tr.InstallSnapshot(id, addr, &raft.InstallSnapshotRequest{
				RPCHeader:       hdr(tr, "rogue"),
				SnapshotVersion: raft.SnapshotVersionMax, Term: high, LastLogIndex: 1 << 20, LastLogTerm: high, Size: int64(len(snap)),
			}, &is, bytes.NewReader(snap))
			if err == nil {
				t.Fatalf("InstallSnapshot from a node without the cluster certificate succeeded: %+v", is)
			}
			var rv raft.RequestVoteResponse
			if err := tr.RequestVote(id, addr, &raft.RequestVoteRequest{
				RPCHeader: hdr(tr, "rogue"), Term: high, LastLogIndex: 1 << 20, LastLogTerm: high,
			}, &rv); err == nil {
				t.Fatalf("RequestVote from a node without the cluster certificate succeeded: %+v", rv)
			}
			var tn raft.TimeoutNowResponse
			if err := tr.TimeoutNow(id, addr, &raft.TimeoutNowRequest{RPCHeader: hdr(tr, "rogue")}, &tn); err == nil {
				t.Fatal("TimeoutNow from a node without the cluster certificate succeeded")
			}
		})
	}
	if got := term(t, n1); got != term0 {
		t.Fatalf("term moved from %d to %d", term0, got)
	}
	if !n1.IsLeader() {
		t.Fatal("the node lost leadership")
	}
	if err := diff(dump(t, n1), before); err != nil {
		t.Fatalf("state changed: %v", err)
	}
}

// The same RPCs from a node with a certificate of the cluster CA work: the
// refusals above come from the certificates, not from the test.
func TestNodeWithClusterCertificateIsHeard(t *testing.T) {
	n1 := MustNode(t)
	term0 := term(t, n1)
	tr := rogueTransport(t, false, testIdentity("node9"))
	var rv raft.RequestVoteResponse
	err := tr.RequestVote(raft.ServerID(n1.NodeID()), raft.ServerAddress(n1.Addr()), &raft.RequestVoteRequest{
		RPCHeader: hdr(tr, "node9"), Term: term0, LastLogIndex: 0, LastLogTerm: 0,
	}, &rv)
	if err != nil {
		t.Fatalf("RequestVote with a cluster certificate: %v", err)
	}
	if rv.Granted {
		t.Fatal("the leader granted a vote to a stale candidate")
	}
}

// A leader never sends its log to a node without a certificate of the
// cluster CA, even when that node is in the configuration: it refuses the
// node's certificate at every handshake, so the node gets nothing.
func TestLeaderRefusesToReplicateToForeignNode(t *testing.T) {
	n1 := MustNode(t)
	mustPut(t, n1, "secret/k", "v")
	foreign, err := clustertls.NewCA("elsewhere", clustertls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rogueID := mustIdentity(t, foreign, "rogue")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var attempts, completed, plaintextBytes atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				attempts.Add(1)
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{rogueID.Certificate}, ClientAuth: tls.RequireAnyClientCert})
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				completed.Add(1)
				b := make([]byte, 1)
				if n, _ := tc.Read(b); n > 0 {
					plaintextBytes.Add(int64(n))
				}
			}()
		}
	}()
	if err := n1.raft.AddNonvoter("rogue", raft.ServerAddress(ln.Addr().String()), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if attempts.Load() < 3 {
			return errors.New("the leader has not tried to reach the node yet")
		}
		return nil
	})
	if c, b := completed.Load(), plaintextBytes.Load(); c != 0 || b != 0 {
		t.Fatalf("a node with a foreign certificate completed %d handshakes and received %d bytes", c, b)
	}
}

// A node whose transport has no identity (sealed, or not joined yet)
// refuses every connection, even from a node with a valid certificate,
// until it gets one.
func TestNoIdentityRefusesEverything(t *testing.T) {
	cfg := testConfig(t.TempDir(), "node1")
	cfg.TLS = nil
	n1 := MustOpen(t, cfg)
	if n1.TLSReady() {
		t.Fatal("TLSReady without an identity")
	}
	tr := rogueTransport(t, false, testIdentity("node2"))
	id, addr := raft.ServerID("node1"), raft.ServerAddress(n1.Addr())
	var rv raft.RequestVoteResponse
	req := &raft.RequestVoteRequest{RPCHeader: hdr(tr, "node2"), Term: 1}
	if err := tr.RequestVote(id, addr, req, &rv); err == nil {
		t.Fatal("a node without an identity accepted a connection")
	}
	n1.SetTLSIdentity(testIdentity("node1"))
	if !n1.TLSReady() {
		t.Fatal("not TLSReady after SetTLSIdentity")
	}
	if err := tr.RequestVote(id, addr, req, &rv); err != nil {
		t.Fatalf("after SetTLSIdentity: %v", err)
	}
}

// The Peer check refuses a peer whose certificate chains to the CA but is
// no longer current (a removed node).
func TestPeerCheckRefusesRevokedNode(t *testing.T) {
	cfg := testConfig(t.TempDir(), "node1")
	cfg.TLS.Peer = func(c *x509.Certificate) error {
		if c.Subject.CommonName == "node2" {
			return errors.New("node2 was removed")
		}
		return nil
	}
	n1 := MustOpen(t, cfg)
	var rv raft.RequestVoteResponse
	req := func(tr *raft.NetworkTransport, from string) error {
		return tr.RequestVote("node1", raft.ServerAddress(n1.Addr()), &raft.RequestVoteRequest{RPCHeader: hdr(tr, from), Term: 1}, &rv)
	}
	if err := req(rogueTransport(t, false, testIdentity("node2")), "node2"); err == nil {
		t.Fatal("a revoked node's certificate was accepted")
	}
	if err := req(rogueTransport(t, false, testIdentity("node3")), "node3"); err != nil {
		t.Fatalf("a current node's certificate was refused: %v", err)
	}
}

// Plaintext is only allowed on loopback.
func TestPlaintextOnlyOnLoopback(t *testing.T) {
	for _, c := range []struct{ bind, adv string }{
		{"127.0.0.1:0", "192.0.2.10:8201"},
		{"0.0.0.0:0", "192.0.2.10:8201"},
	} {
		cfg := testConfig(t.TempDir(), "node1")
		cfg.TLS, cfg.Plaintext, cfg.BindAddr, cfg.AdvertiseAddr = nil, true, c.bind, c.adv
		s, err := Open(cfg)
		if err == nil {
			_ = s.Close()
			t.Fatalf("plaintext on %s advertised as %s was accepted", c.bind, c.adv)
		}
		wantCode(t, err, core.CodeInvalid)
		if !strings.Contains(err.Error(), "mutual TLS") {
			t.Errorf("error %q does not say why", err)
		}
	}
	cfg := testConfig(t.TempDir(), "node1")
	cfg.TLS, cfg.Plaintext = nil, true
	s := MustOpen(t, cfg)
	if s.TLSReady() {
		t.Fatal("a plaintext store reports TLS")
	}
}
