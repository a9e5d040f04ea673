package raftstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/clustertls"
)

// mustCluster opens a leader and n-1 followers added as voters.
func mustCluster(t *testing.T, n int, tune func(*Config)) []*Store {
	t.Helper()
	ctx := context.Background()
	cfg := memberConfig(t.TempDir(), "node1", true)
	if tune != nil {
		tune(&cfg)
	}
	nodes := []*Store{MustOpen(t, cfg)}
	for i := 2; i <= n; i++ {
		c := memberConfig(t.TempDir(), fmt.Sprintf("node%d", i), false)
		if tune != nil {
			tune(&c)
		}
		f := MustOpen(t, c)
		if err := nodes[0].AddVoter(ctx, f.NodeID(), f.Addr()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, f)
	}
	for _, f := range nodes[1:] { // every follower has heard from the leader and holds the configuration
		eventually(t, clusterWait, func() error {
			if id, _ := f.Leader(); id != "node1" {
				return fmt.Errorf("%s follows %q", f.NodeID(), id)
			}
			if conf, err := f.Configuration(); err != nil || len(conf) != n {
				return fmt.Errorf("%s knows the configuration %+v (%v)", f.NodeID(), conf, err)
			}
			return nil
		})
	}
	return nodes
}

// TestReadYourWritesOnFollowers: a write through any node is visible on that
// node when Put returns, and on every other node after ReadIndex.
func TestReadYourWritesOnFollowers(t *testing.T) {
	ctx := context.Background()
	nodes := mustCluster(t, 3, nil)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				key := fmt.Sprintf("n%d/%02d", i, j)
				if err := n.Put(ctx, key, []byte(key)); err != nil {
					t.Errorf("put %s through %s: %v", key, n.NodeID(), err)
					return
				}
				if v, err := n.Get(ctx, key); err != nil || string(v) != key {
					t.Errorf("%s does not read its own write %s: %q %v", n.NodeID(), key, v, err)
				}
			}
		}()
	}
	wg.Wait()
	mustPut(t, nodes[1], "last", "x")
	for _, n := range nodes {
		if err := n.ReadIndex(ctx); err != nil {
			t.Fatalf("ReadIndex on %s: %v", n.NodeID(), err)
		}
		if v, _ := n.Get(ctx, "last"); string(v) != "x" {
			t.Errorf("%s after ReadIndex: last = %q", n.NodeID(), v)
		}
		if keys, _ := n.List(ctx, "n2/"); len(keys) != 20 {
			t.Errorf("%s lists %d keys under n2/", n.NodeID(), len(keys))
		}
	}
	// A forwarded write that the leader refuses keeps its code.
	big := make([]byte, 2<<20)
	wantCode(t, nodes[2].Put(ctx, "big", big), core.CodeTooLarge)
}

// TestFollowerWithoutIdentityRefuses: a follower whose transport has no
// identity (sealed) cannot forward and names the leader.
func TestFollowerWithoutIdentityRefuses(t *testing.T) {
	nodes := mustCluster(t, 2, nil)
	eventually(t, clusterWait, func() error {
		if id, _ := nodes[1].Leader(); id != "node1" {
			return fmt.Errorf("node2 follows %q", id)
		}
		return nil
	})
	nodes[1].SetTLSIdentity(nil)
	err := nodes[1].Put(context.Background(), "k", []byte("v"))
	wantCode(t, err, core.CodeUnavailable)
	if !strings.Contains(err.Error(), "leader is node1") {
		t.Errorf("error %q does not name the leader", err)
	}
}

// TestRPCRefusesStrangers: the cluster RPC is behind the same mutual TLS as
// raft: a certificate of another CA gets no answer.
func TestRPCRefusesStrangers(t *testing.T) {
	n := MustNode(t)
	other, err := clustertls.NewCA("other", clustertls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := mustIdentity(t, other, "intruder")
	cfg := id.clientConfig()
	cfg.NextProtos = []string{ALPNRPC}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.Addr(), cfg)
	if err == nil {
		// TLS 1.3: the server's verdict on the client certificate arrives
		// with the first read.
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("GET /raft/v1/stats HTTP/1.1\r\nHost: x\r\n\r\n"))
		buf := make([]byte, 64)
		_, err = c.Read(buf)
		_ = c.Close()
	}
	if err == nil {
		t.Fatal("a certificate of another CA reached the cluster RPC")
	}
	// A member gets its stats.
	f := mustCluster(t, 2, nil)
	st, err := f[0].FetchStats(context.Background(), f[1].Addr())
	if err != nil || st.NodeID != "node2" || st.State != "Follower" {
		t.Fatalf("stats %+v, %v", st, err)
	}
}

// TestAutopilotPromotesAndCleansUp: a non-voter becomes a voter once stable;
// a dead server is removed after the threshold, quorum permitting.
func TestAutopilotPromotesAndCleansUp(t *testing.T) {
	ctx := context.Background()
	var removedMu sync.Mutex
	var removed []string
	tune := func(c *Config) {
		c.AutopilotUpdateInterval = 50 * time.Millisecond
		c.AutopilotReconcileInterval = 50 * time.Millisecond
		c.OnRemoved = func(id string) {
			removedMu.Lock()
			removed = append(removed, id)
			removedMu.Unlock()
		}
	}
	nodes := mustCluster(t, 3, tune)
	leader := nodes[0]
	leader.SetAutopilotConfig(AutopilotConfig{LastContactThreshold: 2 * time.Second, MaxTrailingLogs: 100,
		MinQuorum: 3, ServerStabilizationTime: 300 * time.Millisecond, DeadServerLastContactThreshold: time.Second,
		CleanupDeadServers: true})
	c := memberConfig(t.TempDir(), "node4", false)
	tune(&c)
	n4 := MustOpen(t, c)
	if err := leader.AddNonvoter(ctx, "node4", n4.Addr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, clusterWait, func() error {
		st, ok := leader.AutopilotState()
		if !ok {
			return fmt.Errorf("no autopilot state")
		}
		s4, ok := st.Servers["node4"]
		if !ok || s4.Status != "voter" || !st.Healthy || st.FailureTolerance != 1 {
			return fmt.Errorf("node4 %+v, healthy %v, tolerance %d", s4, st.Healthy, st.FailureTolerance)
		}
		return nil
	})
	if _, ok := nodes[1].AutopilotState(); ok {
		t.Error("a follower reports autopilot state")
	}
	// node4 dies: after the threshold it is removed (4 voters > min quorum 3).
	if err := n4.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, clusterWait, func() error {
		conf, err := leader.Configuration()
		if err != nil {
			return err
		}
		for _, s := range conf {
			if s.ID == "node4" {
				return fmt.Errorf("node4 still in %+v", conf)
			}
		}
		return nil
	})
	eventually(t, clusterWait, func() error {
		removedMu.Lock()
		defer removedMu.Unlock()
		if len(removed) != 1 || removed[0] != "node4" {
			return fmt.Errorf("OnRemoved saw %v", removed)
		}
		return nil
	})
}
