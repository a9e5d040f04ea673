package itest

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/reports"
	"github.com/vigilsec/vigil/reports/traffic"
)

// TestEvidenceBundle: one report request yields a signed bundle (PDF,
// HTML, CSV, JSON against one checkpoint, manifest.json, signature.json)
// that verifies offline with the checkpoint key the API publishes; one
// byte changed in any file fails verification; the report's audit entry
// records the period, scope and manifest hash in clear; a misspelt
// parameter is refused.
func TestEvidenceBundle(t *testing.T) {
	start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	clk := &setClock{t: start.Add(-2 * time.Hour)}
	srv, dir := reportServer(t, clk)
	ts := traffic.Server{Root: srv.Client, NewClient: srv.NewClient, SetClock: clk.Set, AuditDir: filepath.Join(dir, "audit")}
	if err := traffic.Setup(ts, start.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := traffic.Day(ts, start, 0); err != nil {
		t.Fatal(err)
	}
	end := start.Add(24 * time.Hour)
	clk.Set(end.Add(time.Hour))
	zb := getReport(t, srv.Client, "hipaa", reports.FormatBundle, start, end)
	key, err := srv.Client.Logical().Read("sys/audit/checkpoint-key")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.ParsePublicKey([]byte(key.Data["public_key_pem"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hipaa.zip")
	if err := os.WriteFile(p, zb, 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := reports.ReadBundle(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"report.pdf", "report.html", "report.csv", "report.json", "manifest.json", "signature.json"} {
		if len(files[name]) == 0 {
			t.Fatalf("bundle lacks %s", name)
		}
	}
	c, err := reports.VerifyBundle(files, pub)
	if err != nil {
		t.Fatalf("the bundle does not verify: %v", err)
	}
	if !c.KeyPinned || c.Manifest.Checkpoint == nil || c.Manifest.Kind != "hipaa" || !c.Manifest.From.Equal(start) {
		t.Fatalf("check: %+v", c)
	}
	var rep reports.Report
	if err := json.Unmarshal(files["report.json"], &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files["report.csv"]), rep.Checkpoint.Hash) {
		t.Error("the CSV names another checkpoint than the JSON")
	}
	// One byte changed anywhere fails.
	for name, b := range files {
		for _, at := range []int{0, len(b) / 2, len(b) - 1} {
			mod := map[string][]byte{}
			for k, v := range files {
				mod[k] = v
			}
			x := bytes.Clone(b)
			x[at] ^= 0x01
			mod[name] = x
			if _, err := reports.VerifyBundle(mod, pub); !errors.Is(err, reports.ErrBundle) {
				t.Errorf("%s with byte %d changed: %v", name, at, err)
			}
		}
	}
	// A zip with one byte changed in a stored file fails too.
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == "report.html" {
			b[100] ^= 0x20
		}
		w, _ := zw.Create(f.Name)
		w.Write(b)
	}
	zw.Close()
	bad := filepath.Join(t.TempDir(), "bad.zip")
	os.WriteFile(bad, zbuf.Bytes(), 0o600)
	if files, err := reports.ReadBundle(bad); err != nil {
		t.Fatal(err)
	} else if _, err := reports.VerifyBundle(files, pub); !errors.Is(err, reports.ErrBundle) {
		t.Errorf("tampered zip: %v", err)
	}
	// Another key does not verify it.
	other := make([]byte, len(pub))
	copy(other, pub)
	other[0] ^= 1
	if _, err := reports.VerifyBundle(files, other); err == nil {
		t.Error("verified with another key")
	}
	// The audit entry of the report request states the period, the scope
	// and the manifest hash in clear.
	log, err := os.Open(auditLogPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	found := false
	sc := bufio.NewScanner(log)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"report.manifest_sha256":"`+c.ManifestSHA256+`"`) {
			found = strings.Contains(line, `"report.from":"2025-03-03T00:00:00Z"`) && strings.Contains(line, `"report.scope":"phi/"`) &&
				strings.Contains(line, `"type":"response"`)
		}
	}
	if !found {
		t.Error("no response audit entry records the report's period, scope and manifest hash in clear")
	}
	// Unknown parameters are refused.
	_, err = srv.Client.Logical().ReadRawWithData("sys/reports/hipaa", map[string][]string{"form": {"2025-01-01"}})
	wantStatus(t, err, 400)
}
