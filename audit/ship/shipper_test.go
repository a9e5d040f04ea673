package ship_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/kafka"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/storage"
)

func kafkaSink(t *testing.T, fk *shiptest.FakeKafka, topic string) *kafka.Sink {
	t.Helper()
	s, err := kafka.NewSink(kafka.Config{Brokers: []string{fk.Addr()}, Topic: topic, AutoCreateTopic: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newShipper(t *testing.T, l *shiptest.Log, sink ship.Sink, cursors ship.CursorStore) *ship.Shipper {
	t.Helper()
	sh, err := ship.NewShipper(ship.Config{Name: "s", Type: "kafka", NodeID: l.Node, Sink: sink, Cursors: cursors,
		Log: func() (ship.Log, error) { return l.ShipLog(), nil }, Poll: 2 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sh.Stop(context.Background()) })
	return sh
}

// The segment guard keeps every segment of the tailed device until the
// cursor is loaded and has passed it, and never claims another device's.
func TestGuard(t *testing.T) {
	fk := shiptest.StartKafka(t)
	l := shiptest.MustLogCompress(t, "node-g", false) // segment names stay put
	l.Append(t, 50, "a")
	if err := l.W.Rotate(); err != nil {
		t.Fatal(err)
	}
	l.Append(t, 50, "b")
	segs, err := l.W.Segments()
	if err != nil {
		t.Fatal(err)
	}
	rotated, active := segs[0].Path, segs[len(segs)-1].Path
	sh := newShipper(t, l, kafkaSink(t, fk, "guard"), ship.StorageCursors{S: storage.NewMemory()})
	if h, busy := sh.Guard(rotated); !busy || h != "kafka/s" {
		t.Fatalf("before the cursor is loaded: %q %v", h, busy)
	}
	if _, busy := sh.Guard(filepath.Join(t.TempDir(), "audit-2026-01-01T00-00-00.000.log")); busy {
		t.Fatal("claimed another folder's segment")
	}
	sh.Start()
	shiptest.WaitCaughtUp(t, sh, l.Head(), time.Minute)
	if _, busy := sh.Guard(rotated); busy {
		t.Fatalf("shipped segment %s still held", rotated)
	}
	if _, busy := sh.Guard(active); !busy {
		t.Fatal("the active segment is never released")
	}
	if n, b := sh.Held(); n != 0 || b != 0 {
		t.Fatalf("held %d segments, %d bytes after catching up", n, b)
	}
}

// A saved cursor whose hash is not in the local log (the log was replaced
// by another chain) stalls the stream with a clear error instead of
// shipping a broken chain.
func TestStallsOnForeignChain(t *testing.T) {
	fk := shiptest.StartKafka(t)
	l := shiptest.MustLog(t, "node-x")
	l.Append(t, 20, "a")
	sink := kafkaSink(t, fk, "stall")
	cursors := ship.StorageCursors{S: storage.NewMemory()}
	if err := cursors.SaveCursor(context.Background(), "s", ship.Cursor{NodeID: "node-x", Seq: 5, Hash: strings.Repeat("ab", 32),
		Path: l.Path, Target: sink.Target()}); err != nil {
		t.Fatal(err)
	}
	sh := newShipper(t, l, sink, cursors)
	sh.Start()
	shiptest.WaitFor(t, 30*time.Second, "the stream to stall", func() bool { return sh.Status().State == ship.StateStalled })
	st := sh.Status()
	if !strings.Contains(st.LastError, "does not continue the shipped chain") || st.Cursor.Seq != 5 || st.LagEntries == 0 {
		t.Fatalf("status %+v", st)
	}
}

// A cursor saved for another destination is ignored: the new destination
// gets the whole log.
func TestCursorForAnotherTargetIsIgnored(t *testing.T) {
	fk := shiptest.StartKafka(t)
	l := shiptest.MustLog(t, "node-y")
	l.Append(t, 20, "a")
	cursors := ship.StorageCursors{S: storage.NewMemory()}
	if err := cursors.SaveCursor(context.Background(), "s", ship.Cursor{NodeID: "node-y", Seq: 10, Hash: "x", Path: l.Path, Target: "kafka:old-topic"}); err != nil {
		t.Fatal(err)
	}
	sh := newShipper(t, l, kafkaSink(t, fk, "new-topic"), cursors)
	sh.Start()
	shiptest.WaitCaughtUp(t, sh, l.Head(), time.Minute)
	if st := sh.Status(); st.Shipped != l.Head() {
		t.Fatalf("shipped %d lines, want all %d", st.Shipped, l.Head())
	}
}
