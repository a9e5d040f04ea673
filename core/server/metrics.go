package server

import (
	"bytes"
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// metricsPart serves sys/metrics (Vault's path). format=prometheus returns
// the text exposition format; otherwise a JSON summary of the same metrics.
type metricsPart struct{ s *Server }

func (m metricsPart) Routes() []framework.Route {
	unauth := m.s.cfg.UnauthenticatedMetrics()
	return []framework.Route{{
		Pattern: `metrics`, Unauthenticated: unauth,
		Fields:     map[string]*framework.FieldSchema{"format": {Type: framework.TypeString}},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: m.read},
	}}
}

func (m metricsPart) read(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	mfs, err := m.s.metrics.Gather()
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "gather metrics: %v", err)
	}
	if d.String("format") == "prometheus" {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return nil, core.Errorf(core.CodeInternal, "encode metrics: %v", err)
			}
		}
		return &core.Response{Raw: &core.RawBody{ContentType: string(expfmt.NewFormat(expfmt.TypeTextPlain)), Body: buf.Bytes()}}, nil
	}
	gauges := []map[string]any{}
	counters := []map[string]any{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range mt.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			row := map[string]any{"Name": mf.GetName(), "Labels": labels}
			switch {
			case mt.Gauge != nil:
				row["Value"] = mt.GetGauge().GetValue()
				gauges = append(gauges, row)
			case mt.Counter != nil:
				row["Count"] = mt.GetCounter().GetValue()
				counters = append(counters, row)
			}
		}
	}
	return &core.Response{Bare: true, Data: map[string]any{"Gauges": gauges, "Counters": counters, "Samples": []any{}}}, nil
}
