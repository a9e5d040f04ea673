package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// mustNodeLog writes a closed (so fully checkpointed) chain of n entries
// for node under dir and returns the key.
func mustNodeLog(t *testing.T, dir, node string, n int, key ed25519.PrivateKey) {
	t.Helper()
	w, err := chain.Open(chain.Config{Path: filepath.Join(dir, node+".log"), NodeID: node, Signer: key, CheckpointEvery: 10, WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		body := fmt.Sprintf(`{"time":"2026-01-01T00:00:00Z","type":"request","auth":{},"request":{"id":"%s-%d","path":"secret/data/x"}}`, node, i)
		if _, err := w.Append(t.Context(), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// Several nodes' logs given together are grouped by node, each chain is
// verified on its own and reported per node; one tampered node fails the
// whole run and is named.
func TestAuditVerifySeveralNodes(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	dirs := map[string]string{}
	for _, n := range []string{"node1", "node2", "node3"} {
		dirs[n] = t.TempDir()
		mustNodeLog(t, dirs[n], n, 40, key)
	}
	t.Setenv("VIGIL_ADDR", "")
	t.Setenv("VAULT_ADDR", "")
	r := runCLI(t, "audit", "verify", "-offline", dirs["node1"], dirs["node2"], dirs["node3"])
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"== node node1", "== node node2", "== node node3", "== 3 nodes: node node1: OK, node node2: OK, node node3: OK =="} {
		if !strings.Contains(r.out, want) {
			t.Fatalf("output lacks %q:\n%s", want, r.out)
		}
	}
	// Tamper with node2's log: only node2 fails.
	p := filepath.Join(dirs["node2"], "node2.log")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), `"node2-7"`, `"node2-X"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "audit", "verify", "-offline", dirs["node1"], dirs["node2"], dirs["node3"])
	if r.code != 1 || !strings.Contains(r.out, "node node1: OK, node node2: FAILED, node node3: OK") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	// One folder holding two nodes' segments is a splice, not a cluster.
	b, _ = os.ReadFile(filepath.Join(dirs["node3"], "node3.log"))
	if err := os.WriteFile(filepath.Join(dirs["node1"], "node3.log"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "audit", "verify", "-offline", dirs["node1"])
	if r.code == 0 || strings.Contains(r.out, "== node") {
		t.Fatalf("a mixed folder: exit %d\n%s", r.code, r.out)
	}
}

// mustNodeTraffic writes n request/response pairs for node, closed.
func mustNodeTraffic(t *testing.T, dir, node string, n int, key ed25519.PrivateKey, start time.Time) string {
	t.Helper()
	p := filepath.Join(dir, "audit.log")
	w, err := chain.Open(chain.Config{Path: p, NodeID: node, Signer: key, CheckpointEvery: 10, WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ts := start.Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339Nano)
		req := fmt.Sprintf(`"request":{"id":"%s-%d","operation":"read","path":"secret/data/%s","remote_address":"127.0.0.1"}`, node, i, node)
		for _, typ := range []string{"request", "response"} {
			body := fmt.Sprintf(`{"time":"%s","type":"%s","auth":{"display_name":"root","policies":["root"]},%s}`, ts, typ, req)
			if typ == "response" {
				body = body[:len(body)-1] + `,"response":{}}`
			}
			if _, err := w.Append(t.Context(), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Several nodes' logs queried together on this machine: every node's
// records, merged in time order, and a line per node.
func TestAuditQuerySeveralNodeLogs(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p1 := mustNodeTraffic(t, t.TempDir(), "node1", 5, key, t0)
	p2 := mustNodeTraffic(t, t.TempDir(), "node2", 5, key, t0.Add(500*time.Millisecond))
	t.Setenv("VIGIL_ADDR", "")
	r := runCLI(t, "audit", "query", "--log", p1, "--log", p2, "--since", "2025-01-01", "--format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	var res struct {
		Records []struct {
			NodeID    string `json:"node_id"`
			RequestID string `json:"request_id"`
		} `json:"records"`
		Checkpoints  []map[string]any `json:"checkpoints"`
		Verification string           `json:"verification"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	if len(res.Records) != 10 || len(res.Checkpoints) != 2 {
		t.Fatalf("%d records, %d checkpoints:\n%s", len(res.Records), len(res.Checkpoints), r.out)
	}
	for i, rec := range res.Records { // interleaved by time: node1, node2, node1, ...
		want := []string{"node1", "node2"}[i%2]
		if rec.NodeID != want {
			t.Fatalf("record %d is %s's (%s), want %s's", i, rec.NodeID, rec.RequestID, want)
		}
	}
	if !strings.Contains(res.Verification, "node node1: 5 records") || !strings.Contains(res.Verification, "node node2: 5 records") {
		t.Fatalf("verification %q", res.Verification)
	}
}
