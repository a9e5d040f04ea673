package bench

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestScheduleAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Schedule{Start: t0, Rate: 1000}
	for _, c := range []struct {
		k    int64
		want time.Duration
	}{{0, 0}, {1, time.Millisecond}, {999, 999 * time.Millisecond}, {1000, time.Second}, {3_600_000, time.Hour}} {
		if got := s.At(c.k).Sub(t0); got != c.want {
			t.Errorf("At(%d) = start+%v, want start+%v", c.k, got, c.want)
		}
	}
	// A rate whose interval is not a whole number of nanoseconds does not
	// drift: due times are computed from k, not summed.
	s3 := Schedule{Start: t0, Rate: 3}
	if got := s3.At(3 * 86400).Sub(t0); got != 24*time.Hour {
		t.Errorf("rate 3: At(259200) = start+%v, want start+24h", got)
	}
	if got := s3.At(1).Sub(t0); got != 333333333*time.Nanosecond {
		t.Errorf("rate 3: At(1) = start+%v", got)
	}
	for _, c := range []struct {
		rate float64
		d    time.Duration
		want int64
	}{{1000, time.Second, 1000}, {3, time.Second, 3}, {3, time.Second + time.Nanosecond, 4}, {0.5, 10 * time.Second, 5}, {1000, 0, 0}} {
		if got := (Schedule{Start: t0, Rate: c.rate}).Count(c.d); got != c.want {
			t.Errorf("rate %v: Count(%v) = %d, want %d", c.rate, c.d, got, c.want)
		}
	}
}

// fakeClock: Now is settable; SleepUntil jumps forward.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(t time.Time, _ <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// With one connection, requests due every 1 ms and a server taking 2 ms,
// the open loop charges each request the queueing it suffered (latency
// from its due time), while the closed loop sees a flat 2 ms.
func TestOpenLoopChargesQueueing(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	slow := func(context.Context, *Worker) Outcome {
		clk.Advance(2 * time.Millisecond)
		return Outcome{Status: 200}
	}
	open := RunPhase(context.Background(), Phase{Connections: 1, Requests: 5, Rate: 1000, Clock: clk}, slow)
	// Request k is due at k ms and starts at 2k ms: latency (k+2) ms.
	if open.Requests != 5 || open.OK != 5 {
		t.Fatalf("open loop: %d requests, %d ok", open.Requests, open.OK)
	}
	s := open.Latency.Summary()
	if s.MaxMs < 6 || s.MaxMs > 6.01 || s.P50Ms < 4 || s.P50Ms > 4.01 || s.MeanMs < 3.99 || s.MeanMs > 4.01 {
		t.Errorf("open loop latencies: %+v, want 2,3,4,5,6 ms", s)
	}
	if open.Late != 3 { // k=2,3,4 start 2,3,4 ms after their due time (> 1 ms)
		t.Errorf("late starts = %d, want 3", open.Late)
	}
	if open.Elapsed != 10*time.Millisecond {
		t.Errorf("elapsed = %v, want 10ms", open.Elapsed)
	}

	closed := RunPhase(context.Background(), Phase{Connections: 1, Requests: 5, Clock: clk}, slow)
	cs := closed.Latency.Summary()
	if cs.P50Ms < 2 || cs.MaxMs > 2.01 || closed.Late != 0 {
		t.Errorf("closed loop latencies: %+v, want 2 ms each", cs)
	}
}

// A duration-bounded open loop starts exactly the requests due before the
// end, however fast the server is.
func TestOpenLoopDurationBoundary(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	fast := func(context.Context, *Worker) Outcome { return Outcome{Status: 204} }
	r := RunPhase(context.Background(), Phase{Connections: 4, Duration: 10 * time.Millisecond, Rate: 1000, Clock: clk}, fast)
	if r.Requests != 10 || r.OK != 10 {
		t.Fatalf("requests = %d (ok %d), want the 10 due in [0, 10ms)", r.Requests, r.OK)
	}
}

func TestRunPhaseCountsErrorsByStatus(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	op := func(_ context.Context, w *Worker) Outcome {
		clk.Advance(time.Millisecond)
		switch w.N % 4 {
		case 1:
			return Outcome{Status: 503, Err: errString("sealed")}
		case 2:
			return Outcome{Err: errString("connection reset")}
		}
		return Outcome{Status: 200}
	}
	r := RunPhase(context.Background(), Phase{Connections: 1, Requests: 8, Clock: clk}, op)
	if r.Requests != 8 || r.OK != 4 || r.ErrorCount() != 4 {
		t.Fatalf("requests %d ok %d errors %d", r.Requests, r.OK, r.ErrorCount())
	}
	if r.Errors["503"] != 2 || r.Errors["transport"] != 2 || len(r.Errors) != 2 {
		t.Errorf("errors = %v", r.Errors)
	}
	if r.Samples["503"] != "sealed" || r.Samples["transport"] != "connection reset" {
		t.Errorf("samples = %v", r.Samples)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
