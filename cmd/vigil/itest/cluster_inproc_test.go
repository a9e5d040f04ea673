package itest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// In-process nodes joined with `sys/storage/raft/join` and the unseal key:
// the join completes, a write through any node is read through every node,
// the standbys forward (and record it) and answer sys/leader and
// sys/health as standbys.
func TestClusterJoinInProcess(t *testing.T) {
	var nodes []*servertest.Server
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node%d", i)
		dir := t.TempDir()
		o := servertest.Options{Dir: dir, NoInit: i > 1, Configure: func(cfg *config.Config) {
			cfg.Storage.NodeID = id
			cfg.Audit = []config.Block{fileDevice(dir, nil)}
		}}
		nodes = append(nodes, servertest.MustStart(t, wire.Options, o))
	}
	leader := nodes[0]
	lc := leader.Client
	if _, err := lc.Logical().Write("sys/storage/raft/autopilot/configuration", map[string]any{"server_stabilization_time": "1s"}); err != nil {
		t.Fatal(err)
	}
	if err := lc.Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		c := n.NewClient("")
		if r, err := c.Sys().RaftJoin(&vaultapi.RaftJoinRequest{LeaderAPIAddr: leader.URL}); err != nil || !r.Joined {
			t.Fatalf("join: %v %v", r, err)
		}
		st, err := c.Sys().SealStatus()
		if err != nil || !st.Initialized || !st.Sealed || st.T != 1 {
			t.Fatalf("seal status while joining: %+v %v", st, err)
		}
		if _, err := c.Sys().Unseal(leader.Keys[0]); err != nil {
			t.Fatalf("unseal to join: %v", err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := c.Sys().SealStatus()
			if err == nil && !st.Sealed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not finish joining: %+v %v", n.NodeID(), st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		n.RootToken = leader.RootToken
		n.Client.SetToken(leader.RootToken)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := lc.Sys().RaftAutopilotState()
		if err == nil && st != nil && len(st.Voters) == 3 && st.Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("autopilot: %+v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, n := range nodes {
		key := fmt.Sprintf("k%d", i)
		if _, err := n.Client.KVv2("secret").Put(context.Background(), key, map[string]any{"v": key}); err != nil {
			t.Fatalf("write through %s: %v", n.NodeID(), err)
		}
		for _, m := range nodes {
			s, err := m.Client.KVv2("secret").Get(context.Background(), key)
			if err != nil || s.Data["v"] != key {
				t.Fatalf("read %s through %s: %v %v", key, m.NodeID(), s, err)
			}
		}
	}
	ls, err := nodes[1].Client.Sys().Leader()
	if err != nil || ls.IsSelf || ls.LeaderAddress != leader.URL {
		t.Fatalf("standby sys/leader: %+v %v", ls, err)
	}
	a := kvPut(nodes[2].Client.CloneConfig().HttpClient, nodes[2].URL, leader.RootToken, "traced", map[string]any{"v": 1})
	if a.status != 200 {
		t.Fatalf("write through node3: %+v", a)
	}
	if !forwardedIn(t, auditLogPath(nodes[2].Dir), a.id, "node1") {
		t.Fatalf("node3's audit log has no forward record of %s", a.id)
	}
	ids := byRequestID(readLog(t, filepath.Join(leader.Dir, "audit", "audit.log")))
	if !ids[a.id]["request"] || !ids[a.id]["response"] {
		t.Fatalf("the active node's log has %v for %s", ids[a.id], a.id)
	}

	// Per-node checkpoints in Raft, countersigned by the other nodes (the
	// standbys' writes forwarded to the leader); the active node answers
	// for every node.
	deadline = time.Now().Add(60 * time.Second)
	for {
		missing := checkWitnessed(t, lc)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoints not witnessed: %v", missing)
		}
		for i := range 20 { // more entries: more checkpoints
			_, _ = nodes[i%3].Client.KVv2("secret").Put(context.Background(), "tick", map[string]any{"i": i})
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Restore on a cluster, through a standby: every node installs the
	// snapshot (a follower that becomes the leader serves the restored
	// state), and the active node's chain records who restored which
	// snapshot.
	var snap bytes.Buffer
	if err := nodes[1].Client.Sys().RaftSnapshot(&snap); err != nil {
		t.Fatalf("snapshot through a standby: %v", err)
	}
	if _, err := nodes[0].Client.KVv2("secret").Put(context.Background(), "after-snapshot", map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].Client.Sys().RaftSnapshotRestore(bytes.NewReader(snap.Bytes()), false); err != nil {
		t.Fatalf("restore through a standby: %v", err)
	}
	sum := sha256.Sum256(snap.Bytes())
	found := false
	for _, l := range readLog(t, filepath.Join(leader.Dir, "audit", "audit.log")) {
		if l.Type == "response" && l.Request["path"] == "sys/storage/raft/snapshot" && l.Request["operation"] == "update" {
			d, _ := l.Response["data"].(map[string]any)
			sn, _ := d["snapshot"].(map[string]any)
			who, _ := l.Auth["display_name"].(string)
			found = sn["sha256"] == hex.EncodeToString(sum[:]) && who == "root"
		}
	}
	if !found {
		t.Fatal("the active node's chain does not record who restored which snapshot")
	}
	leader.Stop() // a follower takes over, with the restored state
	next := nodes[1]
	deadline = time.Now().Add(60 * time.Second)
	for {
		_, err := next.Client.KVv2("secret").Get(context.Background(), "k0")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new active node: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range nodes[1:] {
		if s, err := n.Client.KVv2("secret").Get(context.Background(), "after-snapshot"); err == nil && s != nil {
			t.Fatalf("%s serves a key written after the restored snapshot: %v", n.NodeID(), s.Data)
		}
	}
}

// checkWitnessed returns what is missing for every node's checkpoints to be
// stored in Raft and countersigned by both other nodes.
func checkWitnessed(t *testing.T, c *vaultapi.Client) []string {
	t.Helper()
	var missing []string
	for _, node := range []string{"node1", "node2", "node3"} {
		s, err := c.Logical().ReadWithData("sys/audit/witnesses", map[string][]string{"node_id": {node}})
		if err != nil || s == nil {
			missing = append(missing, fmt.Sprintf("%s: %v", node, err))
			continue
		}
		devs, _ := s.Data["devices"].(map[string]any)
		dev, _ := devs["file"].(map[string]any)
		cps, _ := dev["checkpoints"].([]any)
		sources := map[string]bool{}
		for _, x := range cps {
			m, _ := x.(map[string]any)
			sources[fmt.Sprint(m["source"])] = true
		}
		for _, other := range []string{"node1", "node2", "node3"} {
			want := "node " + other + " (countersigned)"
			if other == node {
				want = "raft storage"
			}
			if node == "node1" && other == "node1" {
				want = "this server's writer, now"
			}
			if !sources[want] {
				missing = append(missing, node+" lacks "+want)
			}
		}
	}
	return missing
}
