// Command vigil-demo starts an in-process dev server with a file audit
// device, generates a realistic week of traffic against it (package
// reports/traffic: clinicians reading PHI, an application denied PHI, a
// password-guessing intruder, a night-time break-glass read, root changing
// a policy and an audit device), runs the compliance checks, and writes the
// HIPAA and NRB reports as signed evidence bundles (zip, and unpacked:
// PDF, HTML, CSV, JSON, manifest.json, signature.json), the checkpoint
// key that verifies them, and the check results to a folder.
// `make demo-report` runs it into docs/sample-reports/.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/reports"
	"github.com/vigilsec/vigil/reports/traffic"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func main() {
	out := flag.String("out", "docs/sample-reports", "folder to write the reports to")
	days := flag.Int("days", 7, "days of traffic")
	startS := flag.String("start", "2025-03-03", "first day of traffic (YYYY-MM-DD, UTC); fixed so the samples are reproducible")
	flag.Parse()
	if err := run(*out, *days, *startS); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-demo:", err)
		os.Exit(1)
	}
}

func run(out string, days int, startS string) error {
	start, err := time.Parse("2006-01-02", startS)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(dir, "audit", "audit.log")
	clk := &clock{t: start.Add(-2 * time.Hour)}
	cfg := &config.Config{
		Storage:   &config.Storage{Type: "raft", Path: filepath.Join(dir, "storage"), NodeID: "demo-node"},
		Listeners: []config.Listener{{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true}},
		Audit: []config.Block{{Type: "file", Name: "file", File: "demo.hcl", Line: 1,
			Options: map[string]config.Value{"path": {Value: logPath, File: "demo.hcl", Line: 2}}}},
	}
	so, err := wire.Options(cfg)
	if err != nil {
		return err
	}
	so.Dev, so.Now = true, clk.Now
	so.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(so)
	if err != nil {
		return err
	}
	ctx := context.Background()
	defer srv.Close(ctx)
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		return err
	}
	info, err := srv.DevBootstrap(ctx, "")
	if err != nil {
		return err
	}
	newClient := func(tok string) *vaultapi.Client {
		c, _ := vaultapi.NewClient(&vaultapi.Config{Address: "http://" + srv.Addr(), MaxRetries: 0, Timeout: time.Minute})
		c.SetToken(tok)
		return c
	}
	root := newClient(info.RootToken)
	ts := traffic.Server{Root: root, NewClient: newClient, SetClock: clk.Set, AuditDir: filepath.Dir(logPath)}
	fmt.Printf("vigil-demo: dev server on %s, generating %d days of traffic from %s\n", srv.Addr(), days, startS)
	if err := traffic.Setup(ts, start.Add(-time.Hour)); err != nil {
		return err
	}
	// Automated snapshots to a local folder, taken by the server's job
	// scheduler at the end of each day, with a restore drill every 3 days.
	if _, err := root.Logical().Write("sys/storage/raft/snapshot-auto/config/daily", map[string]any{
		"interval": "24h", "retain": 7, "storage_type": "local", "path_prefix": filepath.Join(dir, "snapshots"), "drill_interval": "72h",
	}); err != nil {
		return err
	}
	for d := 0; d < days; d++ {
		day := start.Add(time.Duration(d) * 24 * time.Hour)
		if err := traffic.Day(ts, day, d); err != nil {
			return err
		}
		clk.Set(day.Add(23*time.Hour + 30*time.Minute))
		if err := srv.RunScheduledJobs(ctx); err != nil {
			return fmt.Errorf("scheduled jobs: %w", err)
		}
	}
	end := start.Add(time.Duration(days) * 24 * time.Hour)
	clk.Set(end.Add(30 * time.Minute))
	// Housekeeping an operator would do: verify, snapshot, restore test,
	// a restore drill of the latest automated snapshot.
	if _, err := root.Logical().Write("sys/audit/verify", nil); err != nil {
		return err
	}
	if resp, err := root.Logical().ReadRaw("sys/storage/raft/snapshot"); err != nil {
		return err
	} else {
		resp.Body.Close()
	}
	if _, err := root.Logical().Write("sys/storage/raft/snapshot-test", nil); err != nil {
		return err
	}
	if _, err := root.Logical().Write("sys/storage/raft/snapshot-auto/drill/daily", nil); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// The checkpoint key, so the bundles verify offline:
	//   vigil report verify -pubkey docs/sample-reports/checkpoint-key.pem docs/sample-reports/hipaa.zip
	key, err := root.Logical().Read("sys/audit/checkpoint-key")
	if err != nil {
		return err
	}
	pemKey, _ := key.Data["public_key_pem"].(string)
	if err := os.WriteFile(filepath.Join(out, "checkpoint-key.pem"), []byte(pemKey), 0o644); err != nil {
		return err
	}
	for _, kind := range []string{"hipaa", "nrb"} {
		// Dates are midnight in the report's zone: UTC for HIPAA, Nepal
		// Time (UTC+05:45) for NRB, whose period starts a day later: the
		// log begins on the first UTC day at 04:45 Nepal Time, and a
		// period it does not cover in full would read PARTIAL.
		from, to := start, end
		if kind == "nrb" {
			from = start.AddDate(0, 0, 1)
		}
		resp, err := root.Logical().ReadRawWithData("sys/reports/"+kind, map[string][]string{
			"from": {from.Format(time.DateOnly)}, "to": {to.Format(time.DateOnly)}, "format": {reports.FormatBundle}})
		if err != nil {
			return fmt.Errorf("%s bundle: %w", kind, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		p := filepath.Join(out, kind+".zip")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		// The bundle unpacked beside it, to read the files in place.
		files, err := reports.ReadBundle(p)
		if err != nil {
			return err
		}
		dir := filepath.Join(out, kind)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return err
			}
		}
		pub, err := audit.ParsePublicKey([]byte(pemKey))
		if err != nil {
			return err
		}
		c, err := reports.VerifyBundle(files, pub)
		if err != nil {
			return fmt.Errorf("%s: the bundle just generated does not verify: %w", kind, err)
		}
		fmt.Printf("vigil-demo: wrote %s (%d bytes, manifest sha256 %s) and %s/\n", p, len(b), c.ManifestSHA256, dir)
	}
	resp, err := root.Logical().ReadRaw("sys/compliance/checks")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return err
	}
	var pretty any
	_ = json.Unmarshal(body.Data, &pretty)
	b, _ := json.MarshalIndent(pretty, "", "  ")
	p := filepath.Join(out, "compliance-checks.json")
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("vigil-demo: wrote %s\n", p)
	return nil
}
