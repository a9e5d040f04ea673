// Package shiptest is the conformance suite every audit stream sink
// (ship.Sink) passes, run against real servers: Run(t, newTarget) checks
// that a live, rotating, compressing local log arrives complete and in a
// verifiable chain, that shipping resumes from the durable cursor, that
// re-sent batches collapse under (node_id, seq), and — when the target can
// take its server down — that an outage only delays delivery.
//
// It also holds the helpers tests use to reach the shared test services
// (.ci/services): testsvc.Env skips or fails per VIGIL_REQUIRE_SERVICES, and
// Lock serialises tests that stop a service with tests that use it, across
// test processes.
package shiptest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/core/storage"
)

// Target is one sink implementation under test, writing to a fresh, empty
// destination (a new topic, a new table) on a real server.
type Target struct {
	Sink ship.Sink
	// Read returns every original log line the destination holds, in the
	// order a consumer verifying the chain reads them (duplicates left in).
	Read func(ctx context.Context) ([][]byte, error)
	// Stop and Start take the remote server down and bring it back with
	// its data. Nil skips the outage test.
	Stop, Start func(tb testing.TB)
}

// NewTarget returns a Target with a fresh destination.
type NewTarget func(tb testing.TB) Target

// Run runs the conformance suite.
func Run(t *testing.T, newTarget NewTarget) {
	t.Run("LiveLogArrivesComplete", func(t *testing.T) { testLiveLog(t, newTarget(t)) })
	t.Run("ResumesFromCursor", func(t *testing.T) { testResume(t, newTarget(t)) })
	t.Run("ResendCollapses", func(t *testing.T) { testResend(t, newTarget(t)) })
	t.Run("OutageOnlyDelays", func(t *testing.T) {
		tg := newTarget(t)
		if tg.Stop == nil {
			t.Skip("this target cannot stop its server")
		}
		testOutage(t, tg)
	})
}

// Log is a real chain writer in a temp folder, with the ship.Log a
// shipper tails.
type Log struct {
	W    *chain.Writer
	Path string
	Node string
}

// MustLog opens a chain writer (gzip of rotated segments on, fsync off:
// the writer's durability is audit/chain's business, not the sink's).
func MustLog(tb testing.TB, node string) *Log {
	tb.Helper()
	return MustLogCompress(tb, node, true)
}

// MustLogCompress is MustLog with background gzip of rotated segments on
// or off.
func MustLogCompress(tb testing.TB, node string, compress bool) *Log {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "audit.log")
	w, err := chain.Open(chain.Config{Path: path, NodeID: node, Fsync: chain.FsyncNone, Compress: compress,
		CheckpointEvery: 500, CheckpointInterval: -1, WatchInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = w.Close() })
	return &Log{W: w, Path: path, Node: node}
}

// ShipLog is the ship.Log of l.
func (l *Log) ShipLog() ship.Log {
	return ship.Log{Device: "file", Path: l.Path, Head: func() (uint64, bool) { s, _ := l.W.Head(); return s, true }}
}

// Append appends n Vault-shaped entries.
func (l *Log) Append(tb testing.TB, n int, tag string) {
	tb.Helper()
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"time":"%s","type":"request","auth":{"display_name":"userpass-alice","policies":["default"],"policy_results":{"allowed":true}},"request":{"id":"%s-%d","operation":"read","mount_type":"kv","mount_point":"secret/","path":"secret/data/app/%d","remote_address":"10.0.0.7"}}`,
			time.Now().UTC().Format(time.RFC3339Nano), tag, i, i)
		if _, err := l.W.Append(context.Background(), []byte(body)); err != nil {
			tb.Fatal(err)
		}
	}
}

// Head is the writer's durable head.
func (l *Log) Head() uint64 { s, _ := l.W.Head(); return s }

// MustShipper returns a started shipper of l into sink with the given
// cursor store, stopped at cleanup.
func MustShipper(tb testing.TB, name string, l *Log, sink ship.Sink, cursors ship.CursorStore) *ship.Shipper {
	tb.Helper()
	sh, err := ship.NewShipper(ship.Config{Name: name, Type: "test", NodeID: l.Node, Sink: sink, Cursors: cursors,
		Log: func() (ship.Log, error) { return l.ShipLog(), nil }, BatchSize: 500, Linger: 5 * time.Millisecond,
		Poll: 2 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, WriteTimeout: 20 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	sh.Start()
	tb.Cleanup(func() { _ = sh.Stop(context.Background()) })
	return sh
}

// WaitFor polls cond every 10ms until it holds or timeout passes.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitCaughtUp waits until sh acknowledged everything up to seq.
func WaitCaughtUp(tb testing.TB, sh *ship.Shipper, seq uint64, timeout time.Duration) {
	tb.Helper()
	WaitFor(tb, timeout, fmt.Sprintf("stream %s to ship up to seq %d", sh.Name(), seq), func() bool {
		st := sh.Status()
		return st.Cursor.Seq >= seq
	})
}

// MustVerify reads the destination back and verifies it: one chain per
// node, from genesis (or trusting the first line when partial is set),
// every seq present exactly once after dropping repeats, up to at least
// lastSeq. It returns the node's result.
func MustVerify(tb testing.TB, read func(context.Context) ([][]byte, error), node string, lastSeq uint64) ship.NodeResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lines, err := read(ctx)
	if err != nil {
		tb.Fatalf("read back: %v", err)
	}
	v := ship.NewVerifier(ctx, ship.VerifyOptions{Window: 1 << 16})
	for _, l := range lines {
		if err := v.Add(l); err != nil {
			tb.Fatal(err)
		}
	}
	res := v.Close()
	if len(res) != 1 || res[0].NodeID != node {
		tb.Fatalf("expected one chain of node %s, got %v", node, res)
	}
	r := res[0]
	if !r.Complete() {
		tb.Fatalf("chain read back from the sink does not verify: %s", r)
	}
	if r.Report.FirstSeq != 1 || r.Report.LastSeq < lastSeq {
		tb.Fatalf("sink holds seq %d..%d, want 1..%d", r.Report.FirstSeq, r.Report.LastSeq, lastSeq)
	}
	return r
}

func memCursors() ship.StorageCursors { return ship.StorageCursors{S: storage.NewMemory()} }

// testLiveLog: the log is written, rotated and gzip'd while it ships.
func testLiveLog(t *testing.T, tg Target) {
	l := MustLog(t, "node-live")
	sh := MustShipper(t, "live", l, tg.Sink, memCursors())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 4; i++ {
			l.Append(t, 700, fmt.Sprint("live", i))
			if err := l.W.Rotate(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	head := l.Head()
	WaitCaughtUp(t, sh, head, 2*time.Minute)
	r := MustVerify(t, tg.Read, l.Node, head)
	t.Logf("%s", r)
	if st := sh.Status(); st.LagEntries != 0 || st.Shipped < head {
		t.Fatalf("status after catching up: lag %d, shipped %d, head %d", st.LagEntries, st.Shipped, head)
	}
}

// testResume: a second shipper continues after the first one's cursor.
func testResume(t *testing.T, tg Target) {
	l := MustLog(t, "node-resume")
	cursors := memCursors()
	l.Append(t, 400, "a")
	sh := MustShipper(t, "resume", l, tg.Sink, cursors)
	first := l.Head()
	WaitCaughtUp(t, sh, first, time.Minute)
	if err := sh.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	cur, err := cursors.LoadCursor(context.Background(), "resume", l.Node)
	if err != nil || cur == nil || cur.Seq != first {
		t.Fatalf("saved cursor %+v (%v), want seq %d", cur, err, first)
	}
	if err := l.W.Rotate(); err != nil {
		t.Fatal(err)
	}
	l.Append(t, 400, "b")
	sh2 := MustShipper(t, "resume", l, tg.Sink, cursors)
	WaitCaughtUp(t, sh2, l.Head(), time.Minute)
	if st := sh2.Status(); st.Shipped != l.Head()-first {
		t.Fatalf("the second shipper sent %d lines, want %d (it must start after the cursor)", st.Shipped, l.Head()-first)
	}
	r := MustVerify(t, tg.Read, l.Node, l.Head())
	if r.Duplicates != 0 {
		t.Fatalf("%d duplicates after a clean stop and resume", r.Duplicates)
	}
}

// testResend: the same batch written twice is one chain after dedupe.
func testResend(t *testing.T, tg Target) {
	l := MustLog(t, "node-resend")
	l.Append(t, 300, "x")
	tl := ship.NewTailer(ship.TailerConfig{Path: l.Path, NodeID: l.Node, Head: l.ShipLog().Head})
	defer tl.Close()
	var recs []ship.Record
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for uint64(len(recs)) < l.Head() {
		batch, err := tl.Next(ctx, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, batch...)
	}
	for _, part := range [][]ship.Record{recs[:200], recs[100:], recs} { // overlapping re-sends
		mustWrite(t, tg.Sink, part)
	}
	r := MustVerify(t, tg.Read, l.Node, l.Head())
	if r.Unique != uint64(len(recs)) {
		t.Fatalf("unique %d, want %d", r.Unique, len(recs))
	}
	_ = tg.Sink.Close()
	mustWrite(t, tg.Sink, recs[:10]) // Write after Close reconnects
}

// mustWrite writes recs as the shipper does: a failed write (e.g. a topic
// the broker is still creating) is retried, for up to 30 seconds.
func mustWrite(tb testing.TB, s ship.Sink, recs []ship.Record) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := s.Write(ctx, recs)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("write: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testOutage: the server goes down while the log keeps growing; appends
// are never slowed by it; everything arrives once it is back.
func testOutage(t *testing.T, tg Target) {
	l := MustLog(t, "node-outage")
	sh := MustShipper(t, "outage", l, tg.Sink, memCursors())
	l.Append(t, 200, "before")
	WaitCaughtUp(t, sh, l.Head(), time.Minute)
	tg.Stop(t)
	start := time.Now()
	l.Append(t, 600, "during")
	if err := l.W.Rotate(); err != nil {
		t.Fatal(err)
	}
	l.Append(t, 200, "during2")
	appendTook := time.Since(start)
	WaitFor(t, time.Minute, "the shipper to report the outage", func() bool {
		st := sh.Status()
		return !st.Up && st.LastError != "" && st.LagEntries >= 800
	})
	st := sh.Status()
	t.Logf("during the outage: state %s, lag %d entries / %.1fs, error %q (1000 appends took %s)", st.State, st.LagEntries, st.LagSeconds, st.LastError, appendTook)
	tg.Start(t)
	WaitCaughtUp(t, sh, l.Head(), 3*time.Minute)
	MustVerify(t, tg.Read, l.Node, l.Head())
	if st := sh.Status(); st.LagEntries != 0 || !st.Up {
		t.Fatalf("after recovery: %+v", st)
	}
}

// BenchBody is a realistic audit entry body (a KV v2 write request with
// HMAC'd token, accessor and data, about 1.2 KB), as the audit broker
// writes it.
const BenchBody = `{"time":"2026-03-01T12:00:00.123456789Z","type":"request","auth":{"client_token":"hmac-sha256:0f54572632d9fc7e48a24bb4a64b80351587f98b732463ac60b4990a400a20d0","accessor":"hmac-sha256:9968305f52177598d9aa2d8f24a328d9417af46d4622ad1584ce0fea29ad024f","display_name":"userpass-alice","policies":["default","phi-reader"],"token_policies":["default","phi-reader"],"policy_results":{"allowed":true,"granting_policies":[{"name":"phi-reader","namespace_id":"root","type":"acl"}]},"metadata":{"username":"alice"},"entity_id":"ent-1","token_type":"service","token_ttl":3600,"token_issue_time":"2026-03-01T11:59:00Z"},"request":{"id":"7f9b8c1e-1b7e-4c4f-9d7b-3c3a0e6f2a11","operation":"create","mount_type":"kv","mount_point":"secret/","mount_accessor":"kv_1a2b3c4d","mount_class":"secret","client_token":"hmac-sha256:0f54572632d9fc7e48a24bb4a64b80351587f98b732463ac60b4990a400a20d0","client_token_accessor":"hmac-sha256:9968305f52177598d9aa2d8f24a328d9417af46d4622ad1584ce0fea29ad024f","namespace":{"id":"root"},"path":"secret/data/app","data":{"data":{"password":"hmac-sha256:5cc935b01a05052448b89e0dfc39f87c1427571750db69fe45203a8c505b7b1c","port":5432},"version":"7"},"remote_address":"127.0.0.1","remote_port":51000}}`

// BenchShip measures how fast a sink absorbs a backlog: it writes b.N
// entries (BenchBody) to a fresh log (plain segments: no background gzip
// competing for the CPU), then ships them from scratch with batchSize
// records per write, and reports entries/s and MB/s. newSink returns a
// sink writing to a fresh destination.
func BenchShip(b *testing.B, batchSize int, newSink func(tb testing.TB) ship.Sink) {
	b.Helper()
	b.StopTimer()
	n := max(b.N, 1000)
	l := MustLogCompress(b, "node-bench", false)
	body := []byte(BenchBody)
	for i := 0; i < n; i++ {
		if _, err := l.W.Append(context.Background(), body); err != nil {
			b.Fatal(err)
		}
	}
	head := l.Head()
	var bytes int64
	infos, _ := chain.ListSegments(l.Path)
	for _, si := range infos {
		bytes += si.Size
	}
	sink := newSink(b)
	// Warm up: connect, create the topic or table.
	mustWrite(b, sink, nil)
	sh, err := ship.NewShipper(ship.Config{Name: "bench", Type: "bench", NodeID: l.Node, Sink: sink, Cursors: memCursors(),
		Log: func() (ship.Log, error) { return l.ShipLog(), nil }, BatchSize: batchSize, Linger: -1, Poll: time.Millisecond,
		MinBackoff: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytes / int64(n))
	b.StartTimer()
	start := time.Now()
	sh.Start()
	for sh.Status().Cursor.Seq < head {
		if st := sh.Status(); st.Errors > 0 && !st.Up {
			b.Logf("retrying: %s", st.LastError)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = sh.Stop(context.Background())
	b.ReportMetric(float64(head)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(0, "ns/op")
}
