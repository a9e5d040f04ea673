package raftstore

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilsec/vigil/core"
)

// ConfirmLeader: a single node confirms itself; in a cluster the leader
// confirms (and, within its lease, without asking again) and a follower is
// unavailable; a leader whose followers are gone cannot confirm — it
// steps down instead of serving from its copy.
func TestConfirmLeader(t *testing.T) {
	ctx := context.Background()
	if err := MustNode(t).ConfirmLeader(ctx); err != nil {
		t.Fatalf("single node: %v", err)
	}
	nodes := mustCluster(t, 3, nil)
	leader := nodes[0]
	eventually(t, clusterWait, func() error { return leader.ConfirmLeader(ctx) })
	first := leader.confirmed.Load()
	if err := leader.ConfirmLeader(ctx); err != nil || leader.confirmed.Load() != first {
		t.Fatalf("within the lease: %v, confirmed %d then %d (asked again)", err, first, leader.confirmed.Load())
	}
	wantCode(t, nodes[1].ConfirmLeader(ctx), core.CodeUnavailable)

	for _, f := range nodes[1:] {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Once the last confirmation is older than the lease, it fails.
	eventually(t, clusterWait, func() error {
		cctx, cancel := context.WithTimeout(ctx, clusterWait)
		defer cancel()
		if err := leader.ConfirmLeader(cctx); err == nil {
			return errors.New("the leader still confirms without its followers")
		} else if core.CodeOf(err) != core.CodeUnavailable {
			t.Fatalf("confirm without a quorum: %v", err)
		}
		return nil
	})
	if leader.IsLeader() {
		t.Fatal("a leader without a quorum still leads")
	}
}
