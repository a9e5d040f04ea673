package itest

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

func checkpointKey(t *testing.T, s *auditServer) ed25519.PublicKey {
	t.Helper()
	sec, err := s.Client.Logical().Read("sys/audit/checkpoint-key")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(sec.Data["public_key"].(string))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		t.Fatalf("public key: %v", err)
	}
	pub := ed25519.PublicKey(raw)
	if sec.Data["key_id"] != chain.KeyID(pub) {
		t.Fatalf("key_id %v", sec.Data["key_id"])
	}
	if p, err := audit.ParsePublicKey([]byte(sec.Data["public_key_pem"].(string))); err != nil || !p.Equal(pub) {
		t.Fatalf("PEM key: %v", err)
	}
	return pub
}

func storedCheckpoint(t *testing.T, s *auditServer, device string) *chain.Checkpoint {
	t.Helper()
	sec, err := s.Client.Logical().Read("sys/audit/checkpoints/" + device)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sec.Data)
	var cj audit.CheckpointJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		t.Fatal(err)
	}
	cp, err := cj.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	return &cp
}

// Rotation by size across several (gzip'd) segments verifies end to end,
// offline with the public key and stored checkpoint, and on the server
// (sys/audit/verify), which records its result.
func TestAuditRotationVerifiesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, map[string]string{"max_size_mb": "1", "compress": "true", "checkpoint_every": "100"})}
	}}, auditsvc.Options{})
	hc := &http.Client{Timeout: time.Minute}
	fields := map[string]any{}
	for i := 0; i < 12; i++ {
		fields[strings.Repeat("k", i+1)] = "value"
	}
	for i := 0; i < 1500; i++ {
		if a := kvPut(hc, s.URL, s.RootToken, "rot", fields); a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
	}
	pub := checkpointKey(t, s)
	sec, err := s.Client.Logical().Write("sys/audit/verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	dev := sec.Data["devices"].(map[string]any)["file"].(map[string]any)
	if sec.Data["ok"] != true || dev["signatures_checked"] != true || dev["trusted_checkpoint_verified"] != true {
		t.Fatalf("server-side verify: %v", sec.Data)
	}
	last, err := s.Client.Logical().Read("sys/audit/verify")
	if err != nil || last.Data["ok"] != true {
		t.Fatalf("stored verification: %v %v", last, err)
	}
	s.Stop()
	s.Restart() // reopen: Open checks the log against the stored checkpoint
	cp := storedCheckpoint(t, s, "file")
	s.Stop()
	rep, err := chain.VerifyLog(context.Background(), auditLogPath(dir), chain.VerifyOptions{PublicKey: pub, Checkpoint: cp, NodeID: "test-node"})
	if err != nil || !rep.OK || !rep.TrustedCheckpointVerified {
		t.Fatalf("verify: %v %v", rep, err)
	}
	infos, _ := chain.ListSegments(auditLogPath(dir))
	gz := 0
	for _, si := range infos {
		if si.Compressed {
			gz++
		}
	}
	if rep.Segments < 3 || gz == 0 {
		t.Fatalf("expected several segments, some gzip'd: %d segments, %d gz", rep.Segments, gz)
	}
	if rep.Entries < 3000 {
		t.Fatalf("entries %d", rep.Entries)
	}
}

// A deleted active file is noticed, a new segment is started, the event is
// recorded in the chain and counted in the metrics; the whole log (the
// salvaged segment included) still verifies. SIGHUP (Reload) reopens.
func TestAuditDeletedActiveFileDetected(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{WatchInterval: 20 * time.Millisecond})
	c := s.Client
	if _, err := c.Logical().Write("secret/data/a", map[string]any{"data": map[string]any{"v": "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(auditLogPath(dir)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(auditLogPath(dir)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a new active file was not started after the old one was deleted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Logical().Write("secret/data/a", map[string]any{"data": map[string]any{"v": "2"}}); err != nil {
		t.Fatal(err)
	}
	s.Reload()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/sys/metrics?format=prometheus", nil)
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_audit_active_file_reopens_total{device="file"} 1`, `vigil_audit_reloads_total{device="file"} 1`,
		`vigil_audit_entries_total{device="file",type="request"}`, `vigil_audit_fsync_seconds_bucket{device="file"`,
		`vigil_audit_batch_lines_bucket`, `vigil_audit_disk_free_bytes{device="file"}`, `vigil_audit_queue_depth{device="file"}`,
		`vigil_audit_last_checkpoint_seq{device="file"}`, `vigil_audit_bytes_written_total{device="file"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	s.Stop()
	lines := readLog(t, auditLogPath(dir))
	var missing, reopened bool
	for _, l := range lines {
		missing = missing || strings.Contains(l.Raw, `"kind":"active_file_missing"`)
		reopened = reopened || strings.Contains(l.Raw, `"kind":"reopened"`)
	}
	if !missing || !reopened {
		t.Fatalf("chain events: active_file_missing=%v reopened=%v", missing, reopened)
	}
	rep, err := chain.VerifyLog(context.Background(), auditLogPath(dir), chain.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %v", rep, err)
	}
}
