package pki_test

import (
	"testing"
)

// BenchmarkIssueECP256HTTP is PKI issue (EC P-256) through the whole server:
// HTTP, token check, authorization, audit and the raft-backed barrier, with
// the vault/api client.
func BenchmarkIssueECP256HTTP(b *testing.B) {
	srv, _ := startServer(b, nil)
	c := srv.Client
	mountPKI(b, c, "pki", "8760h")
	write(b, c, "pki/root/generate/internal", map[string]any{"common_name": "Bench Root", "key_type": "ec", "ttl": "8760h"})
	write(b, c, "pki/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec", "key_bits": 256})
	body := map[string]any{"common_name": "bench.example.com", "ttl": "1h"}
	for b.Loop() {
		if _, err := c.Logical().Write("pki/issue/web", body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}

// BenchmarkIssueECP256HTTPParallel is the same with concurrent clients.
func BenchmarkIssueECP256HTTPParallel(b *testing.B) {
	srv, _ := startServer(b, nil)
	c := srv.Client
	mountPKI(b, c, "pki", "8760h")
	write(b, c, "pki/root/generate/internal", map[string]any{"common_name": "Bench Root", "key_type": "ec", "ttl": "8760h"})
	write(b, c, "pki/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec", "key_bits": 256})
	body := map[string]any{"common_name": "bench.example.com", "ttl": "1h"}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Logical().Write("pki/issue/web", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
}
