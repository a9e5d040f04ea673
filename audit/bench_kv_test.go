package audit

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core"
)

// kvReadEvents returns the request and response events of a KV v2 read by
// a root token, shaped like the ones `vigil bench --scenario kv-read`
// produces (4 data strings, metadata with times, a granting policy).
func kvReadEvents() (req, resp *core.AuditEvent) {
	t0 := time.Unix(1700000000, 123456789).UTC()
	r := &core.Request{ID: "b573d590-26f7-4a90-974e-3d087fff617f", Operation: core.OpRead, Path: "vbench-4e3177-kv/data/pool-184",
		Mount:      &core.MountInfo{Path: "vbench-4e3177-kv/", Type: "kv", Accessor: "kv_fd945792", Class: "secret"},
		RemoteAddr: "127.0.0.1", RemotePort: 35178,
		Principal: &core.Principal{ClientToken: "vbench-root-d826163fbea387b3", Accessor: "Z1x2c3v4b5n6m7a8s9d0f1g2", DisplayName: "root",
			Policies: []string{"root"}, TokenPolicies: []string{"root"}, TokenType: "service", IssueTime: t0.Add(-time.Minute)},
		Decision: &core.Decision{Allowed: true, GrantingPolicies: []core.PolicyRef{{Name: "root", Type: "acl"}}}}
	data := map[string]any{
		"data": map[string]any{"note": "pool secret 184 for the benchmark", "password": "p-184-4e3177-secret",
			"url": "postgres://db.example:5432/app", "username": "svc-184"},
		"metadata": map[string]any{"created_time": t0.Format(time.RFC3339Nano), "custom_metadata": nil,
			"deletion_time": "", "destroyed": false, "version": json.Number("1")},
	}
	return &core.AuditEvent{Type: "request", Time: t0, Request: r},
		&core.AuditEvent{Type: "response", Time: t0.Add(time.Millisecond), Request: r, Response: &core.Response{Data: data}}
}

// BenchmarkBrokerKVReadPair logs the request and response entries of a KV
// read (one op = one audited request) through a real file device with
// fsync "none", from 32 concurrent callers: the CPU and allocations the
// audit path adds per request, with the disk out of the picture.
func BenchmarkBrokerKVReadPair(b *testing.B) {
	dc := &DeviceConfig{Name: "file", Type: TypeFile, Path: filepath.Join(b.TempDir(), "audit.log"), Fsync: chain.FsyncNone,
		WriteTimeout: 30 * time.Second, CheckpointEvery: -1, CheckpointInterval: -1}
	sink, err := OpenFileSink(dc, FileEnv{NodeID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	br := NewBroker(BrokerConfig{Metrics: NewMetrics(nil, nil, time.Now)})
	br.Add(testDevice(b, "file", sink, 30*time.Second))
	defer br.Close()
	req, resp := kvReadEvents()
	b.SetParallelism(16) // 32 goroutines on 2 CPUs
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := br.LogRequest(ctx, req); err != nil {
				b.Error(err)
				return
			}
			if err := br.LogResponse(ctx, resp); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	// Process CPU per op is steadier than ns/op on a shared machine.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkBrokerKVReadPairFsync: the same pair with fsync "always", logged
// the way operations with side effects are (request entry durable, then
// response entry: two waits) and the way side-effect-free ones are
// (linked pair: one wait). pairs/s and fsyncs per pair show what the
// single wait saves when the disk, not the CPU, is the limit.
func BenchmarkBrokerKVReadPairFsync(b *testing.B) {
	for _, mode := range []string{"serial", "linked"} {
		b.Run(mode, func(b *testing.B) {
			dc := &DeviceConfig{Name: "file", Type: TypeFile, Path: filepath.Join(b.TempDir(), "audit.log"), Fsync: chain.FsyncAlways,
				WriteTimeout: 30 * time.Second, CheckpointEvery: -1, CheckpointInterval: -1}
			sink, err := OpenFileSink(dc, FileEnv{NodeID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			br := NewBroker(BrokerConfig{Metrics: NewMetrics(nil, nil, time.Now)})
			d := testDevice(b, "file", sink, 30*time.Second)
			d.Config = dc
			br.Add(d)
			defer br.Close()
			req, resp := kvReadEvents()
			b.SetParallelism(16) // 32 goroutines on 2 CPUs
			cpu0, start := processCPU(), time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if mode == "serial" {
						if err := br.LogRequest(ctx, req); err != nil {
							b.Error(err)
							return
						}
						if err := br.LogResponse(ctx, resp); err != nil {
							b.Error(err)
							return
						}
						continue
					}
					pair, err := br.LogRequestDeferred(ctx, req)
					if err != nil {
						b.Error(err)
						return
					}
					if reqErr, respErr := pair.LogResponse(ctx, resp); reqErr != nil || respErr != nil {
						b.Error(reqErr, respErr)
						return
					}
				}
			})
			b.StopTimer()
			el := time.Since(start)
			st := sink.W.Stats()
			b.ReportMetric(float64(b.N)/el.Seconds(), "pairs/s")
			b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/pair")
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
