package bench

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histogram bounds: 1 µs to 10 minutes, 3 significant digits
// (every recorded value is kept within 0.1%).
const (
	histLowest  = 1
	histHighest = int64(10 * time.Minute / time.Microsecond)
	histDigits  = 3
)

// Latency records request latencies in microseconds in an HdrHistogram.
// It is not safe for concurrent use: each worker keeps its own and the
// generator merges them when a phase ends.
type Latency struct {
	h *hdrhistogram.Histogram
}

// NewLatency returns an empty histogram.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(histLowest, histHighest, histDigits)}
}

// Record adds one latency. Values outside the range are clamped (a
// sub-microsecond answer counts as 1 µs, anything above 10 minutes as 10
// minutes) so that no request goes missing from the counts.
func (l *Latency) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	_ = l.h.RecordValue(us) // cannot fail: the value is in range
}

// Merge adds every value of o.
func (l *Latency) Merge(o *Latency) {
	if o != nil {
		l.h.Merge(o.h)
	}
}

// Count is the number of recorded values.
func (l *Latency) Count() int64 { return l.h.TotalCount() }

// Quantile returns the value at quantile q (0 < q ≤ 1): the smallest
// recorded value v such that at least q of all values are ≤ v, reported as
// the highest value equivalent to it at the histogram's precision.
func (l *Latency) Quantile(q float64) time.Duration {
	return time.Duration(l.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Max is the largest recorded value (at the histogram's precision).
func (l *Latency) Max() time.Duration { return time.Duration(l.h.Max()) * time.Microsecond }

// Mean is the mean of the recorded values.
func (l *Latency) Mean() time.Duration {
	return time.Duration(l.h.Mean() * float64(time.Microsecond))
}

// Summary is the latency distribution as reported, in milliseconds.
type Summary struct {
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summary returns the reported percentiles.
func (l *Latency) Summary() Summary {
	if l.Count() == 0 {
		return Summary{}
	}
	return Summary{
		Count:  l.Count(),
		MeanMs: ms(l.Mean()),
		P50Ms:  ms(l.Quantile(0.50)),
		P90Ms:  ms(l.Quantile(0.90)),
		P99Ms:  ms(l.Quantile(0.99)),
		P999Ms: ms(l.Quantile(0.999)),
		MaxMs:  ms(l.Max()),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
