package audit

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// entryCount reads vigil_audit_entries_total{device,type} from m.
func entryCount(t *testing.T, m *Metrics, device, typ string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.entries)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["device"] == device && labels["type"] == typ {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// recordedOn counts exactly what recorded would, per device and type,
// whichever Metrics the device is used with.
func TestRecordedOnCountsPerDeviceAndType(t *testing.T) {
	m1, m2 := NewMetrics(nil, nil, time.Now), NewMetrics(nil, nil, time.Now)
	a, b := testDevice(t, "a", &fakeSink{}, time.Second), testDevice(t, "b", &fakeSink{}, time.Second)
	for i := 0; i < 3; i++ {
		m1.recordedOn(a, "request")
	}
	m1.recordedOn(a, "response")
	m1.recordedOn(b, "response")
	m1.recordedOn(a, "other")
	m2.recordedOn(a, "request") // another Metrics: not m1's cached counters
	var nilM *Metrics
	nilM.recordedOn(a, "request")
	for _, c := range []struct {
		m        *Metrics
		dev, typ string
		want     float64
	}{{m1, "a", "request", 3}, {m1, "a", "response", 1}, {m1, "b", "response", 1}, {m1, "b", "request", 0},
		{m1, "a", "other", 1}, {m2, "a", "request", 1}, {m2, "a", "response", 0}} {
		if got := entryCount(t, c.m, c.dev, c.typ); got != c.want {
			t.Errorf("%s/%s: %v, want %v", c.dev, c.typ, got, c.want)
		}
	}
}
