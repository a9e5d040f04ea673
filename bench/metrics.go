package bench

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricSample is one series of a Prometheus text exposition.
type MetricSample struct {
	Name   string
	Type   string // counter, gauge, histogram, summary, untyped
	Labels map[string]string
	Value  float64 // counters, gauges, untyped; histograms: the count
	Sum    float64 // histograms
	// Buckets of a histogram: upper bound → cumulative count.
	Buckets map[float64]float64
}

// Metrics is a parsed scrape.
type Metrics []MetricSample

// ParseMetrics parses Prometheus text exposition format.
func ParseMetrics(text string) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	var out Metrics
	for name, f := range fams {
		typ := strings.ToLower(f.GetType().String())
		for _, m := range f.GetMetric() {
			s := MetricSample{Name: name, Type: typ, Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.Labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.Value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.Value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				s.Value, s.Sum = float64(h.GetSampleCount()), h.GetSampleSum()
				s.Buckets = map[float64]float64{}
				for _, b := range h.GetBucket() {
					s.Buckets[b.GetUpperBound()] = float64(b.GetCumulativeCount())
				}
			case dto.MetricType_SUMMARY:
				s.Value, s.Sum = float64(m.GetSummary().GetSampleCount()), m.GetSummary().GetSampleSum()
			default:
				s.Value = m.GetUntyped().GetValue()
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return labelKey(out[i].Labels) < labelKey(out[j].Labels)
	})
	return out, nil
}

func labelKey(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + l[k] + ",")
	}
	return b.String()
}

// Sum adds the values of every series named name.
func (ms Metrics) Sum(name string) (v float64, found bool) {
	for _, s := range ms {
		if s.Name == name {
			v += s.Value
			found = true
		}
	}
	return v, found
}

// HistSum returns a histogram's summed count, sum and buckets over every
// label set.
func (ms Metrics) HistSum(name string) (count, sum float64, buckets map[float64]float64, found bool) {
	buckets = map[float64]float64{}
	for _, s := range ms {
		if s.Name == name && s.Type == "histogram" {
			found = true
			count += s.Value
			sum += s.Sum
			for le, c := range s.Buckets {
				buckets[le] += c
			}
		}
	}
	return count, sum, buckets, found
}

// FetchMetrics reads sys/metrics?format=prometheus.
func FetchMetrics(ctx context.Context, api *API) (Metrics, error) {
	raw, status, err := api.Raw(ctx, "GET", "sys/metrics?format=prometheus", nil)
	if err != nil {
		return nil, err
	}
	if status != 200 {
		return nil, apiError("GET", "sys/metrics?format=prometheus", status, raw)
	}
	return ParseMetrics(string(raw))
}

// Audit metric names (audit/metrics.go).
const (
	mEntries = "vigil_audit_entries_total"
	mBytes   = "vigil_audit_bytes_written_total"
	mLines   = "vigil_audit_lines_written_total"
	mFsync   = "vigil_audit_fsync_seconds"
	mBatch   = "vigil_audit_batch_lines"
	// audit/ship/metrics.go
	mShipped      = "vigil_audit_stream_shipped_total"
	mStreamHead   = "vigil_audit_stream_head_seq"
	mStreamCursor = "vigil_audit_stream_cursor_seq"
)

// harnessEntries is how many audit entries the harness's own metric reads
// add between the two scrapes around a measured run: the first scrape's
// response entry (written after it gathered) and the second's request
// entry (written before it gathers).
const harnessEntries = 2

// AuditStats are the audit pipeline's figures over one measured run, from
// the difference of two scrapes. Fields are absent when the target does
// not export the metric.
type AuditStats struct {
	Entries           *float64 `json:"entries,omitempty"`
	EntriesPerSec     *float64 `json:"entries_per_s,omitempty"`
	EntriesPerRequest *float64 `json:"entries_per_request,omitempty"`
	Bytes             *float64 `json:"bytes,omitempty"`
	BytesPerSec       *float64 `json:"bytes_per_s,omitempty"`
	Lines             *float64 `json:"lines,omitempty"`
	Fsyncs            *float64 `json:"fsyncs,omitempty"`
	FsyncsPerSec      *float64 `json:"fsyncs_per_s,omitempty"`
	FsyncMeanMs       *float64 `json:"fsync_mean_ms,omitempty"`
	FsyncP99Ms        *float64 `json:"fsync_p99_ms_approx,omitempty"` // from histogram buckets
	BatchMean         *float64 `json:"group_commit_mean_lines,omitempty"`
	// Counters is the change of every other vigil_audit_* counter that
	// moved (failures, refusals, shipped entries, ...), by series.
	Counters map[string]float64 `json:"counters,omitempty"`
	// Lag is every vigil_audit_* gauge whose name mentions "lag" after the
	// run (shipper lag), by series.
	Lag map[string]float64 `json:"lag_after,omitempty"`
	// LagEntriesAfter sums the lag gauges counted in entries right after
	// the run (before the drain): how far the shippers were behind.
	LagEntriesAfter *float64 `json:"lag_entries_after,omitempty"`
	// Shipped is the lines the audit streams' sinks acknowledged during
	// the run (vigil_audit_stream_shipped_total; chain records included).
	Shipped       *float64 `json:"shipped_lines,omitempty"`
	ShippedPerSec *float64 `json:"shipped_lines_per_s,omitempty"`
	// DrainSeconds is how long the harness waited after the run for the
	// shipper lag to reach zero (streams only).
	DrainSeconds *float64 `json:"ship_drain_s,omitempty"`
	DrainTimeout bool     `json:"ship_drain_timeout,omitempty"`
}

func f64(v float64) *float64 { return &v }

// AuditDelta computes AuditStats between two scrapes around a run of
// requests requests lasting secs seconds.
func AuditDelta(before, after Metrics, requests int64, secs float64) *AuditStats {
	st := &AuditStats{}
	per := func(v float64) *float64 {
		if secs <= 0 {
			return nil
		}
		return f64(v / secs)
	}
	if a, ok := after.Sum(mEntries); ok {
		b, _ := before.Sum(mEntries)
		e := a - b - harnessEntries
		st.Entries, st.EntriesPerSec = f64(e), per(e)
		if requests > 0 {
			st.EntriesPerRequest = f64(e / float64(requests))
		}
	}
	if a, ok := after.Sum(mBytes); ok {
		b, _ := before.Sum(mBytes)
		st.Bytes, st.BytesPerSec = f64(a-b), per(a-b)
	}
	if a, ok := after.Sum(mLines); ok {
		b, _ := before.Sum(mLines)
		st.Lines = f64(a - b)
	}
	if ac, as, ab, ok := after.HistSum(mFsync); ok {
		bc, bs, bb, _ := before.HistSum(mFsync)
		n := ac - bc
		st.Fsyncs, st.FsyncsPerSec = f64(n), per(n)
		if n > 0 {
			st.FsyncMeanMs = f64((as - bs) / n * 1000)
			if q := bucketQuantile(0.99, subBuckets(ab, bb)); !math.IsNaN(q) {
				st.FsyncP99Ms = f64(q * 1000)
			}
		}
	}
	if ac, as, _, ok := after.HistSum(mBatch); ok {
		bc, bs, _, _ := before.HistSum(mBatch)
		if n := ac - bc; n > 0 {
			st.BatchMean = f64((as - bs) / n)
		}
	}
	if a, ok := after.Sum(mShipped); ok {
		b, _ := before.Sum(mShipped)
		st.Shipped, st.ShippedPerSec = f64(a-b), per(a-b)
	}
	if lag, ok := LagTotal(after); ok {
		st.LagEntriesAfter = f64(lag)
	}
	known := map[string]bool{mEntries: true, mBytes: true, mLines: true, mShipped: true}
	prev := map[string]float64{}
	for _, s := range before {
		prev[s.Name+"{"+labelKey(s.Labels)+"}"] = s.Value
	}
	for _, s := range after {
		if !strings.HasPrefix(s.Name, "vigil_audit_") || known[s.Name] {
			continue
		}
		key := s.Name + "{" + labelKey(s.Labels) + "}"
		switch {
		case s.Type == "counter":
			if d := s.Value - prev[key]; d != 0 {
				if st.Counters == nil {
					st.Counters = map[string]float64{}
				}
				st.Counters[seriesName(s)] = d
			}
		case s.Type == "gauge" && strings.Contains(s.Name, "lag"):
			if st.Lag == nil {
				st.Lag = map[string]float64{}
			}
			st.Lag[seriesName(s)] = s.Value
		}
	}
	return st
}

// seriesName renders name{k="v",...} with sorted labels.
func seriesName(s MetricSample) string {
	if len(s.Labels) == 0 {
		return s.Name
	}
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(s.Labels[k])
	}
	return s.Name + "{" + strings.Join(parts, ",") + "}"
}

// LagTotal sums every vigil_audit_* gauge mentioning "lag" whose name
// also says entries (or has no unit), so seconds and entries are never
// added together; found is false when there is no lag gauge.
func LagTotal(ms Metrics) (entries float64, found bool) {
	for _, s := range ms {
		if !strings.HasPrefix(s.Name, "vigil_audit_") || s.Type != "gauge" || !strings.Contains(s.Name, "lag") {
			continue
		}
		if strings.Contains(s.Name, "second") || strings.Contains(s.Name, "bytes") {
			continue
		}
		entries += s.Value
		found = true
	}
	return entries, found
}

func subBuckets(a, b map[float64]float64) map[float64]float64 {
	out := make(map[float64]float64, len(a))
	for le, c := range a {
		out[le] = c - b[le]
	}
	return out
}

// bucketQuantile estimates quantile q from cumulative buckets the way
// PromQL's histogram_quantile does: linear interpolation inside the
// bucket holding the rank. NaN when the buckets are empty; the largest
// finite bound when the rank falls in the +Inf bucket.
func bucketQuantile(q float64, buckets map[float64]float64) float64 {
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 {
		return math.NaN()
	}
	total := buckets[les[len(les)-1]] // cumulative: the last bucket holds every value
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	prevLe, prevC := 0.0, 0.0
	for _, le := range les {
		c := buckets[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevLe
			}
			if c == prevC {
				return le
			}
			return prevLe + (le-prevLe)*(rank-prevC)/(c-prevC)
		}
		prevLe, prevC = le, c
	}
	return prevLe
}
