package transit

import (
	"crypto/rand"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

// reportOps adds an ops/s metric to a benchmark.
func reportOps(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

// BenchmarkEncryptAES256GCM64B is encrypt/:name with a 64-byte plaintext
// through the engine's handler, as the router calls it (field validation,
// storage read of the key from an in-memory store, base64 in and out).
func BenchmarkEncryptAES256GCM64B(b *testing.B) {
	_, c := enginetest.MustSetup(b, New, testMount)
	c.MustCall(b, core.OpUpdate, "keys/bench", nil)
	pt := make([]byte, 64)
	_, _ = rand.Read(pt)
	data := map[string]any{"plaintext": b64(string(pt))}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write("encrypt/bench", data); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}

// BenchmarkEncryptAES256GCM64BParallel is the same with GOMAXPROCS
// concurrent callers.
func BenchmarkEncryptAES256GCM64BParallel(b *testing.B) {
	_, c := enginetest.MustSetup(b, New, testMount)
	c.MustCall(b, core.OpUpdate, "keys/bench", nil)
	data := map[string]any{"plaintext": b64(string(make([]byte, 64)))}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Write("encrypt/bench", data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportOps(b)
}

// BenchmarkPolicyEncryptAES256GCM64B is the cryptographic core alone:
// nonce, AES-256-GCM seal, base64 and the version prefix.
func BenchmarkPolicyEncryptAES256GCM64B(b *testing.B) {
	p, err := newPolicy("bench", typeAES256, createOptions{}, enginetest.Epoch, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := p.encrypt(0, nil, pt, nil, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
	reportOps(b)
}
