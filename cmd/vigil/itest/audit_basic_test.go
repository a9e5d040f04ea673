package itest

import (
	"context"
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// A secret written through the API never appears in the audit log; the
// request and response entries of the write are there, HMAC'd, and the
// chain verifies against the server's key and stored checkpoint.
func TestAuditSecretNeverInLog(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{})
	const secret = "correct-horse-battery-staple-7f3a"
	sec, err := s.Client.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"password": secret, "port": 5432}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Client.Logical().Read("secret/data/app")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["data"].(map[string]any)["password"] != secret {
		t.Fatalf("read back %v", got.Data)
	}
	hash, err := s.Client.Sys().AuditHash("file", secret)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop() // close the log: final checkpoint
	if hits := fileContains(t, dir, secret); len(hits) > 0 {
		t.Fatalf("secret found in %v", hits)
	}
	lines := readLog(t, auditLogPath(dir))
	ids := byRequestID(lines)
	if !ids[sec.RequestID]["request"] || !ids[sec.RequestID]["response"] {
		t.Fatalf("write %s: entries %v", sec.RequestID, ids[sec.RequestID])
	}
	found := false
	for _, l := range entries(lines) {
		if l.requestID() == sec.RequestID && l.Type == "request" {
			d := l.Request["data"].(map[string]any)["data"].(map[string]any)
			if d["password"] != hash {
				t.Fatalf("password recorded as %v, want %s", d["password"], hash)
			}
			if d["port"] != float64(5432) {
				t.Fatalf("numbers must stay plain: %v", d["port"])
			}
			if tok, _ := l.Auth["client_token"].(string); len(tok) < 20 || tok[:12] != "hmac-sha256:" {
				t.Fatalf("client token not hashed: %q", tok)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no request entry for the write")
	}
	rep, err := chain.VerifyLog(context.Background(), auditLogPath(dir), chain.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %v", rep, err)
	}
}
