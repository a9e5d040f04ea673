package bench

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	kgo "github.com/segmentio/kafka-go"
)

// streamName is the name the harness gives its audit_stream of kind k.
func streamName(kind string) string { return "vbench-" + kind }

// streamTopic / streamTable name the run's Kafka topic and ClickHouse
// table (one per run, so runs never mix).
func streamTopic(runID string) string { return "vigil-bench-" + runID }
func streamTable(runID string) string { return "vigil_bench_" + runID }

// streamConfig is the audit_stream block for kind (kafka or clickhouse),
// with the stream's defaults otherwise (audit/ship: batch_size 1000,
// linger 20ms).
func streamConfig(kind, kafka, clickhouse, runID string) string {
	switch kind {
	case "kafka":
		return fmt.Sprintf("audit_stream \"kafka\" %q {\n  brokers = [%s]\n  topic   = %q\n}\n",
			streamName(kind), quoteList(kafka), streamTopic(runID))
	case "clickhouse":
		return fmt.Sprintf("audit_stream \"clickhouse\" %q {\n  addr     = [%s]\n  database = \"default\"\n  table    = %q\n}\n",
			streamName(kind), quoteList(clickhouse), streamTable(runID))
	}
	return ""
}

// quoteList renders "a,b" as `"a", "b"` for an HCL list.
func quoteList(csv string) string {
	var out []string
	for _, s := range strings.Split(csv, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, fmt.Sprintf("%q", s))
		}
	}
	return strings.Join(out, ", ")
}

// StreamState is a stream's status as sys/audit-stream reports it.
type StreamState struct {
	Name       string  `json:"name"`
	Type       string  `json:"type,omitempty"`
	State      string  `json:"state,omitempty"`
	Up         bool    `json:"up"`
	LagEntries float64 `json:"lag_entries"`
	LagSeconds float64 `json:"lag_seconds"`
	Shipped    float64 `json:"shipped"`
	Errors     float64 `json:"errors"`
	LastError  string  `json:"last_error,omitempty"`
}

// streamStatus reads sys/audit-stream: {"streams": {"<name>": {...}}}.
func streamStatus(ctx context.Context, api *API) ([]StreamState, error) {
	m, err := api.Do(ctx, "GET", "sys/audit-stream", nil)
	if err != nil {
		return nil, err
	}
	streams, _ := data(m)["streams"].(map[string]any)
	var out []StreamState
	for name, v := range streams {
		st := StreamState{Name: name}
		if s, ok := v.(map[string]any); ok {
			st.Type, _ = s["type"].(string)
			st.State, _ = s["state"].(string)
			st.Up, _ = s["up"].(bool)
			st.LastError, _ = s["last_error"].(string)
			st.LagEntries, st.LagSeconds = num(s["lag_entries"]), num(s["lag_seconds"])
			st.Shipped, st.Errors = num(s["shipped"]), num(s["errors"])
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		var f float64
		_, _ = fmt.Sscan(x, &f)
		return f
	}
	return 0
}

// dropStreamData removes what a stream arm left in its sink: the run's
// Kafka topic or ClickHouse table (best effort; the servers are stopped
// by then).
func dropStreamData(ctx context.Context, kind, kafkaBrokers, chAddr, runID string) error {
	switch kind {
	case "kafka":
		broker := strings.TrimSpace(strings.Split(kafkaBrokers, ",")[0])
		conn, err := kgo.DialContext(ctx, "tcp", broker)
		if err != nil {
			return err
		}
		defer conn.Close()
		ctrl, err := conn.Controller()
		if err != nil {
			return err
		}
		cc, err := kgo.DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
		if err != nil {
			return err
		}
		defer cc.Close()
		return cc.DeleteTopics(streamTopic(runID))
	case "clickhouse":
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, DialTimeout: 5 * time.Second})
		if err != nil {
			return err
		}
		defer conn.Close()
		return conn.Exec(ctx, "DROP TABLE IF EXISTS default."+streamTable(runID))
	}
	return nil
}
