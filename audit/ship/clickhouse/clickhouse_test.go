package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/testsvc"
)

var tableSeq atomic.Int64

// newTable is a fresh table name per test.
func newTable() string {
	return fmt.Sprintf("vigil_test_%d_%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
}

func testConfig(tb testing.TB) Config {
	tb.Helper()
	addr := testsvc.Env(tb, "VIGIL_TEST_CLICKHOUSE_ADDR")
	return Config{Addr: []string{addr}, Database: "vigil_test", Table: newTable(), CreateTable: true}
}

func readAll(cfg Config, node string) func(context.Context) ([][]byte, error) {
	return func(ctx context.Context) ([][]byte, error) {
		var out [][]byte
		err := ReadLines(ctx, cfg, node, func(l []byte) error { out = append(out, l); return nil })
		return out, err
	}
}

// TestConformance runs the sink conformance suite against the real
// ClickHouse server, outage included.
func TestConformance(t *testing.T) {
	shiptest.Run(t, func(tb testing.TB) shiptest.Target {
		cfg := testConfig(tb)
		lock := shiptest.Use(tb, "clickhouse")
		s, err := NewSink(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		tg := shiptest.Target{Sink: s, Read: func(ctx context.Context) ([][]byte, error) {
			nodes, err := Nodes(ctx, cfg)
			if err != nil {
				return nil, err
			}
			var out [][]byte
			for _, n := range nodes {
				lines, err := readAll(cfg, n)(ctx)
				if err != nil {
					return nil, err
				}
				out = append(out, lines...)
			}
			return out, nil
		}}
		tg.Stop, tg.Start = lock.Outage(tb, "VIGIL_TEST_CLICKHOUSE_CTL")
		return tg
	})
}

// Re-sent rows are stored twice until a merge, and FINAL shows each
// (node_id, seq) once.
func TestDuplicatesCollapseWithFinal(t *testing.T) {
	cfg := testConfig(t)
	shiptest.Use(t, "clickhouse")
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := fixtureRecords(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := s.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	rows, keys, err := Counts(ctx, cfg, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	var final int
	if err := ReadLines(ctx, cfg, "node-a", func([]byte) error { final++; return nil }); err != nil {
		t.Fatal(err)
	}
	if keys != uint64(len(recs)) || final != len(recs) || rows < keys {
		t.Fatalf("rows %d, distinct keys %d, rows with FINAL %d; want %d keys and %d with FINAL", rows, keys, final, len(recs), len(recs))
	}
	t.Logf("server %v: %d rows stored, %d keys, %d rows with FINAL", s.Describe()["server_version"], rows, keys, final)
}

// The typed columns hold what an auditor filters on.
func TestTypedColumns(t *testing.T) {
	cfg := testConfig(t)
	shiptest.Use(t, "clickhouse")
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Write(ctx, fixtureRecords(t)); err != nil {
		t.Fatal(err)
	}
	conn, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := fmt.Sprintf("SELECT seq, toString(time), time_ns, type, request_id, operation, path, mount_point, mount_type, display_name, entity_id, accessor, policies, allowed, error, status, error_code, remote_address FROM %s.%s FINAL WHERE seq IN (1, 6, 14) ORDER BY seq", quote(cfg.Database), quote(cfg.Table))
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var (
			seq                                                      uint64
			tm, typ, rid, op, path, mp, mt, dn, eid, acc, er, ec, ra string
			ns                                                       uint32
			pol                                                      []string
			allowed                                                  uint8
			status                                                   uint16
		)
		if err := rows.Scan(&seq, &tm, &ns, &typ, &rid, &op, &path, &mp, &mt, &dn, &eid, &acc, &pol, &allowed, &er, &status, &ec, &ra); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d|%s.%09d|%s|%s|%s|%s|%s|%s|%s|%s|%.20s|%v|%d|%s|%d|%s|%s", seq, tm, ns, typ, rid, op, path, mp, mt, dn, eid, acc, pol, allowed, er, status, ec, ra))
	}
	want := []string{
		"1|2026-03-01 12:00:00.123456789|vigil.segment|||||||||[]|0||0||",
		"6|2026-03-01 12:00:00.123456789|response|req-1|create|secret/data/app|secret/|kv|userpass-alice|ent-1|hmac-sha256:9968305f|[default phi-reader]|0|permission denied|403|permission_denied|127.0.0.1",
		"14|2026-03-01 12:00:01.600000000|response|req-6|update|auth/userpass/login/bob|auth/userpass/|userpass||||[]|0|invalid username or password|400|invalid|10.0.0.8",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// fixtureRecords are the lines of the formats' golden chain log.
func fixtureRecords(tb testing.TB) []ship.Record {
	tb.Helper()
	f, err := os.Open("../../format/logline/testdata/chain.log")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []ship.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		m, err := logline.ScanMembers(line)
		if err != nil {
			tb.Fatal(err)
		}
		at, _ := logline.Time(line)
		out = append(out, ship.Record{Seq: m.Seq, NodeID: m.NodeID, PrevHash: m.PrevHash, Hash: m.Hash, Line: line, Time: at})
	}
	return out
}

func TestParseBlock(t *testing.T) {
	blk := func(kv map[string]string) config.Block {
		o := map[string]config.Value{}
		for k, v := range kv {
			o[k] = config.Value{Value: v, Line: 3, File: "vigil.hcl"}
		}
		return config.Block{Type: "clickhouse", Name: "wh", Options: o, Line: 1, File: "vigil.hcl"}
	}
	cfg, err := ParseBlock(blk(map[string]string{"addr": "c1:9000", "database": "audit", "batch_size": "5000"}))
	if err != nil || cfg.Table != "vigil_audit" || cfg.Username != "default" || !cfg.CreateTable {
		t.Fatalf("%+v %v", cfg, err)
	}
	for name, kv := range map[string]map[string]string{
		"unknown":   {"addr": "a", "tabel": "x"},
		"no addr":   {"table": "x"},
		"bad table": {"addr": "a", "table": "x; DROP TABLE y"},
		"bad bool":  {"addr": "a", "create_table": "maybe"},
	} {
		if _, err := ParseBlock(blk(kv)); err == nil || !strings.Contains(err.Error(), "vigil.hcl:") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// The newest checkpoint line of a node's chain is read back (the audit
// subsystem compares it with the local log when a device opens).
func TestLatestCheckpointLine(t *testing.T) {
	cfg := testConfig(t)
	shiptest.Use(t, "clickhouse")
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := fixtureRecords(t)
	var want []byte
	for _, r := range recs {
		if bytes.HasPrefix(r.Line, []byte(`{"type":"vigil.checkpoint"`)) {
			want = r.Line
		}
	}
	if want == nil {
		t.Fatal("the fixture has no checkpoint")
	}
	ctx := context.Background()
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestCheckpoint(ctx, "node-a")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("latest checkpoint: %s %v\nwant %s", got, err, want)
	}
	if got, err := s.LatestCheckpoint(ctx, "node-zz"); err != nil || got != nil {
		t.Fatalf("another node's: %s %v", got, err)
	}
}
