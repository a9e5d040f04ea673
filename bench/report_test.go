package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"--scenario":       "--scenario",
		"kv-read,kv-write": "kv-read,kv-write",
		"a b":              "'a b'",
		"it's":             `'it'\''s'`,
		"":                 "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// finish aggregates rounds: median throughput, merged latency, summed
// errors, CPU per 1k over all requests, and ratios per pair.
func TestReportFinishAggregates(t *testing.T) {
	mk := func(arm string, round int, rps float64, n int64, lat time.Duration, cpu float64) RunResult {
		h := NewLatency()
		for range n {
			h.Record(lat)
		}
		return RunResult{Scenario: "kv-read", Arm: arm, Round: round, Requests: n, OK: n, Throughput: rps,
			Latency: h.Summary(), hist: h, ServerCPUSeconds: f64(cpu)}
	}
	r := &Report{Baseline: "off", Runs: []RunResult{
		mk("off", 1, 1000, 100, time.Millisecond, 0.1),
		mk("file", 1, 800, 80, 2*time.Millisecond, 0.1),
		mk("off", 2, 900, 90, time.Millisecond, 0.1),
		mk("file", 2, 810, 20, 10*time.Millisecond, 0.1),
	}}
	r.Runs[3].Errors = map[string]int64{"503": 2}
	r.finish()
	if len(r.Summary) != 2 {
		t.Fatalf("summaries: %+v", r.Summary)
	}
	f := r.Summary[1]
	if f.Arm != "file" || f.Rounds != 2 || f.Requests != 100 || f.MedianThroughput != 805 || f.ErrorCount() != 2 {
		t.Errorf("file summary = %+v", f)
	}
	// 80 requests at 2 ms and 20 at 10 ms: p50 2 ms, p90 10 ms.
	if f.Latency.P50Ms < 2 || f.Latency.P50Ms > 2.01 || f.Latency.P90Ms < 10 || f.Latency.P90Ms > 10.01 {
		t.Errorf("merged latency = %+v", f.Latency)
	}
	if f.ServerCPUPer1k == nil || math.Abs(*f.ServerCPUPer1k-2) > 1e-9 { // 0.2 s / 100 requests * 1000
		t.Errorf("cpu per 1k = %v", f.ServerCPUPer1k)
	}
	if len(r.Comparisons) != 1 || len(r.Comparisons[0].Pairs) != 2 || math.Abs(float64(r.Comparisons[0].Pairs[1].ThroughputRatio)-0.9) > 1e-9 {
		t.Errorf("comparisons = %+v", r.Comparisons)
	}
	md := r.Markdown()
	for _, want := range []string{"| kv-read | file | 805 [800, 810] |", "2×503", "Ratios against `off`", "r1 0.80, r2 0.90"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
