//go:build peer

package bench

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPeerTargetStartsRealPeer starts the binary named by
// VIGIL_BENCH_PEER_BIN (e.g. OpenBao 2.5.5) the way `vigil bench
// --peer-bin` does, writes and reads a KV v2 secret through it and checks
// that its file audit device recorded both. The peer is not a dependency
// of the project, so the test is built only with the "peer" tag, as the
// compatibility suite is with "compat":
//
//	VIGIL_BENCH_PEER_BIN=/path/to/bao go test -tags peer ./bench -run TestPeerTargetStartsRealPeer
func TestPeerTargetStartsRealPeer(t *testing.T) {
	bin := os.Getenv("VIGIL_BENCH_PEER_BIN")
	if bin == "" {
		t.Fatal("VIGIL_BENCH_PEER_BIN must name an OpenBao or Vault binary for the peer tests")
	}
	kind := os.Getenv("VIGIL_BENCH_PEER_KIND")
	if kind == "" {
		kind = "openbao"
		if strings.Contains(filepath.Base(bin), "vault") {
			kind = "vault"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pt := &PeerTarget{Bin: bin, Kind: kind, Dir: t.TempDir()}
	if err := pt.Start(ctx); err != nil {
		pt.Stop(ctx)
		t.Fatal(err)
	}
	defer func() {
		if err := pt.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	info := pt.Info()
	if info.Version == "" || len(info.Devices) == 0 {
		t.Fatalf("peer info %+v: no version or no audit device", info)
	}
	api := &API{Base: pt.URL(), Token: pt.Token(), Tag: "peer-test", HTTP: &http.Client{Timeout: 30 * time.Second}}
	// A fresh KV v2 mount refuses writes while it upgrades.
	if err := retry(ctx, 30*time.Second, func() error {
		_, err := api.Do(ctx, "POST", "secret/data/peer-check", map[string]any{"data": map[string]any{"k": "v"}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, err := api.Do(ctx, "GET", "secret/data/peer-check", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got["data"].(map[string]any); d == nil {
		t.Fatalf("read answered %v", got)
	}
	log, err := os.ReadFile(info.AuditLog)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), `"path":"secret/data/peer-check"`); n < 4 {
		t.Fatalf("audit log %s holds %d entries for the secret, want at least the request and response of the write and the read", info.AuditLog, n)
	}
}
