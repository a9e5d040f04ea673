package ship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// mustWriter opens a real chain writer in a temp folder. Checkpoints and
// the file watcher are off unless cfg sets them; fsync mode "none" keeps
// the tests fast (durability of the writer is audit/chain's business).
func mustWriter(tb testing.TB, cfg chain.Config) *chain.Writer {
	tb.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(tb.TempDir(), "audit.log")
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "node-t"
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = -1
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = -1
	}
	if cfg.WatchInterval == 0 {
		cfg.WatchInterval = -1
	}
	w, err := chain.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = w.Close() })
	return w
}

func appendN(tb testing.TB, w *chain.Writer, n int, tag string) {
	tb.Helper()
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"time":"2026-03-01T12:00:00Z","type":"request","request":{"id":"%s-%d","operation":"read","path":"secret/data/x"}}`, tag, i)
		if _, err := w.Append(context.Background(), []byte(body)); err != nil {
			tb.Fatal(err)
		}
	}
}

func writerHead(w *chain.Writer) HeadFunc {
	return func() (uint64, bool) { s, _ := w.Head(); return s, true }
}

// collect reads from t until it has returned every line up to seq want.
func collect(tb testing.TB, t *Tailer, want uint64) []Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []Record
	for len(out) == 0 || out[len(out)-1].Seq < want {
		recs, err := t.Next(ctx, 300, time.Millisecond)
		if err != nil {
			last := uint64(0)
			if len(out) > 0 {
				last = out[len(out)-1].Seq
			}
			tb.Fatalf("tailer after seq %d (want %d): %v", last, want, err)
		}
		out = append(out, recs...)
	}
	return out
}

// verifyRecords checks the records form the chain from genesis (or after
// the given anchor) with the chain verifier itself.
func verifyRecords(tb testing.TB, recs []Record, after *chain.StartAfter) *chain.Report {
	tb.Helper()
	var buf bytes.Buffer
	for i, r := range recs {
		if i > 0 && r.Seq != recs[i-1].Seq+1 {
			tb.Fatalf("seq %d follows %d", r.Seq, recs[i-1].Seq)
		}
		buf.Write(r.Line)
		buf.WriteByte('\n')
	}
	rep, err := chain.VerifyReader(context.Background(), &buf, chain.VerifyOptions{StartAfter: after})
	if err != nil || !rep.OK {
		tb.Fatalf("verify shipped lines: %v %v", rep, err)
	}
	return rep
}

// The tailer follows the writer live across rotations and background
// gzip compression, and returns every line exactly once, in order.
func TestTailerFollowsRotationAndCompression(t *testing.T) {
	w := mustWriter(t, chain.Config{Fsync: chain.FsyncNone, Compress: true})
	tl := NewTailer(TailerConfig{Path: pathOf(t, w), NodeID: "node-t", Head: writerHead(w), Poll: time.Millisecond})
	defer tl.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 6; i++ {
			appendN(t, w, 250, fmt.Sprint("r", i))
			if err := w.Rotate(); err != nil {
				t.Error(err)
			}
		}
	}()
	recs := collect(t, tl, 700) // while the writer is still writing and rotating
	wg.Wait()
	head, _ := w.Head()
	recs = append(recs, collect(t, tl, head)...)
	if recs[0].Seq != 1 {
		t.Fatalf("first seq %d", recs[0].Seq)
	}
	rep := verifyRecords(t, recs, nil)
	// Every rotation is in what the tailer returned: one segment header
	// per segment, all seven of them.
	if rep.Segments != 7 {
		t.Fatalf("the tailer returned %d segment headers, want 7 (6 rotations)", rep.Segments)
	}
	// And on disk: once the background compressor has gzip'd all six
	// rotated segments, the listing holds each segment exactly once.
	waitCond(t, "all rotated segments compressed", func() bool { return w.Stats().Compressed >= 6 })
	segs, err := w.Segments()
	if err != nil {
		t.Fatal(err)
	}
	gz := 0
	for i, s := range segs {
		if s.Index != uint64(i+1) {
			t.Fatalf("segment %d on disk has index %d", i, s.Index)
		}
		if s.Compressed {
			gz++
		}
	}
	t.Logf("%d lines over %d segments (%d gzip'd)", len(recs), len(segs), gz)
	if len(segs) != 7 || gz != 6 {
		t.Fatalf("got %d segments (%d gzip'd), want 7 (6 gzip'd)", len(segs), gz)
	}
}

// waitCond polls cond until it holds, failing after 20s.
func waitCond(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// pathOf returns the writer's active path.
func pathOf(tb testing.TB, w *chain.Writer) string {
	segs, err := w.Segments()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range segs {
		if s.Active {
			return s.Path
		}
	}
	tb.Fatal("no active segment")
	return ""
}

// Starting after a cursor reads old (compressed) segments from the right
// line; a cursor hash that is not in the log stops the tailer.
func TestTailerStartsAfterCursor(t *testing.T) {
	w := mustWriter(t, chain.Config{Fsync: chain.FsyncNone, Compress: true})
	appendN(t, w, 100, "a")
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 100, "b")
	all := collect(t, NewTailer(TailerConfig{Path: pathOf(t, w), Head: writerHead(w)}), 150)
	at := all[49] // seq 50, in the first (possibly gzip'd) segment
	tl := NewTailer(TailerConfig{Path: pathOf(t, w), NodeID: "node-t", After: Position{Seq: at.Seq, Hash: at.Hash}, Head: writerHead(w)})
	head, _ := w.Head()
	recs := collect(t, tl, head)
	if recs[0].Seq != at.Seq+1 {
		t.Fatalf("started at seq %d, want %d", recs[0].Seq, at.Seq+1)
	}
	verifyRecords(t, recs, &chain.StartAfter{Seq: at.Seq, Hash: at.Hash})

	bad := NewTailer(TailerConfig{Path: pathOf(t, w), After: Position{Seq: at.Seq, Hash: all[10].Hash}, Head: writerHead(w)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := bad.Next(ctx, 10, 0); !errors.Is(err, ErrChainMismatch) {
		t.Fatalf("wrong cursor hash: got %v, want ErrChainMismatch", err)
	}
	other := NewTailer(TailerConfig{Path: pathOf(t, w), NodeID: "someone-else", Head: writerHead(w)})
	if _, err := other.Next(ctx, 10, 0); !errors.Is(err, ErrChainMismatch) {
		t.Fatalf("other node: got %v, want ErrChainMismatch", err)
	}
}

// Lines past the writer's durable head are held back, and a batch whose
// fsync fails (and which the writer truncates away) is never returned, even
// when the tailer read its bytes: the tailer re-reads the lines written in
// its place.
func TestTailerNeverShipsATruncatedBatch(t *testing.T) {
	var failNext atomic.Bool
	inSync, release := make(chan struct{}), make(chan struct{})
	w := mustWriter(t, chain.Config{Fsync: chain.FsyncAlways, Faults: &chain.Faults{
		BeforeSync: func() error {
			if failNext.CompareAndSwap(true, false) {
				close(inSync)
				<-release // the doomed batch is in the file, not yet fsynced
				return errors.New("injected fsync failure")
			}
			return nil
		},
	}})
	appendN(t, w, 20, "ok")
	head1, _ := w.Head()
	tl := NewTailer(TailerConfig{Path: pathOf(t, w), Head: writerHead(w), Poll: time.Millisecond})
	first := collect(t, tl, head1)

	failNext.Store(true)
	appendErr := make(chan error, 1)
	go func() {
		_, err := w.Append(context.Background(), []byte(`{"time":"2026-03-01T12:00:00Z","type":"request","request":{"id":"doomed"}}`))
		appendErr <- err
	}()
	<-inSync
	// The tailer reads the doomed line but must hold it: it is past the
	// durable head.
	deadline := time.Now().Add(10 * time.Second)
	for tl.LastRead() <= head1 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		recs, _ := tl.Next(ctx, 10, 0)
		cancel()
		if len(recs) > 0 {
			t.Fatalf("returned %d lines past the durable head", len(recs))
		}
	}
	if tl.LastRead() != head1+1 {
		t.Fatalf("the tailer did not read the unsynced line (last read %d)", tl.LastRead())
	}
	close(release)
	if err := <-appendErr; err == nil {
		t.Fatal("the injected fsync failure did not fail the append")
	}
	appendN(t, w, 5, "after")
	head2, _ := w.Head()
	rest := collect(t, tl, head2)
	for _, r := range rest {
		if bytes.Contains(r.Line, []byte("doomed")) {
			t.Fatalf("shipped the truncated line seq %d", r.Seq)
		}
	}
	verifyRecords(t, append(first, rest...), nil)
}

// Segments deleted before they were read are reported as a gap and
// tailing continues with what is left.
func TestTailerReportsDeletedSegments(t *testing.T) {
	w := mustWriter(t, chain.Config{Fsync: chain.FsyncNone})
	appendN(t, w, 30, "a")
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	appendN(t, w, 30, "b")
	segs, _ := w.Segments()
	if err := os.Remove(segs[0].Path); err != nil {
		t.Fatal(err)
	}
	tl := NewTailer(TailerConfig{Path: pathOf(t, w), After: Position{Seq: 5}, Head: writerHead(w), MissingSegmentWait: 20 * time.Millisecond})
	head, _ := w.Head()
	recs := collect(t, tl, head)
	gaps := tl.Gaps()
	if len(gaps) != 1 || gaps[0].From != 6 || gaps[0].To != segs[1].FirstSeq-1 {
		t.Fatalf("gaps %+v (second segment starts at %d)", gaps, segs[1].FirstSeq)
	}
	if recs[0].Seq != segs[1].FirstSeq {
		t.Fatalf("resumed at %d", recs[0].Seq)
	}
}

// The active file deleted under the writer (salvaged by its watcher into a
// rotated segment, with a new active file) loses nothing.
func TestTailerActiveFileReplaced(t *testing.T) {
	w := mustWriter(t, chain.Config{Fsync: chain.FsyncNone, WatchInterval: 5 * time.Millisecond})
	path := pathOf(t, w)
	tl := NewTailer(TailerConfig{Path: path, Head: writerHead(w), Poll: time.Millisecond})
	appendN(t, w, 50, "a")
	collect(t, tl, 10)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Stats().ActiveFileMissing == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	appendN(t, w, 50, "b")
	head, _ := w.Head()
	tl2 := NewTailer(TailerConfig{Path: path, Head: writerHead(w), Poll: time.Millisecond})
	verifyRecords(t, collect(t, tl2, head), nil)
}
