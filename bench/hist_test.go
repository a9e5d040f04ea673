package bench

import (
	"testing"
	"time"
)

// within reports whether got is in [want, want*(1+rel)]: HdrHistogram
// reports the highest value equivalent to the true one at its precision
// (3 significant digits: within 0.1%, never below).
func within(got, want time.Duration, rel float64) bool {
	return got >= want && float64(got) <= float64(want)*(1+rel)
}

func TestLatencyUniformPercentiles(t *testing.T) {
	l := NewLatency()
	for us := 1; us <= 100000; us++ { // 1 µs .. 100 ms, each once
		l.Record(time.Duration(us) * time.Microsecond)
	}
	if l.Count() != 100000 {
		t.Fatalf("count %d", l.Count())
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 50 * time.Millisecond},
		{0.90, 90 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 99900 * time.Microsecond},
		{1.0, 100 * time.Millisecond},
	} {
		if got := l.Quantile(c.q); !within(got, c.want, 0.001) {
			t.Errorf("q%.3f = %v, want %v (+0.1%%)", c.q, got, c.want)
		}
	}
	if got := l.Max(); !within(got, 100*time.Millisecond, 0.001) {
		t.Errorf("max = %v", got)
	}
	mean := l.Mean()
	if mean < 49990*time.Microsecond || mean > 50060*time.Microsecond {
		t.Errorf("mean = %v, want ≈ 50.0005 ms", mean)
	}
}

// A bimodal distribution pins down the quantile definition: with 990
// answers at 1 ms and 10 at 500 ms, p99 is still 1 ms (990 of 1000 values
// are ≤ 1 ms) and p99.9 is 500 ms.
func TestLatencyBimodalQuantileDefinition(t *testing.T) {
	l := NewLatency()
	for range 990 {
		l.Record(time.Millisecond)
	}
	for range 10 {
		l.Record(500 * time.Millisecond)
	}
	s := l.Summary()
	check := func(name string, got, want float64) {
		t.Helper()
		if got < want || got > want*1.001 {
			t.Errorf("%s = %v ms, want %v ms (+0.1%%)", name, got, want)
		}
	}
	check("p50", s.P50Ms, 1)
	check("p90", s.P90Ms, 1)
	check("p99", s.P99Ms, 1)
	check("p99.9", s.P999Ms, 500)
	check("max", s.MaxMs, 500)
	check("mean", s.MeanMs, (990*1+10*500)/1000.0)
	if s.Count != 1000 {
		t.Errorf("count = %d", s.Count)
	}
}

func TestLatencyMergeEqualsWhole(t *testing.T) {
	whole, a, b := NewLatency(), NewLatency(), NewLatency()
	for i := 1; i <= 5000; i++ {
		d := time.Duration(i*i) * time.Microsecond / 10
		whole.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(b)
	if a.Summary() != whole.Summary() {
		t.Fatalf("merged %+v != whole %+v", a.Summary(), whole.Summary())
	}
}

func TestLatencyClampsOutOfRange(t *testing.T) {
	l := NewLatency()
	l.Record(0)
	l.Record(200 * time.Nanosecond)
	l.Record(time.Hour)
	if l.Count() != 3 {
		t.Fatalf("count %d: out-of-range values must still be counted", l.Count())
	}
	if got := l.Quantile(0.5); got != time.Microsecond {
		t.Errorf("p50 = %v, want 1µs (clamped)", got)
	}
	if got := l.Max(); !within(got, 10*time.Minute, 0.001) {
		t.Errorf("max = %v, want 10m (clamped)", got)
	}
}

func TestLatencyEmptySummary(t *testing.T) {
	if s := NewLatency().Summary(); s != (Summary{}) {
		t.Fatalf("empty histogram summary = %+v", s)
	}
}
