package ship

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	labels       = []string{"stream", "type"}
	descLag      = prometheus.NewDesc("vigil_audit_stream_lag_entries", "Lines in the local audit log not yet acknowledged by the stream's sink.", labels, nil)
	descLagSec   = prometheus.NewDesc("vigil_audit_stream_lag_seconds", "Age of the oldest line not yet acknowledged by the sink (0 when caught up).", labels, nil)
	descShipped  = prometheus.NewDesc("vigil_audit_stream_shipped_total", "Lines acknowledged by the sink since the server started.", labels, nil)
	descErrors   = prometheus.NewDesc("vigil_audit_stream_errors_total", "Failed writes to the sink and interrupted shipping sessions.", labels, nil)
	descCursor   = prometheus.NewDesc("vigil_audit_stream_cursor_seq", "Seq of the last line the sink acknowledged.", labels, nil)
	descSaved    = prometheus.NewDesc("vigil_audit_stream_saved_seq", "Seq of the cursor as saved in Raft storage.", labels, nil)
	descHead     = prometheus.NewDesc("vigil_audit_stream_head_seq", "Seq of the last durable line of the local log.", labels, nil)
	descUp       = prometheus.NewDesc("vigil_audit_stream_up", "1 when the last write to the sink succeeded.", labels, nil)
	descGaps     = prometheus.NewDesc("vigil_audit_stream_gaps_total", "Ranges of lines deleted from the local log before they were shipped.", labels, nil)
	descHeldSeg  = prometheus.NewDesc("vigil_audit_stream_held_segments", "Rotated segments retention may not delete because the stream has not passed them.", labels, nil)
	descHeldB    = prometheus.NewDesc("vigil_audit_stream_held_bytes", "Bytes of rotated segments the stream holds on disk.", labels, nil)
	descHolding  = prometheus.NewDesc("vigil_audit_stream_holding_disk", "1 when the device's disk is at critical pressure and this stream holds a segment retention would delete.", append(labels, "device"), nil)
	descWriteSec = prometheus.NewDesc("vigil_audit_stream_last_write_seconds", "Duration of the last acknowledged write.", labels, nil)
)

// collector exports every stream's Status at scrape time.
type collector struct{ sub *Subsystem }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLag, descLagSec, descShipped, descErrors, descCursor, descSaved, descHead, descUp, descGaps, descHeldSeg, descHeldB, descHolding, descWriteSec} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.sub.Statuses() {
		l := []string{st.Name, st.Type}
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
		}
		cnt := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
		}
		g(descLag, float64(st.LagEntries))
		g(descLagSec, st.LagSeconds)
		cnt(descShipped, float64(st.Shipped))
		cnt(descErrors, float64(st.Errors))
		g(descCursor, float64(st.Cursor.Seq))
		g(descSaved, float64(st.SavedSeq))
		g(descHead, float64(st.HeadSeq))
		up := 0.0
		if st.Up {
			up = 1
		}
		g(descUp, up)
		cnt(descGaps, float64(st.Gaps))
		g(descHeldSeg, float64(st.HeldSegments))
		g(descHeldB, float64(st.HeldBytes))
		g(descWriteSec, st.LastWriteSeconds)
		holding := 0.0
		if st.HoldingDisk != "" {
			holding = 1
		}
		ch <- prometheus.MustNewConstMetric(descHolding, prometheus.GaugeValue, holding, st.Name, st.Type, st.Device)
	}
}
