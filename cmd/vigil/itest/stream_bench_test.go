package itest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kgo "github.com/segmentio/kafka-go"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/testsvc"
)

// BenchmarkStreamEndToEndLag measures how long an audit entry takes from
// the moment it is written (its "time") to the moment a consumer sees it
// in the sink, while the server answers a steady 10,000 audited requests/s
// (KV v2 reads over HTTP, two entries each; open loop: requests the server
// cannot take in time are counted, not queued forever). Goal: p99 < 1 s.
// Kafka is read by a consumer polling every few milliseconds; ClickHouse
// is polled every 20 ms (that resolution is included in its figures).
//
//	go test ./cmd/vigil/itest -run XXX -bench StreamEndToEndLag -benchtime 1x
//
// When the HTTP stack cannot serve that rate on the machine, the "device"
// variants take HTTP out: they append the two entries of 10,000 requests/s
// straight to the server's file audit device (the same group-committed,
// fsync'd writer requests use), so the stream is measured at the target
// rate. Set VIGIL_BENCH_RATE and VIGIL_BENCH_SECONDS to change the load.
func BenchmarkStreamEndToEndLag(b *testing.B) {
	rate := envInt("VIGIL_BENCH_RATE", 10000)
	secs := envInt("VIGIL_BENCH_SECONDS", 10)
	for _, mode := range []string{"http", "device"} {
		b.Run(mode+"/kfake", func(b *testing.B) {
			fk := shiptest.StartKafka(b)
			benchLag(b, mode, rate, secs, kafkaArm(fk.Addr()))
		})
		b.Run(mode+"/kafka", func(b *testing.B) {
			brokers := testsvc.Env(b, "VIGIL_TEST_KAFKA_BROKERS")
			shiptest.Use(b, "kafka")
			benchLag(b, mode, rate, secs, kafkaArm(strings.Split(brokers, ",")[0]))
		})
		b.Run(mode+"/clickhouse", func(b *testing.B) {
			addr := testsvc.Env(b, "VIGIL_TEST_CLICKHOUSE_ADDR")
			shiptest.Use(b, "clickhouse")
			benchLag(b, mode, rate, secs, clickhouseArm(addr))
		})
	}
}

// lagArm is one sink: its stream block and a consumer that reports, for
// every line that arrives, when it arrived.
type lagArm struct {
	block   func(name string) config.Block
	consume func(ctx context.Context, b *testing.B, name string, seen func(line []byte, at time.Time))
}

func kafkaArm(broker string) lagArm {
	topic := fmt.Sprintf("vigil-bench-lag-%d", time.Now().UnixNano())
	return lagArm{
		block: func(name string) config.Block {
			return streamBlock("kafka", name, map[string]string{"brokers": broker, "topic": topic})
		},
		consume: func(ctx context.Context, b *testing.B, _ string, seen func([]byte, time.Time)) {
			r := kgo.NewReader(kgo.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 16 << 20,
				MaxWait: 5 * time.Millisecond, ReadBackoffMin: time.Millisecond, ReadBackoffMax: 5 * time.Millisecond})
			defer r.Close()
			_ = r.SetOffset(kgo.FirstOffset)
			for ctx.Err() == nil {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						time.Sleep(5 * time.Millisecond) // topic not created yet
					}
					continue
				}
				seen(m.Value, time.Now())
			}
		},
	}
}

func clickhouseArm(addr string) lagArm {
	table := fmt.Sprintf("vigil_bench_lag_%d", time.Now().UnixNano()%1e12)
	cfg := clickhouse.Config{Addr: []string{addr}, Database: "vigil_bench", Table: table}
	return lagArm{
		block: func(name string) config.Block {
			return streamBlock("clickhouse", name, map[string]string{"addr": addr, "database": "vigil_bench", "table": table, "compression": "none"})
		},
		consume: func(ctx context.Context, b *testing.B, _ string, seen func([]byte, time.Time)) {
			conn, err := clickhouse.Open(cfg)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			var last uint64
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for ctx.Err() == nil {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				rows, err := conn.Query(ctx, fmt.Sprintf("SELECT seq, raw FROM vigil_bench.%s WHERE seq > %d ORDER BY seq", table, last))
				if err != nil {
					continue // table not created yet
				}
				at := time.Now()
				for rows.Next() {
					var seq uint64
					var raw string
					if rows.Scan(&seq, &raw) == nil {
						last = max(last, seq)
						seen([]byte(raw), at)
					}
				}
				rows.Close()
			}
		},
	}
}

func benchLag(b *testing.B, mode string, rate, secs int, arm lagArm) {
	dir := b.TempDir()
	s := mustStreamServer(b, dir, nil, []config.Block{arm.block("lag")}, auditOptions(), shipOptions())
	if _, err := s.Client.Logical().Write("secret/data/bench", map[string]any{"data": map[string]any{"password": "s3cr3t"}}); err != nil {
		b.Fatal(err)
	}
	warm := 2 * time.Second
	measureFrom := time.Now().Add(warm)
	measureTo := measureFrom.Add(time.Duration(secs) * time.Second)

	var mu sync.Mutex
	var lags []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() {
		defer cwg.Done()
		arm.consume(ctx, b, "lag", func(line []byte, at time.Time) {
			if logline.IsRecord(line) {
				return
			}
			t, ok := logline.Time(line)
			if !ok || t.Before(measureFrom) || t.After(measureTo) {
				return
			}
			mu.Lock()
			lags = append(lags, at.Sub(t))
			mu.Unlock()
		})
	}()

	// Open-loop load: a pacer hands out `rate` tickets per second to 128
	// workers; tickets no worker could take are counted as missed. A
	// ticket is one KV read over HTTP (mode "http"), or the request and
	// response entries of one request appended to the device ("device").
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	dev := s.Audit().Broker().Device("file").Sink()
	one := func() error {
		if mode == "device" {
			for _, typ := range []string{"request", "response"} {
				body := strings.Replace(shiptest.BenchBody, `"time":"2026-03-01T12:00:00.123456789Z","type":"request"`,
					`"time":"`+time.Now().UTC().Format(time.RFC3339Nano)+`","type":"`+typ+`"`, 1)
				if err := dev.Write(context.Background(), []byte(body)); err != nil {
					return err
				}
			}
			return nil
		}
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/secret/data/bench", nil)
		req.Header.Set("X-Vault-Token", s.RootToken)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	}
	tickets := make(chan struct{}, rate/10)
	var done, failed, missed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 128; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tickets {
				if err := one(); err != nil {
					failed.Add(1)
					continue
				}
				if time.Now().After(measureFrom) && time.Now().Before(measureTo) {
					done.Add(1)
				}
			}
		}()
	}
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for now := time.Now(); now.Before(measureTo); now = time.Now() {
		due := int(now.Sub(start).Seconds() * float64(rate))
		for ; sent < due; sent++ {
			select {
			case tickets <- struct{}{}:
			default:
				if now.After(measureFrom) {
					missed.Add(1)
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	close(tickets)
	wg.Wait()
	b.StopTimer()
	// Let the last measured entries arrive.
	head := s.head(b)
	s.waitShipped(b, "lag", head, 2*time.Minute)
	time.Sleep(500 * time.Millisecond)
	cancel()
	cwg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(lags) == 0 {
		b.Fatal("no entries measured")
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	q := func(p float64) float64 {
		return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))].Microseconds()) / 1000
	}
	achieved := float64(done.Load()) / float64(secs)
	b.ReportMetric(achieved, "req/s")
	b.ReportMetric(q(0.50), "lag-p50-ms")
	b.ReportMetric(q(0.99), "lag-p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "lag-max-ms")
	b.ReportMetric(float64(len(lags)), "entries-measured")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s: target %d req/s: served %.0f req/s (%d failed, %d not started in time), %d entries measured: lag p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		mode, rate, achieved, failed.Load(), missed.Load(), len(lags), q(0.5), q(0.99), float64(lags[len(lags)-1].Microseconds())/1000)
}

func envInt(k string, def int) int {
	var n int
	if _, err := fmt.Sscanf(os.Getenv(k), "%d", &n); err == nil && n > 0 {
		return n
	}
	return def
}
