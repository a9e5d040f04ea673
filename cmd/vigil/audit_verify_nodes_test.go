package main

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
