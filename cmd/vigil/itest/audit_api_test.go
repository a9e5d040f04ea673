package itest

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// apiSettings allows API changes to devices under dir.
func apiSettings(dir string, more map[string]string) *config.Block {
	o := map[string]config.Value{"allow_api_changes": {Value: "true", File: "test.hcl", Line: 1},
		"allowed_dirs": {List: []string{dir}, File: "test.hcl", Line: 2}}
	for k, v := range more {
		o[k] = config.Value{Value: v, File: "test.hcl", Line: 3}
	}
	return &config.Block{Type: "audit_settings", Options: o, File: "test.hcl", Line: 1}
}

// The Vault API client enables, lists, hashes with and disables devices;
// API-enabled devices persist across restarts; the zero-devices policy
// holds.
func TestAuditAPIWithVaultClient(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.AuditSettings = apiSettings(dir, nil)
	}}, auditsvc.Options{Stdout: io.Discard})
	sys := s.Client.Sys()

	// Never configured: only health and the audit configuration are
	// served, and health says why.
	resp, err := rawRequest(t, s.Client, http.MethodGet, "/v1/sys/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get(auditsvc.HeaderStatus) != auditsvc.StatusCritical || !strings.Contains(string(body), "no durable audit device") {
		t.Fatalf("unconfigured audit not reported: %s %s", resp.Header.Get(auditsvc.HeaderStatus), body)
	}

	path := filepath.Join(dir, "logs", "api.log")
	if err := sys.EnableAuditWithOptions("main", &vaultapi.EnableAuditOptions{Type: "file", Description: "primary",
		Options: map[string]string{"file_path": path, "hmac_accessor": "false"}}); err != nil {
		t.Fatal(err)
	}
	err = sys.EnableAuditWithOptions("bad", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": path + "2", "fsync": "sometimes"}})
	wantStatus(t, err, http.StatusBadRequest)
	err = sys.EnableAuditWithOptions("bad", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": path + "2", "colour": "red"}})
	if err == nil || !strings.Contains(err.Error(), `unknown option "colour"`) {
		t.Fatalf("unknown option: %v", err)
	}
	err = sys.EnableAuditWithOptions("main", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": path + "3"}})
	wantStatus(t, err, http.StatusBadRequest)

	list, err := sys.ListAudit()
	if err != nil {
		t.Fatal(err)
	}
	m := list["main/"]
	if len(list) != 1 || m == nil || m.Type != "file" || m.Path != "main/" || m.Description != "primary" || m.Options["file_path"] != path {
		t.Fatalf("list: %#v", list)
	}
	hash, err := sys.AuditHash("main", "s3cr3t")
	if err != nil || !strings.HasPrefix(hash, hmac.Prefix) {
		t.Fatalf("audit-hash: %q %v", hash, err)
	}
	// Disabling the last device is refused: audit is now required.
	err = sys.DisableAudit("main")
	wantStatus(t, err, http.StatusBadRequest)

	// Persisted: after a restart (new unseal) the device is back, same salt.
	s.Restart()
	list, err = s.Client.Sys().ListAudit()
	if err != nil || list["main/"] == nil {
		t.Fatalf("after restart: %v %v", list, err)
	}
	if h2, _ := s.Client.Sys().AuditHash("main", "s3cr3t"); h2 != hash {
		t.Fatalf("salt changed across restart: %s vs %s", h2, hash)
	}
	if err := s.Client.Sys().EnableAuditWithOptions("out", &vaultapi.EnableAuditOptions{Type: "stdout", Options: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	// A stdout device does not replace the last durable one.
	err = s.Client.Sys().DisableAudit("main/")
	wantStatus(t, err, http.StatusBadRequest)
	if err := s.Client.Sys().EnableAuditWithOptions("second", &vaultapi.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": filepath.Join(dir, "logs", "second.log")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Sys().DisableAudit("main/"); err != nil {
		t.Fatal(err)
	}
	list, _ = s.Client.Sys().ListAudit()
	if len(list) != 2 || list["out/"] == nil || list["second/"] == nil {
		t.Fatalf("after disable: %v", list)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.Count(string(b), `"path":"sys/audit/main"`) < 2 {
		t.Fatalf("the disable request and response are not in the disabled device's log: %v", err)
	}
}

// audit_settings { allow_api_changes = false } switches the API off, and
// devices declared in the configuration cannot be disabled through it.
func TestAuditAPIChangesDisabled(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
		c.AuditSettings = &config.Block{Type: "audit_settings", Options: map[string]config.Value{"allow_api_changes": {Value: "false"}}}
	}}, auditsvc.Options{})
	err := s.Client.Sys().EnableAuditWithOptions("x", &vaultapi.EnableAuditOptions{Type: "stdout"})
	wantStatus(t, err, http.StatusForbidden)
	if !strings.Contains(err.Error(), "allow_api_changes = false") {
		t.Fatalf("%v", err)
	}
	err = s.Client.Sys().DisableAudit("file")
	wantStatus(t, err, http.StatusForbidden)
	list, err := s.Client.Sys().ListAudit()
	if err != nil || list["file/"] == nil || list["file/"].Options["path"] != auditLogPath(dir) {
		t.Fatalf("declared device not listed: %v %v", list, err)
	}
}

// Unknown keys in a device block are configuration errors naming the key
// and its line.
func TestAuditConfigUnknownKey(t *testing.T) {
	cfg, err := config.Parse("vigil.hcl", []byte(`
storage "raft" {
  path = "/tmp/x"
}
audit "file" "main" {
  path   = "/var/log/vigil/audit.log"
  colour = "red"
}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = auditsvc.FromBlock(cfg.Audit[0])
	if err == nil || !strings.Contains(err.Error(), "vigil.hcl:7") || !strings.Contains(err.Error(), `"colour"`) {
		t.Fatalf("got %v", err)
	}
}
