package bench

import (
	"math"
	"testing"
)

const scrapeBefore = `# TYPE vigil_audit_entries_total counter
vigil_audit_entries_total{device="file",type="request"} 10
vigil_audit_entries_total{device="file",type="response"} 9
# TYPE vigil_audit_bytes_written_total counter
vigil_audit_bytes_written_total{device="file"} 1000
# TYPE vigil_audit_lines_written_total counter
vigil_audit_lines_written_total{device="file"} 21
# TYPE vigil_audit_write_failures_total counter
vigil_audit_write_failures_total{device="file"} 0
# TYPE vigil_audit_fsync_seconds histogram
vigil_audit_fsync_seconds_bucket{device="file",le="0.001"} 5
vigil_audit_fsync_seconds_bucket{device="file",le="0.002"} 5
vigil_audit_fsync_seconds_bucket{device="file",le="0.004"} 5
vigil_audit_fsync_seconds_bucket{device="file",le="+Inf"} 5
vigil_audit_fsync_seconds_sum{device="file"} 0.005
vigil_audit_fsync_seconds_count{device="file"} 5
# TYPE vigil_audit_batch_lines histogram
vigil_audit_batch_lines_bucket{device="file",le="+Inf"} 5
vigil_audit_batch_lines_sum{device="file"} 19
vigil_audit_batch_lines_count{device="file"} 5
# TYPE vigil_audit_stream_shipped_total counter
vigil_audit_stream_shipped_total{stream="k",type="kafka"} 10
# TYPE go_goroutines gauge
go_goroutines 40
`

// After 101 requests in 2 s: 202 entries for the requests plus the two
// of the harness's own metric reads.
const scrapeAfter = `# TYPE vigil_audit_entries_total counter
vigil_audit_entries_total{device="file",type="request"} 112
vigil_audit_entries_total{device="file",type="response"} 111
# TYPE vigil_audit_bytes_written_total counter
vigil_audit_bytes_written_total{device="file"} 21000
# TYPE vigil_audit_lines_written_total counter
vigil_audit_lines_written_total{device="file"} 226
# TYPE vigil_audit_write_failures_total counter
vigil_audit_write_failures_total{device="file"} 3
# TYPE vigil_audit_fsync_seconds histogram
vigil_audit_fsync_seconds_bucket{device="file",le="0.001"} 10
vigil_audit_fsync_seconds_bucket{device="file",le="0.002"} 23
vigil_audit_fsync_seconds_bucket{device="file",le="0.004"} 25
vigil_audit_fsync_seconds_bucket{device="file",le="+Inf"} 25
vigil_audit_fsync_seconds_sum{device="file"} 0.045
vigil_audit_fsync_seconds_count{device="file"} 25
# TYPE vigil_audit_batch_lines histogram
vigil_audit_batch_lines_bucket{device="file",le="+Inf"} 25
vigil_audit_batch_lines_sum{device="file"} 219
vigil_audit_batch_lines_count{device="file"} 25
# TYPE vigil_audit_stream_lag_entries gauge
vigil_audit_stream_lag_entries{stream="k"} 7
# TYPE vigil_audit_stream_lag_seconds gauge
vigil_audit_stream_lag_seconds{stream="k"} 0.5
# TYPE vigil_audit_stream_shipped_total counter
vigil_audit_stream_shipped_total{stream="k",type="kafka"} 190
# TYPE go_goroutines gauge
go_goroutines 41
`

func mustParse(t *testing.T, s string) Metrics {
	t.Helper()
	m, err := ParseMetrics(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAuditDelta(t *testing.T) {
	before, after := mustParse(t, scrapeBefore), mustParse(t, scrapeAfter)
	st := AuditDelta(before, after, 101, 2)
	eq := func(name string, p *float64, want float64) {
		t.Helper()
		if p == nil {
			t.Errorf("%s missing", name)
			return
		}
		if math.Abs(*p-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, *p, want)
		}
	}
	eq("entries", st.Entries, 202)
	eq("entries/s", st.EntriesPerSec, 101)
	eq("entries/request", st.EntriesPerRequest, 2)
	eq("bytes", st.Bytes, 20000)
	eq("bytes/s", st.BytesPerSec, 10000)
	eq("lines", st.Lines, 205)
	eq("fsyncs", st.Fsyncs, 20)
	eq("fsyncs/s", st.FsyncsPerSec, 10)
	eq("fsync mean ms", st.FsyncMeanMs, 2) // 0.040 s / 20
	// Bucket deltas: 5 in (0,1ms], 13 in (1,2ms], 2 in (2,4ms]; rank
	// 19.8 of 20 lies in the last: 2 + 2*(19.8-18)/2 = 3.8 ms.
	eq("fsync p99 ms", st.FsyncP99Ms, 3.8)
	eq("batch mean", st.BatchMean, 10) // 200 lines / 20 commits
	if st.Counters[`vigil_audit_write_failures_total{device="file"}`] != 3 || len(st.Counters) != 1 {
		t.Errorf("other counters = %v", st.Counters)
	}
	if st.Lag[`vigil_audit_stream_lag_entries{stream="k"}`] != 7 || len(st.Lag) != 2 {
		t.Errorf("lag = %v", st.Lag)
	}
	eq("lag entries after", st.LagEntriesAfter, 7)
	eq("shipped", st.Shipped, 180)
	eq("shipped/s", st.ShippedPerSec, 90)
	if lag, ok := LagTotal(after); !ok || lag != 7 {
		t.Errorf("LagTotal = %v %v, want 7 entries (seconds not added)", lag, ok)
	}
	if _, ok := LagTotal(before); ok {
		t.Error("LagTotal found a lag gauge in a scrape without one")
	}
}

func TestAuditDeltaWithoutAuditMetrics(t *testing.T) {
	m := mustParse(t, "# TYPE go_goroutines gauge\ngo_goroutines 40\n")
	st := AuditDelta(m, m, 100, 1)
	if st.Entries != nil || st.Fsyncs != nil || st.BatchMean != nil || st.Counters != nil {
		t.Fatalf("a server without audit metrics must yield no audit figures: %+v", st)
	}
}

func TestBucketQuantile(t *testing.T) {
	b := map[float64]float64{0.001: 50, 0.002: 90, 0.004: 100, math.Inf(1): 100}
	for _, c := range []struct{ q, want float64 }{
		{0.5, 0.001},   // exactly the first bound
		{0.25, 0.0005}, // interpolated from 0
		{0.99, 0.0038},
		{0.7, 0.0015},
	} {
		if got := bucketQuantile(c.q, b); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	// Rank in the +Inf bucket: the largest finite bound.
	if got := bucketQuantile(0.99, map[float64]float64{0.001: 50, math.Inf(1): 100}); got != 0.001 {
		t.Errorf("+Inf bucket: %v", got)
	}
	if !math.IsNaN(bucketQuantile(0.5, map[float64]float64{math.Inf(1): 0})) {
		t.Error("empty histogram must give NaN")
	}
}
