package itest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/testsvc"
)

// TestStreamClickHouseOutageUnderLoad: with concurrent API traffic running,
// the REAL ClickHouse server is stopped and started again. Requests keep
// succeeding; the stream reports the outage; afterwards the table holds
// every (node_id, seq) exactly once with FINAL, and the chain verifies
// from the table.
func TestStreamClickHouseOutageUnderLoad(t *testing.T) {
	addr := testsvc.Env(t, "VIGIL_TEST_CLICKHOUSE_ADDR")
	lock := shiptest.Use(t, "clickhouse")
	stop, start := lock.Outage(t, "VIGIL_TEST_CLICKHOUSE_CTL")
	table := fmt.Sprintf("vigil_itest_%d", time.Now().UnixNano()%1e12)
	dir := t.TempDir()
	s := mustStreamServer(t, dir, map[string]string{"max_size_mb": "1", "compress": "true"}, []config.Block{
		streamBlock("clickhouse", "warehouse", map[string]string{"addr": addr, "database": "vigil_itest", "table": table, "max_backoff": "1s", "batch_size": "2000"}),
	}, auditOptions(), shipOptions())
	l := startLoad(t, s.Server, 8)
	shiptest.WaitFor(t, time.Minute, "some traffic to be shipped", func() bool { return s.streamStatus(t, "warehouse").Shipped > 500 })

	stop(t)
	down := time.Now()
	okBefore := l.ok.Load()
	shiptest.WaitFor(t, time.Minute, "the stream to report the outage", func() bool {
		st := s.streamStatus(t, "warehouse")
		return !st.Up && st.LastError != "" && st.LagEntries > 300 && time.Since(down) > 3*time.Second
	})
	during := s.streamStatus(t, "warehouse")
	served := l.ok.Load() - okBefore
	l.mustHaveNoFailures(t, "while ClickHouse was down")
	t.Logf("ClickHouse down: %d requests served, stream %s, lag %d entries / %.1fs, last error %q", served, during.State, during.LagEntries, during.LagSeconds, during.LastError)
	if served < 100 {
		t.Fatalf("only %d requests served while ClickHouse was down", served)
	}

	start(t)
	shiptest.WaitFor(t, 2*time.Minute, "the stream to resume", func() bool { return s.streamStatus(t, "warehouse").Up })
	time.Sleep(time.Second)
	l.halt()
	l.mustHaveNoFailures(t, "around the ClickHouse outage")
	head := s.head(t)
	st := s.waitShipped(t, "warehouse", head, 3*time.Minute)
	t.Logf("%d requests in all; caught up at seq %d (%d lines shipped, %d errors); sink %v", l.ok.Load(), st.Cursor.Seq, st.Shipped, st.Errors, st.Sink)

	pub := s.publicKey(t)
	s.Stop() // the stream stops first: the table no longer changes
	cfg := clickhouse.Config{Addr: []string{addr}, Database: "vigil_itest", Table: table}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var lines [][]byte
	if err := clickhouse.ReadLines(ctx, cfg, "test-node", func(b []byte) error { lines = append(lines, b); return nil }); err != nil {
		t.Fatal(err)
	}
	r := verifyLines(t, lines, pub, head)
	if r.Duplicates != 0 {
		t.Fatalf("SELECT ... FINAL returned %d repeated keys", r.Duplicates)
	}
	rows, keys, err := clickhouse.Counts(ctx, cfg, "test-node")
	if err != nil {
		t.Fatal(err)
	}
	if keys != r.Unique {
		t.Fatalf("table has %d distinct seqs, FINAL read %d", keys, r.Unique)
	}
	t.Logf("table %s: %d rows stored, %d distinct (node_id, seq), FINAL: %s", table, rows, keys, r)
}
