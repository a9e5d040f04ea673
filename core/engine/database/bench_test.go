package database_test

import (
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
)

// benchSetup starts a server with a PostgreSQL role "bench" and revokes
// every credential it issued when the benchmark ends.
func benchSetup(b *testing.B) (*vaultapi.Client, func() creds) {
	b.Helper()
	srv := dbtest.MustPostgres(b)
	s := mustServer(b)
	c := s.Client
	configure(b, c, srv, "main")
	write(b, c, mountPath+"/roles/bench", map[string]any{
		"db_name": "main", "creation_statements": srv.CreationStatements(), "default_ttl": "1h",
	})
	b.Cleanup(func() {
		if err := c.Sys().RevokePrefix(mountPath + "/creds/bench"); err != nil {
			b.Errorf("revoke benchmark credentials: %v", err)
		}
		if users := srv.Users(b, "v-root-bench-"); len(users) > 0 {
			b.Errorf("%d benchmark users left after revoke-prefix", len(users))
		}
	})
	return c, func() creds { return issue(b, c, "bench") }
}

// BenchmarkCredsPostgres measures creds/:role issuance through the HTTP API
// (audited dispatcher, lease registration) against the real PostgreSQL: one
// CREATE ROLE + GRANT transaction per credential, requests one at a time.
func BenchmarkCredsPostgres(b *testing.B) {
	_, issueOne := benchSetup(b)
	for b.Loop() {
		issueOne()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creds/s")
}

// BenchmarkCredsPostgresParallel is the same with concurrent clients; the
// engine's pool (max_open_connections, default 4) bounds database work.
func BenchmarkCredsPostgresParallel(b *testing.B) {
	c, _ := benchSetup(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// No Fatal off the benchmark goroutine: report and go on.
			if s, err := c.Logical().Read(mountPath + "/creds/bench"); err != nil || s == nil || s.LeaseID == "" {
				b.Errorf("creds/bench: %v, %v", s, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creds/s")
}
