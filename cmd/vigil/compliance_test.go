package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/reports"
)

// mustComplianceServer is a dev server with a file audit device and the
// compliance and reports subsystems wire lists.
func mustComplianceServer(t *testing.T) *servertest.Server {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit", "audit.log")
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dir: dir, Dev: true, Configure: func(cfg *config.Config) {
		cfg.Audit = []config.Block{{Type: "file", Name: "file", File: "t.hcl", Line: 1,
			Options: map[string]config.Value{"path": {Value: logPath, File: "t.hcl", Line: 2}}}}
	}})
	pointCLI(t, s)
	return s
}

func TestComplianceCheckCLI(t *testing.T) {
	mustComplianceServer(t)
	out := mustOK(t, "compliance", "check")
	for _, want := range []string{"FAIL", compliance.CheckTokenRoot, "[HIGH]", "Fix:", "45 CFR", "Controls:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}
	js := mustOK(t, "compliance", "check", "-format", "json", "-max-token-ttl", "48h")
	var res compliance.Result
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Checks) != len(compliance.Checks()) || res.Failed == 0 || res.Thresholds.MaxTokenTTL.D().Hours() != 48 {
		t.Fatalf("%+v", res)
	}
	// The dev root token is a high finding: -fail-on high exits 3.
	runCLI(t, "compliance", "check", "-fail-on", "high").wantCode(t, 3)
	runCLI(t, "compliance", "check", "-fail-on", "bogus").wantCode(t, 1, "unknown -fail-on")
}

func TestSnapshotTestCLI(t *testing.T) {
	mustComplianceServer(t)
	out := mustOK(t, "operator", "raft", "snapshot", "test", "-format", "json")
	var rec map[string]any
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["ok"] != true || rec["keyring_present"] != true || rec["live_keys"] != rec["restored_keys"] {
		t.Fatalf("%v", rec)
	}
	// Recorded: the restore-test check passes now.
	js := mustOK(t, "compliance", "check", "-format", "json")
	var res compliance.Result
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Checks {
		if c.ID == compliance.CheckRestoreTest && c.Status != compliance.StatusPass {
			t.Fatalf("restore test check: %+v", c)
		}
	}
}

func TestReportCLI(t *testing.T) {
	s := mustComplianceServer(t)
	if _, err := s.Client.Logical().Write("secret/data/x", map[string]any{"data": map[string]any{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	from := s.Now().Add(-24 * 3600e9).UTC().Format("2006-01-02")
	to := s.Now().Add(24 * 3600e9).UTC().Format("2006-01-02")
	for _, f := range []string{"hipaa.pdf", "hipaa.html", "nrb.csv", "nrb.json"} {
		kind := strings.TrimSuffix(f, filepath.Ext(f))
		r := runCLI(t, "report", kind, "-from", from, "-to", to, "-scope", "secret", "-o", filepath.Join(dir, f))
		r.wantCode(t, 0, "Wrote")
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", f, err)
		}
		switch filepath.Ext(f) {
		case ".pdf":
			if !strings.HasPrefix(string(b), "%PDF-") {
				t.Fatal("not a PDF")
			}
		case ".html":
			if !strings.Contains(string(b), "<svg") || !strings.Contains(string(b), "secret/") {
				t.Fatal("HTML lacks charts or scope")
			}
		case ".csv":
			if !strings.HasPrefix(string(b), strings.Join(reports.CSVHeader(), ",")+"\r\n") {
				t.Fatal("CSV header")
			}
		case ".json":
			var rep reports.Report
			if err := json.Unmarshal(b, &rep); err != nil || rep.Kind != "nrb" || len(rep.Sections) == 0 {
				t.Fatalf("JSON: %v", err)
			}
		}
	}
	runCLI(t, "report", "hipaa", "-format", "pdf").wantCode(t, 1, "needs -o")
	runCLI(t, "report", "hipaa", "-from", "yesterday").wantCode(t, 2, "from")
}
