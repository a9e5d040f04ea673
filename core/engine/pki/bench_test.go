package pki

import (
	"testing"
)

// BenchmarkIssueECP256 is PKI issue (EC P-256 key and certificate, stored)
// at the engine: the handler alone, on in-memory storage.
func BenchmarkIssueECP256(b *testing.B) {
	c := newPKI(b)
	genRoot(b, c, nil)
	webRole(b, c, map[string]any{"key_type": "ec", "key_bits": 256})
	body := map[string]any{"common_name": "bench.example.com", "ttl": "1h"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write("issue/web", body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkIssueECP256Parallel is the same with concurrent callers.
func BenchmarkIssueECP256Parallel(b *testing.B) {
	c := newPKI(b)
	genRoot(b, c, nil)
	webRole(b, c, map[string]any{"key_type": "ec", "key_bits": 256})
	body := map[string]any{"common_name": "bench.example.com", "ttl": "1h"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Write("issue/web", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}
