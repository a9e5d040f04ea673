package itest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/chain"
)

// `vigil operator raft snapshot save` and `restore -force` on a 3-node
// cluster of vigil processes, both through standbys: a corrupted snapshot
// is refused and changes nothing; the real one returns every node to the
// snapshot's state (a follower that becomes active after one failover,
// and another after a second, serve the restored data); the active
// node's chain records who restored which snapshot (its SHA-256) and the
// standby the forward; every chain still verifies.
func TestClusterSnapshotRestoreCLI(t *testing.T) {
	c := formCluster(t)
	leader := c.active()
	var standbys []*clusterNode
	for _, nd := range c.nodes {
		if nd != leader {
			standbys = append(standbys, nd)
		}
	}
	ctx := context.Background()
	for i, nd := range c.nodes {
		if _, err := c.client(nd).KVv2("secret").Put(ctx, fmt.Sprintf("before-%d", i), map[string]any{"v": "snapshotted"}); err != nil {
			t.Fatalf("write through %s: %v", nd.id, err)
		}
	}
	snap := filepath.Join(t.TempDir(), "cluster.snap")
	if out, err := c.cli(standbys[0], "operator", "raft", "snapshot", "save", snap); err != nil {
		t.Fatalf("snapshot save through a standby: %v\n%s", err, out)
	}
	raw := mustRead(t, snap)
	sum := sha256.Sum256(raw)
	for i, nd := range c.nodes { // changed after the snapshot
		kv := c.client(nd).KVv2("secret")
		if _, err := kv.Put(ctx, fmt.Sprintf("before-%d", i), map[string]any{"v": "changed"}); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, fmt.Sprintf("after-%d", i), map[string]any{"v": "new"}); err != nil {
			t.Fatal(err)
		}
	}

	// A corrupted copy is refused; the current data stays.
	bad := append([]byte(nil), raw...)
	bad[len(bad)/2] ^= 0xff
	badFile := filepath.Join(t.TempDir(), "corrupt.snap")
	if err := os.WriteFile(badFile, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := c.cli(standbys[1], "operator", "raft", "snapshot", "restore", "-force", badFile); err == nil {
		t.Fatalf("a corrupted snapshot was installed:\n%s", out)
	}
	wantState(t, c, c.active(), "changed", true)

	if out, err := c.cli(standbys[1], "operator", "raft", "snapshot", "restore", "-force", snap); err != nil {
		t.Fatalf("snapshot restore -force through a standby: %v\n%s", err, out)
	}
	for _, nd := range c.nodes { // through every node
		wantState(t, c, nd, "snapshotted", false)
	}
	// Who restored which snapshot: the active node's chain; the forward:
	// the standby's.
	var restoreID string
	for _, l := range readLog(t, leader.auditLog) {
		if l.Type != "response" || l.Request["path"] != "sys/storage/raft/snapshot-force" || l.Error != "" {
			continue
		}
		d, _ := l.Response["data"].(map[string]any)
		sn, _ := d["snapshot"].(map[string]any)
		if who, _ := l.Auth["display_name"].(string); sn["sha256"] == hex.EncodeToString(sum[:]) && who == "root" {
			restoreID = l.requestID()
		}
	}
	if restoreID == "" {
		t.Fatal("the active node's chain does not record who restored which snapshot")
	}
	if !forwardedIn(t, standbys[1].auditLog, restoreID, leader.id) {
		t.Fatalf("%s's chain does not record forwarding the restore %s", standbys[1].id, restoreID)
	}

	// Two failovers: each new active node serves the restored state from
	// its own copy.
	served := map[string]bool{leader.id: true}
	for range 2 {
		victim := c.active()
		var others []*clusterNode
		for _, nd := range c.nodes {
			if nd != victim {
				others = append(others, nd)
			}
		}
		c.kill(victim)
		next := c.active(others...)
		wantState(t, c, next, "snapshotted", false)
		served[next.id] = true
		c.start(victim)
		c.unseal(victim)
		c.eventually(90*time.Second, func() error {
			if v := c.voters(); len(v) != 3 || !v["node1"] || !v["node2"] || !v["node3"] {
				return fmt.Errorf("voters %v", v)
			}
			return nil
		})
	}
	if len(served) < 2 {
		t.Fatalf("only %v served the restored state as the active node", served)
	}
	t.Logf("active nodes that served the restored state: %v", served)
	hc := c.httpClient()
	for _, nd := range c.nodes {
		pub := fetchKeyTLS(t, hc, nd.url(), c.root)
		rep, err := chain.VerifyLog(ctx, nd.auditLog, chain.VerifyOptions{PublicKey: pub, NodeID: nd.id, Strict: true})
		if err != nil || !rep.OK {
			t.Fatalf("%s's chain after the restore: %v %v", nd.id, rep, err)
		}
	}
}

// wantState checks through nd the data written around the snapshot:
// before-N holds v, and after-N exists or not.
func wantState(t *testing.T, c *testCluster, nd *clusterNode, v string, after bool) {
	t.Helper()
	kv := c.client(nd).KVv2("secret")
	for i := range c.nodes {
		var s *vaultapi.KVSecret
		c.eventually(30*time.Second, func() error { // a new active node may still be loading
			var err error
			s, err = kv.Get(context.Background(), fmt.Sprintf("before-%d", i))
			return err
		})
		if s.Data["v"] != v {
			t.Fatalf("before-%d through %s: %v, want %s", i, nd.id, s.Data["v"], v)
		}
		_, err := kv.Get(context.Background(), fmt.Sprintf("after-%d", i))
		switch {
		case after && err != nil:
			t.Fatalf("after-%d through %s: %v", i, nd.id, err)
		case !after && !errors.Is(err, vaultapi.ErrSecretNotFound):
			if err == nil || !strings.Contains(err.Error(), "404") {
				t.Fatalf("after-%d through %s after the restore: %v, want not found", i, nd.id, err)
			}
		}
	}
}
