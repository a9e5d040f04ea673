package transit_test

import (
	"crypto/rand"
	"encoding/base64"
	"testing"
)

// BenchmarkHTTPEncryptAES256GCM64B is POST /v1/transit/encrypt/:name with a
// 64-byte plaintext through a real in-process server (dev mode, with the
// audit devices the server wiring enables by default) and the vault/api
// client: HTTP, token lookup, authorization, audit, routing and the engine.
func BenchmarkHTTPEncryptAES256GCM64B(b *testing.B) {
	s := startTransit(b)
	c := s.Client
	if _, err := c.Logical().Write("transit/keys/bench", nil); err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 64)
	_, _ = rand.Read(pt)
	data := map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Logical().Write("transit/encrypt/bench", data); err != nil {
			b.Fatal(err)
		}
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkHTTPEncryptAES256GCM64BParallel is the same with GOMAXPROCS
// concurrent clients.
func BenchmarkHTTPEncryptAES256GCM64BParallel(b *testing.B) {
	s := startTransit(b)
	if _, err := s.Client.Logical().Write("transit/keys/bench", nil); err != nil {
		b.Fatal(err)
	}
	data := map[string]any{"plaintext": base64.StdEncoding.EncodeToString(make([]byte, 64))}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := s.NewClient(s.RootToken)
		for pb.Next() {
			if _, err := c.Logical().Write("transit/encrypt/bench", data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkHTTPKVv2GetBaseline reads one KV v2 secret through the same kind
// of server, as the baseline the transit figures are compared with.
func BenchmarkHTTPKVv2GetBaseline(b *testing.B) {
	s := startTransit(b)
	c := s.Client
	if _, err := c.KVv2("secret").Put(b.Context(), "bench", map[string]any{"v": "x"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Logical().Read("secret/data/bench"); err != nil {
			b.Fatal(err)
		}
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}
