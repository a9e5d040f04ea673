package bench

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is the result of one request.
type Outcome struct {
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Err is the transport error (Status 0) or, for a status outside
	// 2xx, the server's message.
	Err error
}

// OK reports a 2xx answer.
func (o Outcome) OK() bool { return o.Status >= 200 && o.Status < 300 }

// Op sends one request on behalf of worker w and waits for its answer. It
// is called from every worker at once and must be safe for that.
type Op func(ctx context.Context, w *Worker) Outcome

// Worker is one connection's request loop. Rand is the worker's own
// deterministic random source (seeded from the phase seed and the worker
// ID); N counts the requests it has started in the phase.
type Worker struct {
	ID   int
	Rand *rand.Rand
	N    int64

	lat    *Latency
	ok     int64
	errs   map[string]int64
	sample map[string]string
	late   int64
}

// Phase describes one load phase (a warm-up or a measured run).
type Phase struct {
	Name        string
	Connections int           // workers (closed loop) or maximum in flight (open loop); > 0
	Duration    time.Duration // stop starting requests after this long (0: use Requests)
	Requests    int64         // stop after this many requests (0: use Duration)
	Rate        float64       // > 0: open loop at this many requests per second
	Seed        uint64
	Clock       Clock // nil: the wall clock

	// Progress, if set, is called every ProgressEvery (default 1 s) from
	// a separate goroutine while the phase runs.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is a live view of a running phase.
type Progress struct {
	Phase    string
	Elapsed  time.Duration
	Done     int64   // requests answered (or failed)
	Errors   int64   // of which errors
	Rate     float64 // answered per second over the last interval
	MeanMs   float64 // mean latency since the phase began
	Duration time.Duration
	Requests int64
}

// PhaseResult is what a phase measured.
type PhaseResult struct {
	// Requests counts every request that completed: answered with any
	// status, or failed in transport.
	Requests int64
	OK       int64
	// Errors counts requests by status ("503") or "transport"; Samples
	// keeps the first message seen for each.
	Errors  map[string]int64
	Samples map[string]string
	// Elapsed runs from the phase start until the last answer.
	Elapsed time.Duration
	// Latency holds every completed request (errors included). In open
	// loop it is measured from the time each request was due.
	Latency *Latency
	// Late counts open-loop requests sent more than 1 ms after they were
	// due because every connection was busy (the server fell behind).
	Late int64
}

// ErrorCount is the number of requests that did not get a 2xx answer.
func (r PhaseResult) ErrorCount() int64 { return r.Requests - r.OK }

// Throughput is completed requests per second of Elapsed.
func (r PhaseResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// lateThreshold is how far behind schedule an open-loop request must be
// sent to count as late.
const lateThreshold = time.Millisecond

// RunPhase runs op under the phase's load model and returns what it
// measured. Requests already sent when the duration ends are waited for
// and counted. Cancelling ctx stops the phase early; requests in flight
// are then cancelled and count as transport errors.
func RunPhase(ctx context.Context, p Phase, op Op) PhaseResult {
	clk := p.Clock
	if clk == nil {
		clk = wallClock{}
	}
	conns := max(p.Connections, 1)
	done := ctx.Done()
	start := clk.Now()
	end := start.Add(p.Duration)
	var next atomic.Int64
	var live struct {
		done, errs, latUs atomic.Int64
	}
	// claim returns the next request index and, in open loop, when it is
	// due; ok is false when the phase has no more requests to start.
	sched := Schedule{Start: start, Rate: p.Rate}
	claim := func() (k int64, due time.Time, ok bool) {
		if ctx.Err() != nil {
			return 0, time.Time{}, false
		}
		k = next.Add(1) - 1
		if p.Requests > 0 && k >= p.Requests {
			return k, time.Time{}, false
		}
		if p.Rate > 0 {
			due = sched.At(k)
			if p.Duration > 0 && !due.Before(end) {
				return k, due, false
			}
			return k, due, true
		}
		if p.Duration > 0 && !clk.Now().Before(end) {
			return k, time.Time{}, false
		}
		return k, time.Time{}, true
	}

	workers := make([]*Worker, conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &Worker{ID: i, Rand: rand.New(rand.NewPCG(p.Seed, uint64(i)+1)), lat: NewLatency(),
			errs: map[string]int64{}, sample: map[string]string{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, due, ok := claim()
				if !ok {
					return
				}
				var t0 time.Time
				if p.Rate > 0 {
					clk.SleepUntil(due, done)
					if ctx.Err() != nil {
						return
					}
					t0 = clk.Now()
					if t0.Sub(due) > lateThreshold {
						w.late++
					}
					t0 = due // charge the queueing delay to the request
				} else {
					t0 = clk.Now()
				}
				w.N++
				out := op(ctx, w)
				lat := clk.Now().Sub(t0)
				w.lat.Record(lat)
				live.latUs.Add(int64(lat / time.Microsecond))
				live.done.Add(1)
				if out.OK() {
					w.ok++
					continue
				}
				live.errs.Add(1)
				key := "transport"
				if out.Status != 0 {
					key = strconv.Itoa(out.Status)
				}
				w.errs[key]++
				if _, seen := w.sample[key]; !seen && out.Err != nil {
					w.sample[key] = truncate(out.Err.Error(), 300)
				}
			}
		}()
	}

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	if p.Progress != nil {
		every := p.ProgressEvery
		if every <= 0 {
			every = time.Second
		}
		go func() {
			defer close(progressDone)
			t := time.NewTicker(every)
			defer t.Stop()
			var last int64
			lastT := start
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
				}
				now := clk.Now()
				d := live.done.Load()
				pr := Progress{Phase: p.Name, Elapsed: now.Sub(start), Done: d, Errors: live.errs.Load(),
					Duration: p.Duration, Requests: p.Requests}
				if dt := now.Sub(lastT).Seconds(); dt > 0 {
					pr.Rate = float64(d-last) / dt
				}
				if d > 0 {
					pr.MeanMs = float64(live.latUs.Load()) / float64(d) / 1000
				}
				last, lastT = d, now
				p.Progress(pr)
			}
		}()
	} else {
		close(progressDone)
	}
	wg.Wait()
	elapsed := clk.Now().Sub(start)
	close(stopProgress)
	<-progressDone

	res := PhaseResult{Errors: map[string]int64{}, Samples: map[string]string{}, Elapsed: elapsed, Latency: NewLatency()}
	for _, w := range workers {
		res.Latency.Merge(w.lat)
		res.OK += w.ok
		res.Late += w.late
		for k, v := range w.errs {
			res.Errors[k] += v
		}
		for k, v := range w.sample {
			if _, ok := res.Samples[k]; !ok {
				res.Samples[k] = v
			}
		}
	}
	res.Requests = res.Latency.Count()
	return res
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
