package ship

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

// testClock is an injected clock that counts how often it is read: the
// tailer reads it when it finds the segment it waits for missing.
type testClock struct {
	mu    sync.Mutex
	now   time.Time
	reads atomic.Int64
}

func (c *testClock) Now() time.Time {
	c.reads.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// mustThreeSegments writes a log of three segments: two rotated (gzip'd
// once the compressor is done) and the active one.
func mustThreeSegments(tb testing.TB) (*chain.Writer, []chain.SegmentInfo) {
	tb.Helper()
	w := mustWriter(tb, chain.Config{Fsync: chain.FsyncNone, Compress: true})
	for i := 0; i < 3; i++ {
		if i > 0 {
			if err := w.Rotate(); err != nil {
				tb.Fatal(err)
			}
		}
		appendN(tb, w, 40, "s")
	}
	waitCond(tb, "rotated segments compressed", func() bool { return w.Stats().Compressed >= 2 })
	segs, err := w.Segments()
	if err != nil || len(segs) != 3 || !segs[2].Active {
		tb.Fatalf("setup: %+v %v", segs, err)
	}
	return w, segs
}

// readUntilClockRead calls Next until the tailer has looked for a missing
// segment (read the clock), and returns what it returned meanwhile.
func readUntilClockRead(tb testing.TB, tl *Tailer, clk *testClock) []Record {
	tb.Helper()
	var out []Record
	deadline := time.Now().Add(20 * time.Second)
	for clk.reads.Load() == 0 {
		if time.Now().After(deadline) {
			tb.Fatal("the tailer never looked for the missing segment")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		recs, err := tl.Next(ctx, 1000, 0)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			tb.Fatalf("Next: %v", err)
		}
		out = append(out, recs...)
	}
	return out
}

// The interleaving behind a skipped segment: the tailer has read segment
// 1 and lists the directory while segment 2 is not visible under a segment
// name (being rotated or compressed) but segment 3 is. It must wait for
// segment 2, never go on with segment 3 (and call the skipped lines a gap).
func TestTailerWaitsForSegmentMissingFromListing(t *testing.T) {
	w, segs := mustThreeSegments(t)
	hidden := segs[1].Path + ".hidden" // not a segment name: out of every listing
	if err := os.Rename(segs[1].Path, hidden); err != nil {
		t.Fatal(err)
	}
	clk := &testClock{now: time.Unix(1_800_000_000, 0)}
	tl := NewTailer(TailerConfig{Path: pathOf(t, w), NodeID: "node-t", Head: writerHead(w), Poll: time.Millisecond, Now: clk.Now})
	defer tl.Close()

	recs := readUntilClockRead(t, tl, clk)
	// Now the tailer waits for segment 2; it returns nothing more however
	// often it is asked (the injected clock does not move).
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		more, err := tl.Next(ctx, 1000, 0)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next while segment 2 is missing: %v", err)
		}
		recs = append(recs, more...)
	}
	if len(recs) == 0 || recs[len(recs)-1].Seq != segs[1].FirstSeq-1 {
		last := uint64(0)
		if len(recs) > 0 {
			last = recs[len(recs)-1].Seq
		}
		t.Fatalf("while segment 2 (seq %d..) was missing the tailer returned up to seq %d, want exactly segment 1 (up to %d)",
			segs[1].FirstSeq, last, segs[1].FirstSeq-1)
	}

	if err := os.Rename(hidden, segs[1].Path); err != nil {
		t.Fatal(err)
	}
	head, _ := w.Head()
	recs = append(recs, collect(t, tl, head)...)
	verifyRecords(t, recs, nil)
	if g := tl.Gaps(); len(g) != 0 {
		t.Fatalf("gaps %+v", g)
	}
}

// A segment that stays missing while a later one is on disk fails the
// tailer loudly once MissingSegmentWait has passed, and nothing after the
// missing segment is ever returned.
func TestTailerFailsOnMissingSegment(t *testing.T) {
	w, segs := mustThreeSegments(t)
	if err := os.Remove(segs[1].Path); err != nil {
		t.Fatal(err)
	}
	clk := &testClock{now: time.Unix(1_800_000_000, 0)}
	tl := NewTailer(TailerConfig{Path: pathOf(t, w), NodeID: "node-t", Head: writerHead(w), Poll: time.Millisecond,
		Now: clk.Now, MissingSegmentWait: time.Minute})
	defer tl.Close()

	recs := readUntilClockRead(t, tl, clk)
	clk.Advance(59 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	more, err := tl.Next(ctx, 1000, 0)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("before MissingSegmentWait: got %v, want to keep waiting", err)
	}
	recs = append(recs, more...)
	clk.Advance(time.Second)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	more, err = tl.Next(ctx, 1000, 0)
	cancel()
	recs = append(recs, more...)
	if !errors.Is(err, ErrSegmentMissing) || !errors.Is(err, ErrChainMismatch) {
		t.Fatalf("got %v, want ErrSegmentMissing (an ErrChainMismatch)", err)
	}
	t.Log(err)
	if len(recs) == 0 || recs[len(recs)-1].Seq != segs[1].FirstSeq-1 {
		t.Fatalf("returned %d records, want exactly segment 1 (up to seq %d)", len(recs), segs[1].FirstSeq-1)
	}
	verifyRecords(t, recs, nil)
	if g := tl.Gaps(); len(g) != 0 {
		t.Fatalf("gaps %+v", g)
	}
}
