package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

const clusterWait = 20 * time.Second

// sameState waits until every node's state equals want.
func sameState(t *testing.T, want map[string]string, nodes ...*Store) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, clusterWait, func() error {
			if err := diff(dump(t, n), want); err != nil {
				return fmt.Errorf("%s: %w", n.NodeID(), err)
			}
			return nil
		})
	}
}

// leaderOf waits until one of nodes is the leader and returns it.
func leaderOf(t *testing.T, nodes ...*Store) *Store {
	t.Helper()
	var leader *Store
	eventually(t, clusterWait, func() error {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				return nil
			}
		}
		return errors.New("no leader")
	})
	return leader
}

// putEventually retries a write while leadership settles: a write whose
// leader was lost before it committed is unavailable, and a Put is
// idempotent.
func putEventually(t *testing.T, s *Store, key, value string) {
	t.Helper()
	eventually(t, clusterWait, func() error { return s.Put(context.Background(), key, []byte(value)) })
}

func TestCluster(t *testing.T) {
	ctx := context.Background()
	cfg1 := memberConfig(t.TempDir(), "node1", true)
	n1 := MustOpen(t, cfg1)
	n2 := MustOpen(t, memberConfig(t.TempDir(), "node2", false))
	n3 := MustOpen(t, memberConfig(t.TempDir(), "node3", false))
	for _, n := range []*Store{n2, n3} {
		if err := n1.AddVoter(ctx, n.NodeID(), n.Addr()); err != nil {
			t.Fatalf("AddVoter %s: %v", n.NodeID(), err)
		}
	}
	conf, err := n1.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	if len(conf) != 3 || !conf[0].Voter || !conf[1].Voter || !conf[2].Voter || !conf[0].Leader || conf[0].ID != "node1" {
		t.Fatalf("configuration %+v", conf)
	}

	// Replication: writes on the leader reach the followers.
	for i := range 50 {
		putEventually(t, n1, fmt.Sprintf("secret/%02d", i), fmt.Sprint(i))
	}
	var archive bytes.Buffer
	if err := n1.SaveSnapshot(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	saved := dump(t, n1)
	putEventually(t, n1, "after/save", "1")
	eventually(t, clusterWait, func() error { return n1.Barrier(ctx) })
	sameState(t, dump(t, n1), n2, n3)

	// Followers forward writes to the leader over the cluster RPC and
	// see them as soon as Put returns.
	putEventually(t, n2, "via/follower", "v")
	if v, err := n2.Get(ctx, "via/follower"); err != nil || string(v) != "v" {
		t.Fatalf("follower reads its own forwarded write: %q, %v", v, err)
	}
	eventually(t, clusterWait, func() error { return n1.Delete(ctx, "via/follower") })
	eventually(t, clusterWait, func() error {
		if id, addr := n3.Leader(); id != "node1" || addr != n1.Addr() {
			return fmt.Errorf("n3.Leader() = %s %s", id, addr)
		}
		return nil
	})
	wantCode(t, n2.Barrier(ctx), core.CodeUnavailable)
	wantCode(t, n2.AddVoter(ctx, "x", "127.0.0.1:1"), core.CodeUnavailable)

	// Kill the leader: the others elect a new one and keep accepting writes.
	ch2, stop2 := n2.LeaderCh()
	defer stop2()
	ch3, stop3 := n3.LeaderCh()
	defer stop3()
	addr1 := n1.Addr()
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	leader := leaderOf(t, n2, n3)
	other, ch := n3, ch2
	if leader == n3 {
		other, ch = n2, ch3
	}
	select {
	case v := <-ch:
		if !v {
			t.Errorf("new leader %s was notified false", leader.NodeID())
		}
	case <-time.After(clusterWait):
		t.Fatalf("no leadership notification on %s", leader.NodeID())
	}
	putEventually(t, leader, "after/failover", "2")
	for i := range 20 {
		putEventually(t, leader, fmt.Sprintf("more/%02d", i), "x")
	}
	eventually(t, clusterWait, func() error { return leader.Barrier(ctx) })
	want := dump(t, leader)
	sameState(t, want, other)

	// The old leader comes back on its address and catches up.
	cfg1.BindAddr = addr1
	n1 = MustOpen(t, cfg1)
	sameState(t, want, n1)
	eventually(t, clusterWait, func() error {
		if id, _ := n1.Leader(); id != leader.NodeID() {
			return fmt.Errorf("n1 follows %q, want %q", id, leader.NodeID())
		}
		return nil
	})
	if n1.State() != "Follower" {
		t.Errorf("rejoined node state %s", n1.State())
	}

	// A user snapshot restored on the leader replaces every node's state
	// (followers get it by snapshot install, across the hole in the log).
	if err := leader.RestoreSnapshot(ctx, &archive); err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	sameState(t, saved, leader, other, n1)
	putEventually(t, leader, "post/restore", "3")
	saved["post/restore"] = "3"
	sameState(t, saved, leader, other, n1)

	// Removing a member shrinks the configuration; the two left form the
	// quorum.
	if err := leader.RemoveServer(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	conf, err = leader.Configuration()
	if err != nil || len(conf) != 2 || conf[0].ID == "node1" || conf[1].ID == "node1" {
		t.Fatalf("configuration after remove: %+v, %v", conf, err)
	}
	putEventually(t, leader, "two/nodes", "ok")
	eventually(t, clusterWait, func() error { return leader.Barrier(ctx) })
	sameState(t, dump(t, leader), other)
	st := leader.Stats()
	if st["state"] != "Leader" || st["fsm_applied_index"] != fmt.Sprint(leader.AppliedIndex()) {
		t.Errorf("stats %v", st)
	}
}
