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

func TestParsePeerRelease(t *testing.T) {
	for out, want := range map[string]peerRelease{
		"OpenBao v2.5.5\n":                        {Product: "OpenBao", Major: 2, Minor: 5, Patch: 5, Raw: "OpenBao v2.5.5"},
		"Vault v1.19.0 ('abc'), built 2025-03-04": {Product: "Vault", Major: 1, Minor: 19, Raw: "Vault v1.19.0 ('abc'), built 2025-03-04"},
		"something else":                          {Raw: "something else"},
	} {
		if got := parsePeerRelease(out); got != want {
			t.Errorf("parsePeerRelease(%q) = %+v, want %+v", out, got, want)
		}
	}
}

// TestAuditModeFor: OpenBao from 2.4 declares its audit device in the
// configuration; 2.3.2 to 2.3.x need the unsafe API switch; older OpenBao
// and Vault use the API.
func TestAuditModeFor(t *testing.T) {
	bao := func(s string) peerRelease { return parsePeerRelease("OpenBao " + s) }
	for _, c := range []struct {
		kind string
		rel  peerRelease
		want peerAuditMode
	}{
		{"openbao", bao("v2.5.5"), auditDeclarative},
		{"openbao", bao("v2.4.0"), auditDeclarative},
		{"openbao", bao("v3.0.0"), auditDeclarative},
		{"openbao", bao("v2.3.2"), auditViaAPIUnsafe},
		{"openbao", bao("v2.3.1"), auditViaAPI},
		{"openbao", peerRelease{Raw: "dev build"}, auditDeclarative},
		{"vault", parsePeerRelease("Vault v1.19.0"), auditViaAPI},
		{"vigil", parsePeerRelease("Vigil v0.1.0"), auditViaAPI},
	} {
		if got := auditModeFor(c.kind, c.rel); got != c.want {
			t.Errorf("%s %s: mode %d, want %d", c.kind, c.rel.Raw, got, c.want)
		}
	}
	if cfg := peerAuditConfig(auditDeclarative, "/a b/audit.log"); !strings.Contains(cfg, `audit "file" "file" {`) || !strings.Contains(cfg, `file_path = "/a b/audit.log"`) {
		t.Errorf("declarative block:\n%s", cfg)
	}
	if cfg := peerAuditConfig(auditViaAPIUnsafe, "x"); cfg != "unsafe_allow_api_audit_creation = true\n" {
		t.Errorf("unsafe switch: %q", cfg)
	}
}

// TestPeerTargetStartsRealPeer starts the binary named by
// VIGIL_BENCH_PEER_BIN (e.g. OpenBao 2.5.5) the way `vigil bench
// --peer-bin` does, writes and reads a KV v2 secret through it and checks
// that its file audit device recorded both. The peer is not a dependency
// of the project: without the variable the test is skipped, also under
// make test.
func TestPeerTargetStartsRealPeer(t *testing.T) {
	bin := os.Getenv("VIGIL_BENCH_PEER_BIN")
	if bin == "" {
		t.Skip("VIGIL_BENCH_PEER_BIN is not set (the path of an OpenBao or Vault binary)")
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
