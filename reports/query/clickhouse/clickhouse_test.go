package clickhouse_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	chship "github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/clickhouse"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

var tableSeq atomic.Int64

// chConfig is a fresh table on the real test server (skipped, or failed
// under VIGIL_REQUIRE_SERVICES=1, when VIGIL_TEST_CLICKHOUSE_ADDR is unset).
func chConfig(tb testing.TB) chship.Config {
	tb.Helper()
	addr := testsvc.Env(tb, "VIGIL_TEST_CLICKHOUSE_ADDR")
	shiptest.Use(tb, "clickhouse")
	cfg := chship.Config{Addr: []string{addr}, Database: "vigil_qtest", Table: fmt.Sprintf("q_%d_%d", time.Now().UnixNano()%1e9, tableSeq.Add(1)), CreateTable: true}
	tb.Cleanup(func() {
		conn, err := chship.Open(cfg)
		if err == nil {
			_ = conn.Exec(context.Background(), "DROP TABLE IF EXISTS `"+cfg.Database+"`.`"+cfg.Table+"`")
			_ = conn.Close()
		}
	})
	return cfg
}

// mustShip writes lines to the table with the stream's own sink (and the
// first third twice, as a shipper does after an outage).
func mustShip(tb testing.TB, cfg chship.Config, lines [][]byte) {
	tb.Helper()
	sink, err := chship.NewSink(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer sink.Close()
	var recs []ship.Record
	for _, l := range lines {
		m, err := logline.ScanMembers(l)
		if err != nil {
			tb.Fatal(err)
		}
		at, _ := logline.Time(l)
		recs = append(recs, ship.Record{Seq: m.Seq, NodeID: m.NodeID, PrevHash: m.PrevHash, Hash: m.Hash, Line: l, Time: at})
	}
	ctx := context.Background()
	for start := 0; start < len(recs); start += 500 {
		if err := sink.Write(ctx, recs[start:min(start+500, len(recs))]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := sink.Write(ctx, recs[:len(recs)/3]); err != nil { // duplicates
		tb.Fatal(err)
	}
}

func newBackend(tb testing.TB, cfg chship.Config, l *querytest.Log) *clickhouse.Backend {
	tb.Helper()
	b, err := clickhouse.New(clickhouse.Config{CH: cfg, NodeID: l.NodeID,
		PublicKey: func() (ed25519.PublicKey, bool) { return l.PublicKey(), true },
		Hash:      func(_ context.Context, s string) (string, error) { return l.Salt.Hash(s), nil }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

// TestConformance runs the backend conformance suite against the real
// ClickHouse server, with the log shipped by the stream's sink (some rows
// twice).
func TestConformance(t *testing.T) {
	querytest.Run(t, func(tb testing.TB, l *querytest.Log) query.Backend {
		cfg := chConfig(tb)
		mustShip(tb, cfg, querytest.ReadLines(tb, l.Path))
		return newBackend(tb, cfg, l)
	})
}
