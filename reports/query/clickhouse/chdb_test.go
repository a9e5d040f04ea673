package clickhouse_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/audit/ship"
	chship "github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/clickhouse"
	"github.com/vigilsec/vigil/reports/query/embedded"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

// chdbEngine is ClickHouse 26.x in process (PyPI chdb), driven through
// testdata/chdb_server.py: the backend's schema and every statement it
// generates run there exactly as they would on a current server.
type chdbEngine struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	version string
}

func startChDB(tb testing.TB) *chdbEngine {
	tb.Helper()
	py := testsvc.Env(tb, "VIGIL_TEST_CHDB_PYTHON")
	cmd := exec.Command(py, "testdata/chdb_server.py", tb.TempDir())
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	e := &chdbEngine{cmd: cmd, in: in, out: bufio.NewReaderSize(outp, 1<<20)}
	tb.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	line, err := e.out.ReadBytes('\n')
	if err != nil {
		tb.Fatalf("chdb did not start: %v: %s", err, stderr.String())
	}
	var hello struct {
		Engine string `json:"engine"`
	}
	if err := json.Unmarshal(line, &hello); err != nil {
		tb.Fatal(err)
	}
	e.version = hello.Engine
	if major, _ := strconv.Atoi(strings.Split(e.version, ".")[0]); major < 24 {
		tb.Fatalf("chdb runs ClickHouse %s, not a current release", e.version)
	}
	return e
}

type chdbAnswer struct {
	Meta  []struct{ Name, Type string } `json:"meta"`
	Data  [][]json.RawMessage           `json:"data"`
	Error string                        `json:"error"`
	Code  int                           `json:"code"`
}

// Exec runs one statement (clickhouse.Config.Exec).
func (e *chdbEngine) Exec(_ context.Context, sql string) (driver.Rows, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	req, _ := json.Marshal(map[string]string{"sql": sql})
	if _, err := e.in.Write(append(req, '\n')); err != nil {
		return nil, err
	}
	line, err := e.out.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var a chdbAnswer
	if err := json.Unmarshal(line, &a); err != nil {
		return nil, err
	}
	if a.Error != "" {
		if a.Code == 60 || a.Code == 81 {
			return nil, fmt.Errorf("%w: %s", clickhouse.ErrNoTable, a.Error)
		}
		return nil, fmt.Errorf("chdb: %s\nSQL: %s", a.Error, sql)
	}
	return &jsonRows{a: a}, nil
}

// jsonRows is driver.Rows over a JSONCompact answer.
type jsonRows struct {
	a   chdbAnswer
	i   int
	err error
}

var _ driver.Rows = (*jsonRows)(nil)

func (r *jsonRows) Next() bool                       { r.i++; return r.i <= len(r.a.Data) }
func (r *jsonRows) HasData() bool                    { return len(r.a.Data) > 0 }
func (r *jsonRows) ColumnTypes() []driver.ColumnType { return nil }
func (r *jsonRows) Totals(...any) error              { return nil }
func (r *jsonRows) Close() error                     { return nil }
func (r *jsonRows) Err() error                       { return r.err }
func (r *jsonRows) ScanStruct(any) error             { return errors.New("chdb rows: ScanStruct is not used") }
func (r *jsonRows) Columns() []string {
	out := make([]string, len(r.a.Meta))
	for i, m := range r.a.Meta {
		out[i] = m.Name
	}
	return out
}

// Scan converts the JSONCompact values into the destinations the backend
// passes (ClickHouse writes 64-bit integers as numbers or strings
// depending on settings; DateTime as "YYYY-MM-DD hh:mm:ss" in its zone).
func (r *jsonRows) Scan(dest ...any) error {
	row := r.a.Data[r.i-1]
	if len(dest) != len(row) {
		return fmt.Errorf("chdb rows: %d destinations for %d columns", len(dest), len(row))
	}
	for i, d := range dest {
		raw := row[i]
		num := func() (string, error) {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				return s, nil
			}
			return string(raw), nil
		}
		switch p := d.(type) {
		case *string:
			if err := json.Unmarshal(raw, p); err != nil {
				*p = string(raw)
			}
		case *[]string:
			if err := json.Unmarshal(raw, p); err != nil {
				return err
			}
		case *time.Time:
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return err
			}
			t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.UTC)
			if err != nil {
				return err
			}
			*p = t
		case *uint64, *uint32, *uint16, *uint8, *int64, *int32, *int:
			s, _ := num()
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return fmt.Errorf("chdb rows: column %s: %v", r.a.Meta[i].Name, err)
			}
			switch q := p.(type) {
			case *uint64:
				*q = n
			case *uint32:
				*q = uint32(n)
			case *uint16:
				*q = uint16(n)
			case *uint8:
				*q = uint8(n)
			case *int64:
				*q = int64(n)
			case *int32:
				*q = int32(n)
			case *int:
				*q = int(n)
			}
		default:
			return fmt.Errorf("chdb rows: unsupported destination %T", d)
		}
	}
	return nil
}

// chdbLoad creates the stream's table on chdb with the stream's own
// schema and inserts the log's rows with the stream's own row mapping
// (chship.RowOf), the first third twice as after a resend.
func chdbLoad(tb testing.TB, e *chdbEngine, db, table string, lines [][]byte) {
	tb.Helper()
	must := func(sql string) {
		tb.Helper()
		if _, err := e.Exec(context.Background(), sql); err != nil {
			tb.Fatal(err)
		}
	}
	must("CREATE DATABASE IF NOT EXISTS `" + db + "`")
	must(chship.Schema(db, table))
	var rows []string
	for i, l := range lines {
		m, err := logline.ScanMembers(l)
		if err != nil {
			tb.Fatal(err)
		}
		at, _ := logline.Time(l)
		row := chship.RowOf(ship.Record{Seq: m.Seq, NodeID: m.NodeID, PrevHash: m.PrevHash, Hash: m.Hash, Line: l, Time: at})
		b, err := json.Marshal(map[string]any{"node_id": row.NodeID, "seq": row.Seq, "time": row.Time.UTC().Format("2006-01-02 15:04:05"),
			"time_ns": row.TimeNS, "type": row.Type, "request_id": row.RequestID, "operation": row.Operation, "path": row.Path,
			"mount_point": row.MountPoint, "mount_type": row.MountType, "display_name": row.DisplayName, "entity_id": row.EntityID,
			"accessor": row.Accessor, "policies": row.Policies, "allowed": row.Allowed, "error": row.Error, "status": row.Status,
			"error_code": row.ErrorCode, "remote_address": row.RemoteAddress, "prev_hash": row.PrevHash, "hash": row.Hash, "raw": row.Raw})
		if err != nil {
			tb.Fatal(err)
		}
		rows = append(rows, string(b))
		if i < len(lines)/3 {
			rows = append(rows, string(b))
		}
	}
	for start := 0; start < len(rows); start += 500 {
		must("INSERT INTO `" + db + "`.`" + table + "` FORMAT JSONEachRow\n" + strings.Join(rows[start:min(start+500, len(rows))], "\n"))
	}
}

var chdbTables sync.Map

func chdbBackend(tb testing.TB, e *chdbEngine, l *querytest.Log) *clickhouse.Backend {
	tb.Helper()
	n := 0
	chdbTables.Range(func(any, any) bool { n++; return true })
	table := fmt.Sprintf("t%d_%d", n, time.Now().UnixNano()%1e9)
	chdbTables.Store(table, true)
	chdbLoad(tb, e, "audit", table, querytest.ReadLines(tb, l.Path))
	b, err := clickhouse.New(clickhouse.Config{CH: chship.Config{Database: "audit", Table: table}, NodeID: l.NodeID, Exec: e.Exec,
		PublicKey: func() (ed25519.PublicKey, bool) { return l.PublicKey(), true },
		Hash:      func(_ context.Context, s string) (string, error) { return l.Salt.Hash(s), nil }})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestConformanceOnChDB runs the backend conformance suite with every
// statement the ClickHouse backend generates executed by ClickHouse 26.x
// (chdb), over the stream's schema and rows.
func TestConformanceOnChDB(t *testing.T) {
	e := startChDB(t)
	t.Logf("chdb runs ClickHouse %s", e.version)
	querytest.Run(t, func(tb testing.TB, l *querytest.Log) query.Backend { return chdbBackend(tb, e, l) })
}

// TestChDBSchema: the stream's CREATE TABLE runs on ClickHouse 26.x and
// gives the column types the sink inserts (ClickHouse 18.16 is what runs
// as a server here).
func TestChDBSchema(t *testing.T) {
	e := startChDB(t)
	if _, err := e.Exec(context.Background(), "CREATE DATABASE IF NOT EXISTS s"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Exec(context.Background(), chship.Schema("s", "vigil_audit")); err != nil {
		t.Fatalf("the stream's schema does not run on ClickHouse %s: %v", e.version, err)
	}
	rows, err := e.Exec(context.Background(), "SELECT name, type FROM system.columns WHERE database = 's' AND table = 'vigil_audit' ORDER BY position")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		got = append(got, n+" "+typ)
	}
	want := "node_id String,seq UInt64,time DateTime('UTC'),time_ns UInt32,type String,request_id String,operation String,path String," +
		"mount_point String,mount_type String,display_name String,entity_id String,accessor String,policies Array(String),allowed UInt8," +
		"error String,status UInt16,error_code String,remote_address String,prev_hash String,hash String,raw String"
	if strings.Join(got, ",") != want {
		t.Fatalf("columns on ClickHouse %s:\n%s\nwant\n%s", e.version, strings.Join(got, ","), want)
	}
}

// TestChDBMatchesEmbedded: every filter of the conformance table (the new
// filters included), the coverage query and paging give the same answer on
// ClickHouse 26.x as the embedded backend over the same log.
func TestChDBMatchesEmbedded(t *testing.T) {
	e := startChDB(t)
	l := querytest.MustLog(t, t.TempDir(), querytest.Traffic(1, 400, querytest.Start, querytest.Step), querytest.LogOptions{})
	ix, err := embedded.Open(embedded.Config{Path: l.Path, Dir: filepath.Join(t.TempDir(), "ix"), NodeID: l.NodeID,
		PublicKey: func() (ed25519.PublicKey, bool) { return l.PublicKey(), true },
		Hash:      func(_ context.Context, s string) (string, error) { return l.Salt.Hash(s), nil }})
	if err != nil {
		t.Fatal(err)
	}
	ix.Start()
	t.Cleanup(func() { _ = ix.Close() })
	head, _ := l.Head()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ix.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	ch := chdbBackend(t, e, l)
	for _, c := range querytest.Cases() {
		var want, got []query.Record
		if _, err := ix.Scan(ctx, c.Filter, func(r query.Record) error { want = append(want, r); return nil }); err != nil {
			t.Fatalf("%s: embedded: %v", c.Name, err)
		}
		if _, err := ch.Scan(ctx, c.Filter, func(r query.Record) error { got = append(got, r); return nil }); err != nil {
			t.Fatalf("%s: chdb: %v", c.Name, err)
		}
		if d := querytest.Diff(want, got); d != "" {
			t.Errorf("%s: chdb and embedded differ: %s", c.Name, d)
		}
		// The first page too (LIMIT and the cursor's conditions).
		f := c.Filter
		f.Limit = 7
		pe, err1 := ix.Query(ctx, f)
		pc, err2 := ch.Query(ctx, f)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: page: %v / %v", c.Name, err1, err2)
		}
		if d := querytest.Diff(pe.Records, pc.Records); d != "" {
			t.Errorf("%s: first page differs: %s", c.Name, d)
		}
	}
	ce, err := ix.Coverage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := ch.Coverage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ce) != 1 || len(cc) != 1 || ce[0].LastSeq != cc[0].LastSeq || ce[0].FirstSeq != cc[0].FirstSeq || !ce[0].First.Equal(cc[0].First) ||
		ce[0].Records != cc[0].Records || ce[0].DroppedBefore != cc[0].DroppedBefore || len(cc[0].Gaps) != 0 {
		t.Errorf("coverage: embedded %+v, chdb %+v", ce, cc)
	}
}
