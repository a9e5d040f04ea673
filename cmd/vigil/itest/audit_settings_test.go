package itest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// healthAudit reads sys/health's audit status and the reason it gives.
func healthAudit(t *testing.T, c *vaultapi.Client) (status, reason string) {
	t.Helper()
	resp, err := rawRequest(t, c, http.MethodGet, "/v1/sys/health", nil)
	if err != nil && resp == nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var h struct {
		AuditStatus string         `json:"audit_status"`
		Audit       map[string]any `json:"audit"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("health body %s: %v", b, err)
	}
	reason, _ = h.Audit["reason"].(string)
	return h.AuditStatus, reason
}

// checkStatus runs the compliance checks and returns one check's status.
func checkStatus(t *testing.T, c *vaultapi.Client, id string) (string, []compliance.Finding) {
	t.Helper()
	resp, err := c.Logical().ReadRaw("sys/compliance/checks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data compliance.Result `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, c := range body.Data.Checks {
		if c.ID == id {
			return c.Status, c.Findings
		}
	}
	t.Fatalf("no check %s", id)
	return "", nil
}

// Outside -dev, with no durable device, the server refuses every request
// but sealing, health and the audit device configuration; a stdout device
// or a file device that does not fsync every entry does not lift that; a
// durable file device does.
func TestNoDurableDeviceNoService(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.AuditSettings = apiSettings(dir, nil)
	}}, auditsvc.Options{Stdout: io.Discard})
	sys := s.Client.Sys()
	refused := func(what string) {
		t.Helper()
		_, err := sys.ListMounts()
		wantStatus(t, err, http.StatusInternalServerError)
		if !strings.Contains(err.Error(), "no durable audit device") || !strings.Contains(err.Error(), "not executed") {
			t.Fatalf("%s: %v", what, err)
		}
	}
	refused("no device")
	if st, reason := healthAudit(t, s.Client); st != auditsvc.StatusCritical || !strings.Contains(reason, "only seal, unseal, health") {
		t.Fatalf("health: %s %q", st, reason)
	}
	if _, err := sys.ListAudit(); err != nil {
		t.Fatalf("listing devices is served: %v", err)
	}
	if err := sys.EnableAuditWithOptions("out", &vaultapi.EnableAuditOptions{Type: "stdout"}); err != nil {
		t.Fatal(err)
	}
	refused("stdout device")
	if err := sys.EnableAuditWithOptions("lazy", &vaultapi.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": filepath.Join(dir, "lazy", "audit.log"), "fsync": "interval"}}); err != nil {
		t.Fatal(err)
	}
	refused("file device with fsync=interval")
	path := filepath.Join(dir, "durable", "audit.log")
	if err := sys.EnableAuditWithOptions("durable", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": path}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.ListMounts(); err != nil {
		t.Fatalf("with a durable device: %v", err)
	}
	s.Stop()
	if byPath := entryOn(readLog(t, path), "request", "sys/mounts"); byPath == nil {
		t.Fatal("the durable device did not record the request it acknowledged")
	}
}

// entryOn finds an entry of type typ for path.
func entryOn(lines []logLine, typ, path string) *logLine {
	for _, l := range entries(lines) {
		if l.Type == typ && l.Request["path"] == path {
			return &l
		}
	}
	return nil
}

// require_audit = false is recorded in the trail at unseal (an internal
// request by server-configuration), once per change, and reported by
// sys/health and a compliance check.
func TestRequireAuditOffIsRecordedAndReported(t *testing.T) {
	dir := t.TempDir()
	// The wiring's own audit subsystem: the compliance checks read it.
	s := mustStart(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
		c.AuditSettings = &config.Block{Type: "audit_settings", Options: map[string]config.Value{"require_audit": {Value: "false", File: "test.hcl", Line: 1}}}
	}})
	if st, reason := healthAudit(t, s.Client); st != auditsvc.StatusDegraded || !strings.Contains(reason, "require_audit = false") {
		t.Fatalf("health: %s %q", st, reason)
	}
	if st, fs := checkStatus(t, s.Client, compliance.CheckAuditRequire); st != compliance.StatusFail || fs[0].Severity != compliance.High {
		t.Fatalf("compliance: %s %+v", st, fs)
	}
	s.Restart()
	s.Stop()
	lines := readLog(t, auditLogPath(dir))
	n := 0
	for _, l := range entries(lines) {
		if l.Request["path"] == "sys/audit/settings/record" && l.Auth["display_name"] == auditsvc.ActorConfiguration {
			n++
			if l.Request["data"].(map[string]any)["require_audit"] != false {
				t.Fatalf("recorded settings: %s", l.Raw)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d entries record the change, want a request and a response, once", n)
	}
}

// A file device that does not fsync every entry is flagged by sys/health
// (degraded) and by a compliance check.
func TestNonDurableDeviceFlagged(t *testing.T) {
	dir := t.TempDir()
	s := mustStart(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil), {Type: "file", Name: "lazy", File: "test.hcl", Line: 5,
			Options: map[string]config.Value{"path": {Value: filepath.Join(dir, "lazy.log")}, "fsync": {Value: "none"}}}}
	}})
	if st, reason := healthAudit(t, s.Client); st != auditsvc.StatusDegraded || !strings.Contains(reason, `device lazy is not durable (fsync = "none")`) {
		t.Fatalf("health: %s %q", st, reason)
	}
	st, fs := checkStatus(t, s.Client, compliance.CheckAuditDurable)
	if st != compliance.StatusFail || len(fs) != 1 || !strings.Contains(fs[0].Object, "lazy") {
		t.Fatalf("compliance: %s %+v", st, fs)
	}
}

// Outside -dev, audit devices cannot be changed through the API unless the
// configuration allows it.
func TestAPIChangesOffByDefaultOutsideDev(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{Stdout: io.Discard})
	err := s.Client.Sys().EnableAuditWithOptions("out", &vaultapi.EnableAuditOptions{Type: "stdout"})
	wantStatus(t, err, http.StatusForbidden)
	if !strings.Contains(err.Error(), "allow_api_changes = false") {
		t.Fatal(err)
	}
}

// With API changes allowed, a file device may only write under
// allowed_dirs — no escape with "..", through a symbolic link, or with a
// large reserve file.
func TestAPIFilePathsConfinedToAllowedDirs(t *testing.T) {
	dir := t.TempDir()
	allowed, other := filepath.Join(dir, "allowed"), filepath.Join(dir, "other")
	for _, d := range []string{allowed, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(other, filepath.Join(allowed, "link")); err != nil {
		t.Fatal(err)
	}
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
		c.AuditSettings = apiSettings(allowed, nil)
	}}, auditsvc.Options{})
	enable := func(name, path string, more map[string]string) error {
		o := map[string]string{"file_path": path}
		for k, v := range more {
			o[k] = v
		}
		return s.Client.Sys().EnableAuditWithOptions(name, &vaultapi.EnableAuditOptions{Type: "file", Options: o})
	}
	for name, p := range map[string]string{
		"outside": filepath.Join(other, "a.log"),
		"dotdot":  allowed + "/../other/b.log",
		"symlink": filepath.Join(allowed, "link", "c.log"),
		"root":    "/tmp/vigil-audit-escape.log",
	} {
		err := enable(name, p, nil)
		wantStatus(t, err, http.StatusBadRequest)
		if !strings.Contains(err.Error(), "not under an allowed directory") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	err := enable("big", filepath.Join(allowed, "big.log"), map[string]string{"reserve_bytes": "1GiB"})
	wantStatus(t, err, http.StatusBadRequest)
	if err := enable("ok", filepath.Join(allowed, "logs", "ok.log"), nil); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 {
		t.Fatalf("files written outside the allowed folder: %v", entries)
	}
}

// Enabling or disabling a device is recorded on the device being changed
// and on every other device: request and response entries on each.
func TestDeviceChangesRecordedOnEveryDevice(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
		c.AuditSettings = apiSettings(dir, nil)
	}}, auditsvc.Options{})
	second := filepath.Join(dir, "second", "audit.log")
	if err := s.Client.Sys().EnableAuditWithOptions("second", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": second}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Sys().DisableAudit("second"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	for _, log := range []string{auditLogPath(dir), second} {
		lines := readLog(t, log)
		for _, op := range []string{"update", "delete"} {
			for _, typ := range []string{"request", "response"} {
				found := false
				for _, l := range entries(lines) {
					if l.Type == typ && l.Request["path"] == "sys/audit/second" && l.Request["operation"] == op {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: no %s entry for the %s of the device", log, typ, op)
				}
			}
		}
	}
}
