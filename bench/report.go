package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of a benchmark: written as JSON (--out) and
// rendered as Markdown.
type Report struct {
	Tool          string         `json:"tool"`
	FormatVersion int            `json:"format_version"`
	RunID         string         `json:"run_id"`
	Started       time.Time      `json:"started"`
	Finished      time.Time      `json:"finished"`
	Command       []string       `json:"command,omitempty"`
	Settings      map[string]any `json:"settings"`
	Machine       Machine        `json:"machine"`
	Arms          []ArmInfo      `json:"arms"`
	// Baseline is the arm every other arm is compared with.
	Baseline          string         `json:"baseline"`
	ScenarioSummaries []ScenarioInfo `json:"scenarios"`
	Runs              []RunResult    `json:"runs"`
	Summary           []ArmSummary   `json:"summary"`
	Comparisons       []Comparison   `json:"comparisons,omitempty"`
	Skipped           []Skip         `json:"skipped,omitempty"`
	Notes             []string       `json:"notes,omitempty"`
}

// ScenarioInfo names and describes a scenario in the report.
type ScenarioInfo struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
}

// ArmSummary aggregates one scenario on one arm over its rounds:
// throughput per round and its median, latency percentiles of all
// rounds' requests together (the histograms merged), errors summed, CPU
// per 1k requests over all rounds, and the medians of the audit figures.
type ArmSummary struct {
	Scenario         string           `json:"scenario"`
	Arm              string           `json:"arm"`
	Rounds           int              `json:"rounds"`
	Throughputs      []float64        `json:"throughput_rps_by_round"`
	MedianThroughput float64          `json:"median_throughput_rps"`
	Latency          Summary          `json:"latency"`
	Requests         int64            `json:"requests"`
	Errors           map[string]int64 `json:"errors,omitempty"`
	ServerCPUPer1k   *float64         `json:"server_cpu_s_per_1k,omitempty"`
	ClientCPUPer1k   *float64         `json:"client_cpu_s_per_1k,omitempty"`

	EntriesPerSec     *float64 `json:"audit_entries_per_s,omitempty"`
	EntriesPerRequest *float64 `json:"audit_entries_per_request,omitempty"`
	BytesPerSec       *float64 `json:"audit_bytes_per_s,omitempty"`
	FsyncsPerSec      *float64 `json:"audit_fsyncs_per_s,omitempty"`
	FsyncMeanMs       *float64 `json:"audit_fsync_mean_ms,omitempty"`
	FsyncP99Ms        *float64 `json:"audit_fsync_p99_ms_approx,omitempty"`
	BatchMean         *float64 `json:"audit_group_commit_mean_lines,omitempty"`
	ShippedPerSec     *float64 `json:"ship_lines_per_s,omitempty"`
	LagAfter          *float64 `json:"ship_lag_after_max,omitempty"`
	DrainSeconds      *float64 `json:"ship_drain_s_max,omitempty"`
}

// ErrorCount sums the errors.
func (s ArmSummary) ErrorCount() int64 {
	var n int64
	for _, v := range s.Errors {
		n += v
	}
	return n
}

// finish computes the summaries and the pairwise comparisons.
func (r *Report) finish() {
	type key struct{ scen, arm string }
	var order []key
	groups := map[key][]RunResult{}
	for _, rr := range r.Runs {
		k := key{rr.Scenario, rr.Arm}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], rr)
	}
	r.Summary = nil
	for _, k := range order {
		runs := groups[k]
		s := ArmSummary{Scenario: k.scen, Arm: k.arm, Rounds: len(runs)}
		h := NewLatency()
		var srv, cli float64
		srvOK, cliOK := true, true
		var eps, epr, bps, fps, fmean, fp99, batch, lag, drainS, ship []float64
		for _, rr := range runs {
			s.Throughputs = append(s.Throughputs, rr.Throughput)
			s.Requests += rr.Requests
			if rr.hist != nil {
				h.Merge(rr.hist)
			}
			for st, n := range rr.Errors {
				if s.Errors == nil {
					s.Errors = map[string]int64{}
				}
				s.Errors[st] += n
			}
			if rr.ServerCPUSeconds != nil {
				srv += *rr.ServerCPUSeconds
			} else {
				srvOK = false
			}
			if rr.ClientCPUSeconds != nil {
				cli += *rr.ClientCPUSeconds
			} else {
				cliOK = false
			}
			if a := rr.Audit; a != nil {
				eps = appendIf(eps, a.EntriesPerSec)
				epr = appendIf(epr, a.EntriesPerRequest)
				bps = appendIf(bps, a.BytesPerSec)
				fps = appendIf(fps, a.FsyncsPerSec)
				fmean = appendIf(fmean, a.FsyncMeanMs)
				fp99 = appendIf(fp99, a.FsyncP99Ms)
				batch = appendIf(batch, a.BatchMean)
				drainS = appendIf(drainS, a.DrainSeconds)
				ship = appendIf(ship, a.ShippedPerSec)
				lag = appendIf(lag, a.LagEntriesAfter)
			}
		}
		s.MedianThroughput = median(s.Throughputs)
		s.Latency = h.Summary()
		if s.Requests > 0 {
			if srvOK {
				s.ServerCPUPer1k = f64(srv / float64(s.Requests) * 1000)
			}
			if cliOK {
				s.ClientCPUPer1k = f64(cli / float64(s.Requests) * 1000)
			}
		}
		s.EntriesPerSec, s.EntriesPerRequest, s.BytesPerSec = medPtr(eps), medPtr(epr), medPtr(bps)
		s.FsyncsPerSec, s.FsyncMeanMs, s.FsyncP99Ms, s.BatchMean = medPtr(fps), medPtr(fmean), medPtr(fp99), medPtr(batch)
		s.LagAfter, s.DrainSeconds, s.ShippedPerSec = maxPtr(lag), maxPtr(drainS), medPtr(ship)
		r.Summary = append(r.Summary, s)
	}
	var samples []Sample
	for _, rr := range r.Runs {
		samples = append(samples, Sample{Scenario: rr.Scenario, Arm: rr.Arm, Round: rr.Round, Throughput: rr.Throughput, P99Ms: rr.Latency.P99Ms})
	}
	r.Comparisons = Compare(samples, r.Baseline)
}

func appendIf(xs []float64, p *float64) []float64 {
	if p == nil {
		return xs
	}
	return append(xs, *p)
}

func medPtr(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	return f64(median(xs))
}

func maxPtr(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = math.Max(m, x)
	}
	return f64(m)
}

// WriteFiles writes the JSON report to jsonPath and the Markdown to
// mdPath (either may be empty), creating their folders.
func (r *Report) WriteFiles(jsonPath, mdPath string) error {
	if jsonPath != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("encode report: %w", err)
		}
		if err := writeFile(jsonPath, append(b, '\n')); err != nil {
			return err
		}
	}
	if mdPath != "" {
		if err := writeFile(mdPath, []byte(r.Markdown())); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# vigil bench — %s\n\n", r.Started.Format("2006-01-02 15:04 UTC"))
	if !r.Finished.IsZero() {
		w("Run `%s`, %s in all.\n\n", r.RunID, r.Finished.Sub(r.Started).Round(time.Second))
	}
	m := r.Machine
	w("**Machine:** %d × %s, %.1f GiB RAM, Linux %s, %s %s/%s; servers' data on %s %s.\n\n",
		m.CPUs, orDash(m.CPUModel), float64(m.MemoryBytes)/(1<<30), orDash(m.Kernel), m.GoVersion, m.GOOS, m.GOARCH,
		m.DataDir, m.DataDirFS)
	if m.LoadAvg != "" {
		w("Load average (1/5/15 min) at start: %s", m.LoadAvg)
		if m.LoadAvgEnd != "" {
			w(", at end: %s", m.LoadAvgEnd)
		}
		w(". The load generator runs on the same machine and competes with the servers for the same CPUs.\n\n")
	}
	w("**Settings:** %s\n\n", r.settingsLine())
	if len(r.Command) > 0 {
		q := make([]string, len(r.Command))
		for i, a := range r.Command {
			q[i] = shellQuote(a)
		}
		w("**Command:** `%s`\n\n", strings.Join(q, " "))
	}
	w("**Arms:**\n\n")
	for _, a := range r.Arms {
		line := fmt.Sprintf("- `%s`", a.Name)
		if a.Version != "" {
			line += " — version " + a.Version
		}
		if len(a.Devices) > 0 {
			line += "; audit devices: " + strings.Join(a.Devices, ", ")
		}
		if len(a.Streams) > 0 {
			line += "; streams: " + strings.Join(a.Streams, ", ")
		}
		if a.Skipped != "" {
			line += " — **skipped:** " + a.Skipped
		}
		w("%s\n", line)
	}
	w("\n")

	w("## Throughput and latency\n\n")
	w("Throughput is the median of the rounds (each round in brackets); latency percentiles are over every measured request of all rounds.\n\n")
	w("| scenario | arm | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | server CPU s / 1k req | client CPU s / 1k req |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Summary {
		rounds := make([]string, len(s.Throughputs))
		for i, t := range s.Throughputs {
			rounds[i] = fmt.Sprintf("%.0f", t)
		}
		w("| %s | %s | %.0f [%s] | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Scenario, s.Arm, s.MedianThroughput,
			strings.Join(rounds, ", "), fms(s.Latency.P50Ms), fms(s.Latency.P90Ms), fms(s.Latency.P99Ms), fms(s.Latency.P999Ms),
			fms(s.Latency.MaxMs), errorsCell(s.Errors), fptr(s.ServerCPUPer1k, 3), fptr(s.ClientCPUPer1k, 3))
	}
	w("\n")

	hasAudit := false
	for _, s := range r.Summary {
		hasAudit = hasAudit || s.EntriesPerSec != nil
	}
	if hasAudit {
		w("## Audit pipeline\n\n")
		w("From Vigil's Prometheus metrics before and after each measured run (medians of the rounds; the harness's own two metric reads are subtracted from the entry count). Fsync p99 is interpolated from histogram buckets.\n\n")
		w("| scenario | arm | entries/s | entries/req | MB/s | fsyncs/s | fsync mean ms | fsync p99 ms | lines per group commit | shipped lines/s | shipper lag after (entries) | drain s |\n")
		w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Summary {
			if s.EntriesPerSec == nil && s.FsyncsPerSec == nil {
				continue
			}
			mbps := (*float64)(nil)
			if s.BytesPerSec != nil {
				mbps = f64(*s.BytesPerSec / 1e6)
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Scenario, s.Arm, fptr(s.EntriesPerSec, 0),
				fptr(s.EntriesPerRequest, 2), fptr(mbps, 2), fptr(s.FsyncsPerSec, 0), fptr(s.FsyncMeanMs, 3), fptr(s.FsyncP99Ms, 2),
				fptr(s.BatchMean, 1), fptr(s.ShippedPerSec, 0), fptr(s.LagAfter, 0), fptr(s.DrainSeconds, 1))
		}
		w("\n")
	}

	if len(r.Comparisons) > 0 {
		w("## Ratios against `%s`, pair by pair\n\n", r.Baseline)
		w("Each round's run of an arm divided by the baseline's run in the same round (A/B/A/B). Throughput ratio above 1: faster than the baseline; p99 ratio below 1: lower latency than the baseline.\n\n")
		w("| scenario | arm | throughput ratio by round | median | p99 ratio by round | median |\n")
		w("|---|---|---|---:|---|---:|\n")
		for _, c := range r.Comparisons {
			var tr, pr []string
			for _, p := range c.Pairs {
				tr = append(tr, fmt.Sprintf("r%d %s", p.Round, fratio(p.ThroughputRatio)))
				pr = append(pr, fmt.Sprintf("r%d %s", p.Round, fratio(p.P99Ratio)))
			}
			w("| %s | %s | %s | **%s** | %s | %s |\n", c.Scenario, c.Arm, strings.Join(tr, ", "), fratio(c.MedianThroughputRatio),
				strings.Join(pr, ", "), fratio(c.MedianP99Ratio))
		}
		w("\n")
	}

	if rate, ok := r.Settings["rate"].(float64); ok && rate > 0 {
		w("## Open loop\n\n")
		w("Target %g req/s. Latency is measured from each request's due time, so queueing behind a slow server counts. A late start is a request sent more than 1 ms after its due time: every connection was busy, or the load generator itself was short of CPU.\n\n", rate)
		w("| scenario | arm | round | achieved req/s | late starts |\n|---|---|---:|---:|---:|\n")
		for _, rr := range r.Runs {
			w("| %s | %s | %d | %.0f | %d |\n", rr.Scenario, rr.Arm, rr.Round, rr.Throughput, rr.Late)
		}
		w("\n")
	}
	errRuns := 0
	for _, rr := range r.Runs {
		if len(rr.Errors) > 0 {
			errRuns++
		}
	}
	if errRuns > 0 {
		w("## Errors\n\n")
		for _, rr := range r.Runs {
			keys := make([]string, 0, len(rr.Errors))
			for k := range rr.Errors {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				w("- %s on %s, round %d: %d × %s — %s\n", rr.Scenario, rr.Arm, rr.Round, rr.Errors[k], k, rr.ErrorSamples[k])
			}
		}
		w("\n")
	}
	if len(r.Skipped) > 0 {
		w("## Skipped\n\n")
		for _, s := range r.Skipped {
			what := s.Arm
			if s.Scenario != "" {
				what = s.Scenario + " on " + s.Arm
			}
			w("- %s: %s\n", what, s.Reason)
		}
		w("\n")
	}
	if len(r.ScenarioSummaries) > 0 {
		w("## Scenarios\n\n")
		for _, s := range r.ScenarioSummaries {
			w("- `%s`: %s\n", s.Name, s.Summary)
		}
		w("\n")
	}
	if len(r.Notes) > 0 {
		w("## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
		w("\n")
	}
	return b.String()
}

func (r *Report) settingsLine() string {
	s := r.Settings
	var parts []string
	if v, ok := s["load_model"]; ok {
		parts = append(parts, fmt.Sprint(v))
	}
	parts = append(parts, fmt.Sprintf("%v connections", s["connections"]))
	if v, ok := s["requests_per_run"]; ok {
		parts = append(parts, fmt.Sprintf("%v requests per run", v))
	} else {
		parts = append(parts, fmt.Sprintf("%v measured per run", s["duration_per_run"]))
	}
	parts = append(parts, fmt.Sprintf("%v warm-up (excluded)", s["warmup"]))
	parts = append(parts, fmt.Sprintf("%v round(s), arms alternating A/B/A/B", s["rounds"]))
	parts = append(parts, "HTTP/1.1 keep-alive")
	return strings.Join(parts, ", ")
}

// shellQuote quotes a for a POSIX shell when it needs it.
func shellQuote(a string) string {
	if a != "" && strings.IndexFunc(a, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func fms(v float64) string {
	switch {
	case v == 0:
		return "—"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func fptr(p *float64, prec int) string {
	if p == nil || math.IsNaN(*p) {
		return "—"
	}
	return strconv.FormatFloat(*p, 'f', prec, 64)
}

func fratio(f Float) string {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return "n/a"
	}
	return strconv.FormatFloat(float64(f), 'f', 2, 64)
}

func errorsCell(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d×%s", m[k], k)
	}
	return strings.Join(parts, ", ")
}
