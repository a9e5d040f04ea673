package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// RunResult is one measured run: one scenario on one arm in one round.
type RunResult struct {
	Scenario string `json:"scenario"`
	Arm      string `json:"arm"`
	Round    int    `json:"round"`
	// Tag is the X-Vigil-Bench-Run value every measured request carried.
	Tag string `json:"tag"`

	WarmupRequests int64             `json:"warmup_requests"`
	Requests       int64             `json:"requests"`
	OK             int64             `json:"ok"`
	Errors         map[string]int64  `json:"errors,omitempty"`
	ErrorSamples   map[string]string `json:"error_samples,omitempty"`
	Seconds        float64           `json:"seconds"`
	Throughput     float64           `json:"throughput_rps"`
	Latency        Summary           `json:"latency"`
	Late           int64             `json:"late_starts,omitempty"` // open loop only

	ServerCPUSeconds *float64 `json:"server_cpu_s,omitempty"`
	ServerCPUPer1k   *float64 `json:"server_cpu_s_per_1k,omitempty"`
	ServerRSSMiB     *float64 `json:"server_rss_mib,omitempty"`
	ClientCPUSeconds *float64 `json:"client_cpu_s,omitempty"`
	ClientCPUPer1k   *float64 `json:"client_cpu_s_per_1k,omitempty"`

	Audit        *AuditStats `json:"audit,omitempty"`
	MetricsError string      `json:"metrics_error,omitempty"`
	// Streams is the audit streams' status after the run (and the drain).
	Streams []StreamState `json:"streams_after,omitempty"`

	hist *Latency
}

// Skip records a scenario or arm that did not run.
type Skip struct {
	Scenario string `json:"scenario,omitempty"`
	Arm      string `json:"arm,omitempty"`
	Reason   string `json:"reason"`
	// Failed is true for failures (setup errors), false for skips.
	Failed bool `json:"failed,omitempty"`
}

// arm is a target plus its load client.
type arm struct {
	name    string
	target  Target
	load    *http.Client
	skipped string
}

func (a *arm) api(tag string) *API {
	return &API{Base: a.target.URL(), Token: a.target.Token(), Tag: tag,
		HTTP: &http.Client{Transport: a.load.Transport, Timeout: 10 * time.Minute}}
}

// Run runs the benchmark described by s and returns its report. A report
// is returned even with an error when some runs completed (an interrupt,
// a failed arm), so that partial results can still be written.
func Run(ctx context.Context, s Settings) (*Report, error) {
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, err
	}
	scens, err := LookupScenarios(s.Scenarios)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	runID := randomHex(3)
	rep := &Report{Tool: "vigil bench", FormatVersion: 1, RunID: runID, Started: time.Now().UTC(),
		Command: s.Command, Machine: MachineFacts(s.Dir), Notes: append([]string(nil), s.Notes...)}
	for _, sc := range scens {
		rep.ScenarioSummaries = append(rep.ScenarioSummaries, ScenarioInfo{Name: sc.Name, Summary: sc.Summary})
	}

	// Build the arms: the Vigil servers (one per audit mode) or the
	// external server, then the peer.
	var arms []*arm
	newArm := func(name string, t Target) {
		arms = append(arms, &arm{name: name, target: t,
			load: &http.Client{Transport: newTransport(s.Connections, s.Insecure), Timeout: time.Minute}})
	}
	if s.Addr != "" {
		newArm("external", &ExternalTarget{Addr: s.Addr, AdminTok: s.Token, Insecure: s.Insecure})
	} else {
		for _, mode := range s.Audit {
			t := &VigilTarget{Bin: s.VigilBin, Audit: mode, Dir: s.Dir, Keep: s.Keep, AuditTag: s.AuditTag,
				Kafka: s.KafkaBrokers, ClickHouse: s.ClickHouseAddr, RunID: runID}
			newArm(t.ArmName(), t)
		}
	}
	if s.PeerBin != "" {
		t := &PeerTarget{Bin: s.PeerBin, Kind: s.PeerKind, Dir: s.Dir, Keep: s.Keep, AuditTag: s.AuditTag}
		newArm(t.ArmName(), t)
	}
	if s.Rounds <= 0 {
		s.Rounds = 1
		if len(arms) > 1 {
			s.Rounds = 3
		}
	}
	rep.Settings = s.view()

	// Cleanup and stop use their own context so that an interrupt still
	// removes what the harness created.
	bg := context.WithoutCancel(ctx)
	defer func() {
		for _, a := range arms {
			sctx, cancel := context.WithTimeout(bg, time.Minute)
			if err := a.target.Stop(sctx); err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: stop: %v", a.name, err))
			}
			cancel()
			a.load.CloseIdleConnections()
		}
		rep.Finished = time.Now().UTC()
		rep.Machine.LoadAvgEnd = loadAvg()
	}()

	pr := newProgressPrinter(s.Progress)
	var failed []string
	for _, a := range arms {
		pr.note("starting %s", a.name)
		err := a.target.Start(ctx)
		info := a.target.Info()
		if reason, ok := IsSkip(err); ok {
			a.skipped = reason
			info.Skipped = reason
			rep.Skipped = append(rep.Skipped, Skip{Arm: a.name, Reason: reason})
			pr.note("skipping %s: %s", a.name, reason)
		} else if err != nil {
			// One arm failing to start (a bad stream config, a peer
			// binary that will not run) does not stop the others; the
			// run still fails at the end.
			a.skipped = "failed to start: " + err.Error()
			info.Skipped = a.skipped
			rep.Skipped = append(rep.Skipped, Skip{Arm: a.name, Reason: a.skipped, Failed: true})
			failed = append(failed, "start "+a.name)
			pr.note("%s failed to start: %v", a.name, err)
		}
		rep.Arms = append(rep.Arms, info)
	}
	var live []*arm
	for _, a := range arms {
		if a.skipped == "" {
			live = append(live, a)
		}
	}
	// The baseline is the peer when it runs, else the first arm that runs.
	if len(live) > 0 {
		rep.Baseline = live[0].name
		if last := live[len(live)-1]; s.PeerBin != "" && last == arms[len(arms)-1] {
			rep.Baseline = last.name
		}
	}
	if len(live) == 0 {
		rep.finish()
		var why []string
		for _, sk := range rep.Skipped {
			why = append(why, sk.Arm+": "+sk.Reason)
		}
		return rep, fmt.Errorf("no arm could start: %s", strings.Join(why, "; "))
	}

	for _, sc := range scens {
		if ctx.Err() != nil {
			break
		}
		plans := map[*arm]*Plan{}
		for _, a := range live {
			pr.note("%s: setting up on %s", sc.Name, a.name)
			env := &Env{API: a.api(runID + "/setup"), Prefix: "vbench-" + runID, Connections: s.Connections, PGURL: s.PGURL}
			plan, err := sc.Setup(ctx, env)
			if reason, ok := IsSkip(err); ok {
				rep.Skipped = append(rep.Skipped, Skip{Scenario: sc.Name, Arm: a.name, Reason: reason})
				pr.note("%s on %s skipped: %s", sc.Name, a.name, reason)
				continue
			}
			if err != nil {
				rep.Skipped = append(rep.Skipped, Skip{Scenario: sc.Name, Arm: a.name, Reason: "setup failed: " + err.Error(), Failed: true})
				failed = append(failed, sc.Name+" on "+a.name)
				pr.note("%s on %s: setup failed: %v", sc.Name, a.name, err)
				continue
			}
			plans[a] = plan
		}
		for round := 1; round <= s.Rounds && ctx.Err() == nil; round++ {
			for _, a := range live {
				plan := plans[a]
				if plan == nil || ctx.Err() != nil {
					continue
				}
				rr := measure(ctx, s, runID, sc.Name, a, plan, round, pr)
				rep.Runs = append(rep.Runs, rr)
			}
		}
		for _, a := range live {
			plan := plans[a]
			if plan == nil || plan.Cleanup == nil {
				continue
			}
			pr.note("%s: cleaning up on %s", sc.Name, a.name)
			cctx, cancel := context.WithTimeout(bg, 10*time.Minute)
			if err := plan.Cleanup(cctx, a.api(runID+"/cleanup")); err != nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s on %s: cleanup: %v", sc.Name, a.name, err))
			}
			cancel()
		}
	}
	pr.done()
	rep.finish()
	if err := ctx.Err(); err != nil {
		rep.Notes = append(rep.Notes, "interrupted: the results are partial")
		return rep, err
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("failed: %s", strings.Join(failed, "; "))
	}
	return rep, nil
}

// measure runs warm-up and one measured run of plan on arm.
func measure(ctx context.Context, s Settings, runID, scen string, a *arm, plan *Plan, round int, pr *progressPrinter) RunResult {
	tag := fmt.Sprintf("%s/%s/%s/r%d", runID, scen, armSlug(a.name), round)
	label := fmt.Sprintf("%s | %s | round %d/%d", scen, a.name, round, s.Rounds)
	rr := RunResult{Scenario: scen, Arm: a.name, Round: round, Tag: tag + "/measure"}
	seed := s.Seed*1_000_003 + uint64(round)*7919 + uint64(len(scen))
	if s.Warmup > 0 {
		w := RunPhase(ctx, Phase{Name: "warm-up", Connections: s.Connections, Duration: s.Warmup, Rate: s.Rate, Seed: seed ^ 0xabc,
			Progress: pr.phase(label, "warm-up")}, loadOp(a.load, a.target.URL(), a.target.Token(), tag+"/warmup", plan.Next))
		rr.WarmupRequests = w.Requests
	}
	metricsAPI := a.api(runID + "/metrics")
	var before Metrics
	if a.target.VigilMetrics() {
		m, err := FetchMetrics(ctx, metricsAPI)
		if err != nil {
			rr.MetricsError = err.Error()
		} else {
			before = m
		}
	}
	pid := a.target.PID()
	srvCPU0, srvErr := procCPU(pid)
	cliCPU0, cliErr := ProcCPU(0)

	res := RunPhase(ctx, Phase{Name: "measure", Connections: s.Connections, Duration: s.Duration, Requests: s.Requests,
		Rate: s.Rate, Seed: seed, Progress: pr.phase(label, "measure")},
		loadOp(a.load, a.target.URL(), a.target.Token(), rr.Tag, plan.Next))

	srvCPU1, srvErr1 := procCPU(pid)
	cliCPU1, cliErr1 := ProcCPU(0)
	rr.Requests, rr.OK, rr.Late = res.Requests, res.OK, res.Late
	if len(res.Errors) > 0 {
		rr.Errors, rr.ErrorSamples = res.Errors, res.Samples
	}
	rr.Seconds = res.Elapsed.Seconds()
	rr.Throughput = res.Throughput()
	rr.Latency = res.Latency.Summary()
	rr.hist = res.Latency
	per1k := func(d time.Duration) *float64 {
		if rr.Requests == 0 {
			return nil
		}
		return f64(d.Seconds() / float64(rr.Requests) * 1000)
	}
	if pid > 0 && srvErr == nil && srvErr1 == nil {
		rr.ServerCPUSeconds, rr.ServerCPUPer1k = f64((srvCPU1 - srvCPU0).Seconds()), per1k(srvCPU1-srvCPU0)
		if rss, _, err := ProcRSS(pid); err == nil {
			rr.ServerRSSMiB = f64(float64(rss) / (1 << 20))
		}
	}
	if cliErr == nil && cliErr1 == nil {
		rr.ClientCPUSeconds, rr.ClientCPUPer1k = f64((cliCPU1 - cliCPU0).Seconds()), per1k(cliCPU1-cliCPU0)
	}
	if before != nil {
		after, err := FetchMetrics(ctx, metricsAPI)
		if err != nil {
			rr.MetricsError = err.Error()
		} else {
			rr.Audit = AuditDelta(before, after, rr.Requests, rr.Seconds)
			if len(a.target.Streams()) > 0 {
				drain(ctx, metricsAPI, after, s.DrainTimeout, rr.Audit)
				if st, err := streamStatus(ctx, metricsAPI); err == nil {
					rr.Streams = st
				}
			}
		}
	}
	pr.result(label, rr)
	return rr
}

// procCPU is ProcCPU for a known server pid (0: not available).
func procCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no pid")
	}
	return ProcCPU(pid)
}

// drain waits until every stream's acknowledged cursor has reached the
// head of the local log as it was when the run ended (after), so that one
// arm's backlog is not shipped while the next arm is measured. (Waiting
// for a lag of zero would never end: each scrape writes audit entries of
// its own.)
func drain(ctx context.Context, api *API, after Metrics, timeout time.Duration, st *AuditStats) {
	target := map[string]float64{}
	for _, s := range after {
		if s.Name == mStreamHead {
			target[labelKey(s.Labels)] = s.Value
		}
	}
	if len(target) == 0 {
		return
	}
	start := time.Now()
	for {
		m, err := FetchMetrics(ctx, api)
		if err != nil {
			return
		}
		done := true
		for _, s := range m {
			if s.Name == mStreamCursor {
				if h, ok := target[labelKey(s.Labels)]; ok && s.Value < h {
					done = false
				}
			}
		}
		if done {
			st.DrainSeconds = f64(time.Since(start).Seconds())
			return
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			st.DrainSeconds, st.DrainTimeout = f64(time.Since(start).Seconds()), true
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// armSlug makes an arm name usable in a tag ("vigil audit=file+kafka" →
// "vigil-audit-file-kafka").
func armSlug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}
