package itest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/url"
	"testing"
	"time"

	chship "github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/embedded"
	"github.com/vigilsec/vigil/reports/query/querysvc"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

// A real server streams its audit log to the real ClickHouse; the query
// subsystem picks the ClickHouse backend. Once everything is shipped, the
// ClickHouse backend (through the API and directly) and an embedded index
// built over the same log return identical records, pages and checkpoint
// for a table of filters, equal to the reference implementation.
func TestQueryClickHouseMatchesEmbedded(t *testing.T) {
	addr := testsvc.Env(t, "VIGIL_TEST_CLICKHOUSE_ADDR")
	shiptest.Use(t, "clickhouse")
	table := fmt.Sprintf("vigil_q_%d", time.Now().UnixNano()%1e12)
	t.Cleanup(func() {
		if conn, err := chship.Open(chship.Config{Addr: []string{addr}}); err == nil {
			_ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS vigil_qitest."+table)
			_ = conn.Close()
		}
	})
	dir := t.TempDir()
	// Checkpoints only when the test asks (and at close), so both backends
	// end at the same one.
	s := mustQueryServer(t, dir, map[string]string{"max_size_mb": "1", "compress": "true", "checkpoint_interval": "24h", "checkpoint_every": "-1"},
		[]config.Block{streamBlock("clickhouse", "warehouse", map[string]string{"addr": addr, "database": "vigil_qitest", "table": table, "batch_size": "2000"})},
		querysvc.Options{})
	if got := s.Query().BackendName(); got != "clickhouse" {
		t.Fatalf("backend %q with a ClickHouse stream", got)
	}
	aliceAcc, auditor := queryTraffic(t, s)
	l := startLoad(t, s.Server, 6)
	shiptest.WaitFor(t, time.Minute, "some load", func() bool { return l.ok.Load() > 1500 })
	l.halt()
	l.mustHaveNoFailures(t, "under load")
	queryTraffic2(t, s)
	cp := s.checkpointNow(t)
	shiptest.WaitFor(t, 3*time.Minute, "the checkpoint to be shipped", func() bool {
		return s.Ship().Shipper("warehouse").Status().Cursor.Seq >= cp+1
	})

	pub := s.publicKey(t)
	hash := func(_ context.Context, in string) (string, error) { return s.Client.Sys().AuditHash("file", in) }
	ix, err := embedded.Open(embedded.Config{Path: auditLogPath(dir), Dir: t.TempDir(), NodeID: "test-node", Head: func() (uint64, bool) { return s.head(t), true },
		PublicKey: func() (ed25519.PublicKey, bool) { return pub, true }, Hash: hash, Poll: 2 * time.Millisecond, ChunkRows: 500})
	if err != nil {
		t.Fatal(err)
	}
	ix.Start()
	defer ix.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ix.WaitFor(ctx, cp+1); err != nil {
		t.Fatal(err)
	}
	chb, err := s.Query().Backend()
	if err != nil || chb.Name() != "clickhouse" {
		t.Fatalf("backend: %v %v", chb, err)
	}

	lines := querytest.ReadLines(t, auditLogPath(dir))
	everything, _ := querytest.Reference(t, lines, query.Filter{})
	mid := everything[len(everything)/2].Time // a time inside the traffic
	f, tr := false, true
	filters := []struct {
		name string
		f    query.Filter
		min  int
	}{
		{"all", query.Filter{}, 1500},
		{"secret paths", query.Filter{Path: "secret/"}, 1500},
		{"load prefix", query.Filter{Path: "secret/data/load/3/"}, 50},
		{"glob", query.Filter{Path: "secret/data/load/*/1?"}, 50},
		{"double star glob", query.Filter{Path: "secret/**/db"}, 3},
		{"actor name", query.Filter{Actor: "userpass-alice"}, 7},
		{"actor raw accessor", query.Filter{Actor: aliceAcc}, 7},
		{"actor root", query.Filter{Actor: "root"}, 1000},
		{"denied", query.Filter{Allowed: &f}, 3},
		{"allowed reads", query.Filter{Allowed: &tr, Operation: "read"}, 500},
		{"creates", query.Filter{Operation: "create"}, 20},
		{"mount", query.Filter{Mount: "auth/userpass"}, 3},
		{"before mid", query.Filter{Until: mid}, 100},
		{"after mid", query.Filter{Since: mid}, 100},
		{"node", query.Filter{NodeID: "test-node", Path: "sys/"}, 3},
		{"combined", query.Filter{Path: "secret/data/", Operation: "update", Allowed: &tr, Since: time.Now().Add(-time.Hour)}, 100},
		{"nothing", query.Filter{Path: "nope/"}, 0},
	}
	for _, c := range filters {
		t.Run(c.name, func(t *testing.T) {
			var hashes []string
			if c.f.Actor != "" {
				h, _ := hash(ctx, c.f.Actor)
				hashes = []string{h}
			}
			want, rcp := querytest.Reference(t, lines, c.f, hashes...)
			if len(want) < c.min {
				t.Fatalf("reference: %d records, want at least %d", len(want), c.min)
			}
			if rcp == nil || rcp.Seq != cp {
				t.Fatalf("reference checkpoint %+v, want seq %d", rcp, cp)
			}
			for _, b := range []query.Backend{chb, ix} {
				var got []query.Record
				gcp, err := b.Scan(ctx, c.f, func(r query.Record) error { got = append(got, r); return nil })
				if err != nil {
					t.Fatalf("%s: %v", b.Name(), err)
				}
				if d := querytest.Diff(want, got); d != "" {
					t.Fatalf("%s Scan: %s", b.Name(), d)
				}
				querytest.MustSameCheckpoint(t, rcp, gcp)
			}
			// Pages of both backends, page by page.
			pf := c.f
			pf.Limit = 250
			for page := 0; ; page++ {
				a, err := chb.Query(ctx, pf)
				if err != nil {
					t.Fatal(err)
				}
				b, err := ix.Query(ctx, pf)
				if err != nil {
					t.Fatal(err)
				}
				if d := querytest.Diff(b.Records, a.Records); d != "" || a.Next != b.Next {
					t.Fatalf("page %d differs: %s (next %q vs %q)", page, d, a.Next, b.Next)
				}
				querytest.MustSameCheckpoint(t, b.Checkpoint, a.Checkpoint)
				if a.Next == "" {
					break
				}
				pf.After = a.Next
			}
		})
	}

	// Through the API (the ClickHouse backend), as the auditor.
	res := apiQueryAll(t, s.Server, auditor, url.Values{"path": {"secret/data/app/"}, "limit": {"3"}})
	var want []query.Record
	if _, err := ix.Scan(ctx, query.Filter{Path: "secret/data/app/"}, func(r query.Record) error { want = append(want, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if res.Backend != "clickhouse" || len(want) < 6 {
		t.Fatalf("API backend %q, %d records", res.Backend, len(want))
	}
	if d := querytest.Diff(want, res.Records); d != "" {
		t.Fatalf("API (clickhouse) vs embedded: %s", d)
	}
	mustVerifyCheckpoint(t, res.Checkpoint, pub)
	t.Logf("log: %d lines up to checkpoint %d; ClickHouse table %s; verification: %s", len(lines), cp, table, res.Verification)
}

// queryTraffic2 adds a second user's denied attempts and a prod write.
func queryTraffic2(t *testing.T, s *queryServer) {
	t.Helper()
	alice, _ := userToken(t, s.NewClient(""), "alice", "pw-alice")
	ac := s.NewClient(alice)
	for i := 0; i < 2; i++ {
		if _, err := ac.Logical().Read("secret/data/prod/db"); err == nil {
			t.Fatal("alice read prod")
		}
	}
}
