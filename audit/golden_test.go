package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestFileGolden pins the exact bytes a file device writes — Vault-format
// bodies, HMACs, chain members, segment header, events and a signed
// checkpoint — for a fixed clock, salt, key and node id. Run with -update
// to rewrite testdata/file.golden after an intended format change.
func TestFileGolden(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "audit.log")
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, ed25519.SeedSize))
	dc := &DeviceConfig{Name: "file", Type: TypeFile, Path: path, WriteTimeout: 10 * time.Second, CheckpointEvery: 4, CheckpointInterval: -1}
	sink, err := OpenFileSink(dc, FileEnv{NodeID: "golden-node", Signer: key, Now: clock, WatchInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	salt, err := hmac.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBroker(BrokerConfig{Now: clock})
	b.Add(NewDevice(dc, "config", vault.Options{Salt: salt, HMACAccessor: true}, sink, nil))
	req := &core.Request{ID: "11111111-2222-3333-4444-555555555555", Operation: core.OpUpdate, Path: "secret/data/db",
		Mount: &core.MountInfo{Path: "secret/", Type: "kv", Accessor: "kv_0001", Class: "secret"},
		Data:  map[string]any{"data": map[string]any{"password": "hunter2"}}, RemoteAddr: "127.0.0.1", RemotePort: 50000,
		Principal: &core.Principal{ClientToken: "hvs.golden", Accessor: "acc", DisplayName: "root", Policies: []string{"root"}, TokenPolicies: []string{"root"}, TokenType: "service"},
		Decision:  &core.Decision{Allowed: true, GrantingPolicies: []core.PolicyRef{{Name: "root", Type: "acl"}}}}
	ctx := context.Background()
	if err := b.LogRequest(ctx, &core.AuditEvent{Type: "request", Time: now, Request: req}); err != nil {
		t.Fatal(err)
	}
	if err := b.LogResponse(ctx, &core.AuditEvent{Type: "response", Time: now, Request: req, Response: &core.Response{Data: map[string]any{"version": 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "file.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file bytes differ from %s (run with -update if intended):\n%s", golden, got)
	}
	rep, err := chain.VerifyLog(ctx, path, chain.VerifyOptions{PublicKey: key.Public().(ed25519.PublicKey), NodeID: "golden-node"})
	if err != nil || !rep.OK || rep.Entries != 2 || rep.Checkpoints == 0 {
		t.Fatalf("golden log does not verify: %v %v", rep, err)
	}
}
