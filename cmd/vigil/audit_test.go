package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// mustAuditCLIServer is mustCLIServer with the audit subsystem and a
// declared file device at <dir>/audit/audit.log.
func mustAuditCLIServer(t *testing.T, dir string) *servertest.Server {
	t.Helper()
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.Options(cfg)
		sub := auditsvc.NewSubsystem(auditsvc.Options{Stdout: io.Discard})
		replaced := false
		for i, x := range o.Subsystems {
			if _, ok := x.Subsystem.(*auditsvc.Subsystem); ok {
				o.Subsystems[i], replaced = wire.Plug(sub), true
			}
		}
		if !replaced {
			o.Subsystems = append([]server.Plug{wire.Plug(sub)}, o.Subsystems...)
		}
		return o, err
	}
	s := servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{{Type: "file", Name: "file", Options: map[string]config.Value{
			"path": {Value: filepath.Join(dir, "audit", "audit.log")}}}}
	}})
	pointCLI(t, s)
	return s
}

func TestAuditCLI(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditCLIServer(t, dir)
	out := mustOK(t, "audit", "enable", "-path=copy", "-description=second copy", "file", "file_path="+filepath.Join(dir, "copy", "audit.log"), "fsync=interval")
	if !strings.Contains(out, "Enabled the file audit device at: copy/") {
		t.Fatal(out)
	}
	runCLI(t, "audit", "enable", "-path=bad", "file", "colour=red").wantCode(t, 2, `unknown option "colour"`)
	out = mustOK(t, "audit", "list", "-detailed")
	if !strings.Contains(out, "copy/") || !strings.Contains(out, "second copy") || !strings.Contains(out, "fsync=interval") || !strings.Contains(out, "file/") {
		t.Fatalf("list:\n%s", out)
	}
	h := strings.TrimSpace(mustOK(t, "audit", "hash", "file", "s3cr3t"))
	if !strings.HasPrefix(h, "hmac-sha256:") || len(h) != len("hmac-sha256:")+64 {
		t.Fatalf("hash %q", h)
	}
	mustOK(t, "kv", "put", "secret/app", "password=s3cr3t")
	mustOK(t, "audit", "disable", "copy")
	runCLI(t, "audit", "disable", "file").wantCode(t, 2, "declared in the server configuration")

	key := filepath.Join(dir, "key.pem")
	mustOK(t, "audit", "checkpoint-key", "-output", key)
	s.Stop() // the final checkpoint is stored as the device closes
	s.Restart()
	pointCLI(t, s)
	cpJSON := mustOK(t, "read", "-format=json", "sys/audit/checkpoints/file")
	s.Stop()

	log := filepath.Join(dir, "audit", "audit.log")
	b, err := os.ReadFile(log)
	if err != nil || !strings.Contains(string(b), h) || strings.Contains(string(b), "s3cr3t") {
		t.Fatalf("log should hold the hash and not the secret (%v)", err)
	}
	cpFile := filepath.Join(dir, "cp.json")
	if err := os.WriteFile(cpFile, []byte(cpJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustOK(t, "audit", "verify", "-offline", "-pubkey", key, "-checkpoint", cpFile, log)
	if !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("verify: %s", out)
	}
	// An edited entry is found, reported, and exits 1.
	tampered := strings.Replace(string(b), `"operation":"read"`, `"operation":"list"`, 1)
	if err := os.WriteFile(log, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "audit", "verify", "-offline", "-pubkey", key, log)
	if r.code != 1 || !strings.Contains(r.out, "FAILED: edited") {
		t.Fatalf("tampered log: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	// Truncating the tail is caught by the stored checkpoint.
	lines := strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(log, []byte(strings.Join(lines[:len(lines)/2], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "audit", "verify", "-offline", "-pubkey", key, "-checkpoint", cpFile, log)
	if r.code != 1 || !strings.Contains(r.out, "FAILED: truncated") {
		t.Fatalf("truncated log: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	runCLI(t, "audit", "verify", "-offline", filepath.Join(dir, "nope.log")).wantCode(t, 2)
}
