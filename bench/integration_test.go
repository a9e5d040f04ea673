package bench_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/bench"
	"github.com/vigilsec/vigil/core/testsvc"
)

// vigilBinary returns the binary under test: $VIGIL_BIN (make test builds
// it), else a fresh `go build`.
func vigilBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("VIGIL_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	out := filepath.Join(t.TempDir(), "vigil")
	cmd := exec.Command("go", "build", "-o", out, "github.com/vigilsec/vigil/cmd/vigil")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// auditEntry is the part of an audit line the test reads.
type auditEntry struct {
	Type    string `json:"type"`
	Request struct {
		ID      string              `json:"id"`
		Headers map[string][]string `json:"headers"`
	} `json:"request"`
}

// taggedEntries reads every segment of the audit log at path (rotated
// ones included) and returns, per X-Vigil-Bench-Run value, the entries
// carrying it.
func taggedEntries(t *testing.T, path string) map[string][]auditEntry {
	t.Helper()
	segs, err := chain.ListSegments(path)
	if err != nil {
		t.Fatalf("list audit segments of %s: %v", path, err)
	}
	out := map[string][]auditEntry{}
	for _, s := range segs {
		rc, err := chain.FileSource(s.Path).Open()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var e auditEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil || (e.Type != "request" && e.Type != "response") {
				continue
			}
			if v := e.Request.Headers["x-vigil-bench-run"]; len(v) == 1 {
				out[v[0]] = append(out[v[0]], e)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("read %s: %v", s.Path, err)
		}
		rc.Close()
	}
	return out
}

// TestHarnessAgainstVigil runs every scenario for about 2 s against a
// Vigil server the harness starts with the file audit device, and checks
// what the harness reports against the audit log itself: every measured
// request succeeded and left exactly one request and one response entry
// (found by the X-Vigil-Bench-Run tag the harness sends and the server
// records), no more and no fewer.
func TestHarnessAgainstVigil(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads it for ~30 s")
	}
	// db-creds needs PostgreSQL; without it the other scenarios still run
	// and the db-creds subtest skips, or fails under VIGIL_REQUIRE_SERVICES=1.
	pg, _ := testsvc.Lookup("VIGIL_TEST_PG_URL")
	scenarios := slices.Clone(bench.ScenarioOrder)
	if pg == "" {
		scenarios = slices.DeleteFunc(scenarios, func(s string) bool { return s == "db-creds" })
	}
	dir := t.TempDir()
	s := bench.Settings{
		Scenarios:   scenarios,
		Duration:    2 * time.Second,
		Warmup:      300 * time.Millisecond,
		Connections: 8,
		Rounds:      1,
		Target:      "vigil",
		Audit:       []string{bench.AuditFile},
		VigilBin:    vigilBinary(t),
		Dir:         dir,
		Keep:        true, // the test reads the audit log after the run
		AuditTag:    true,
		PGURL:       pg,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, s)
	if err != nil {
		t.Fatalf("bench.Run: %v", err)
	}
	if len(rep.Arms) != 1 || rep.Arms[0].Skipped != "" {
		t.Fatalf("arm did not run: %+v", rep.Arms)
	}
	for _, sk := range rep.Skipped {
		t.Errorf("%s on %s skipped: %s", sk.Scenario, sk.Arm, sk.Reason)
	}
	logPath := rep.Arms[0].AuditLog
	if logPath == "" {
		t.Fatal("the report names no audit log")
	}
	byTag := taggedEntries(t, logPath)

	for _, name := range bench.ScenarioOrder {
		t.Run(name, func(t *testing.T) {
			if name == "db-creds" && pg == "" {
				testsvc.Env(t, "VIGIL_TEST_PG_URL")
			}
			var runs []bench.RunResult
			for _, rr := range rep.Runs {
				if rr.Scenario == name {
					runs = append(runs, rr)
				}
			}
			if len(runs) != 1 {
				t.Fatalf("want 1 measured run, got %d", len(runs))
			}
			rr := runs[0]
			if rr.Requests <= 0 || rr.Throughput <= 0 {
				t.Fatalf("no throughput: %d requests, %.1f req/s", rr.Requests, rr.Throughput)
			}
			if rr.OK != rr.Requests || len(rr.Errors) > 0 {
				t.Fatalf("unexpected errors: %d of %d ok, errors %v, samples %v", rr.OK, rr.Requests, rr.Errors, rr.ErrorSamples)
			}
			if rr.Latency.Count != rr.Requests || rr.Latency.P50Ms <= 0 || rr.Latency.P50Ms > rr.Latency.P99Ms || rr.Latency.P99Ms > rr.Latency.MaxMs {
				t.Fatalf("latency summary inconsistent with %d requests: %+v", rr.Requests, rr.Latency)
			}
			if rr.ServerCPUSeconds == nil || *rr.ServerCPUSeconds <= 0 {
				t.Errorf("server CPU not measured: %v", rr.ServerCPUSeconds)
			}

			// The audit log: exactly two entries per measured request.
			entries := byTag[rr.Tag]
			if got, want := int64(len(entries)), 2*rr.Requests; got != want {
				t.Fatalf("audit log holds %d entries tagged %q, want exactly 2 per request = %d", got, rr.Tag, want)
			}
			kinds := map[string]map[string]int{}
			for _, e := range entries {
				if kinds[e.Request.ID] == nil {
					kinds[e.Request.ID] = map[string]int{}
				}
				kinds[e.Request.ID][e.Type]++
			}
			if int64(len(kinds)) != rr.Requests {
				t.Fatalf("audit log: %d distinct request ids for %d requests", len(kinds), rr.Requests)
			}
			for id, k := range kinds {
				if k["request"] != 1 || k["response"] != 1 {
					t.Fatalf("request %s: %d request and %d response entries, want 1 and 1", id, k["request"], k["response"])
				}
			}
			// The warm-up was tagged apart and is not part of the count.
			if rr.WarmupRequests > 0 {
				if got := int64(len(byTag[rr.Tag[:len(rr.Tag)-len("measure")]+"warmup"])); got != 2*rr.WarmupRequests {
					t.Errorf("warm-up: %d audit entries for %d requests", got, rr.WarmupRequests)
				}
			}
			// The harness's own reading of the audit metrics agrees.
			if rr.Audit == nil || rr.Audit.Entries == nil {
				t.Fatalf("no audit metrics delta (metrics error: %q)", rr.MetricsError)
			}
			if got := *rr.Audit.Entries; got != float64(2*rr.Requests) {
				t.Errorf("audit metrics: %.0f entries recorded during the run, want %d", got, 2*rr.Requests)
			}
			if rr.Audit.Fsyncs == nil || *rr.Audit.Fsyncs <= 0 {
				t.Errorf("audit metrics: no fsync during the run: %v", rr.Audit.Fsyncs)
			}
		})
	}

	// The report renders and encodes.
	if md := rep.Markdown(); len(md) == 0 {
		t.Error("empty Markdown report")
	}
	out := filepath.Join(dir, "r.json")
	if err := rep.WriteFiles(out, filepath.Join(dir, "r.md")); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("report JSON does not decode: %v", err)
	}
}
