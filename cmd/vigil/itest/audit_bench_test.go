package itest

import (
	"flag"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// BenchmarkAuditedKVGet measures KV v2 GET throughput through the real
// HTTP stack with many concurrent clients, with audit off (no device) and
// on (a file device, group commit) in each fsync mode. Goal: ≤ 15%
// overhead. With fsync "always" every request waits for two fsyncs (its
// request entry before the handler, its response entry before the answer),
// so on a disk with millisecond fsyncs the figure is bounded by
// concurrency / (2 × fsync latency); "interval" and "none" show the CPU
// cost of formatting, HMAC and chaining alone.
//
//	go test ./cmd/vigil/itest -run XXX -bench AuditedKVGet -benchtime 5s
var benchClients = flag.Int("audit.bench.clients", 64, "concurrent clients in BenchmarkAuditedKVGet")

func BenchmarkAuditedKVGet(b *testing.B) {
	clients := max(*benchClients, runtime.GOMAXPROCS(0))
	for _, fsync := range []string{"", "always", "interval", "none"} {
		name := "audit=off"
		if fsync != "" {
			name = "audit=on/fsync=" + fsync
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			s := mustAuditServer(b, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
				if fsync != "" {
					c.Audit = []config.Block{{Type: "file", Name: "file", Options: map[string]config.Value{
						"path": {Value: auditLogPath(dir)}, "fsync": {Value: fsync}}}}
				}
			}}, auditsvc.Options{})
			if _, err := s.Client.Logical().Write("secret/data/bench", map[string]any{"data": map[string]any{"password": "s3cr3t", "user": "app"}}); err != nil {
				b.Fatal(err)
			}
			tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
			hc := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			url := s.URL + "/v1/secret/data/bench"
			b.SetParallelism(clients / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("X-Vault-Token", s.RootToken)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.Contains(string(body), "s3cr3t") {
						b.Errorf("%d %s", resp.StatusCode, body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkGarbageVsValidRead compares a flood of requests Vigil cannot
// understand with a flood of valid KV reads, through the real HTTP stack
// with a durable file device. Each malformed request is recorded as a
// rejected request (a request and a response entry, like a read) but skips
// authentication, authorization and routing, so garbage must not cost more
// per request than a valid read.
//
//	go test ./cmd/vigil/itest -run XXX -bench GarbageVsValidRead -benchtime 3s
func BenchmarkGarbageVsValidRead(b *testing.B) {
	clients := max(*benchClients, runtime.GOMAXPROCS(0))
	dir := b.TempDir()
	s := mustAuditServer(b, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{})
	if _, err := s.Client.Logical().Write("secret/data/bench", map[string]any{"data": map[string]any{"password": "s3cr3t"}}); err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"valid-read", http.MethodGet, "/v1/secret/data/bench", "", 200},
		{"garbage-path", http.MethodGet, "/v1/secret%2Fdata%2Fbench", "", 400},
		{"garbage-json", http.MethodPost, "/v1/secret/data/bench", `{"data":`, 400},
		{"garbage-method", "TRACE", "/v1/secret/data/bench", "", 405},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(clients / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(tc.method, s.URL+tc.path, strings.NewReader(tc.body))
					req.Header.Set("X-Vault-Token", s.RootToken)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != tc.status {
						b.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.status)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}
