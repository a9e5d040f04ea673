package chain

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupCommit64 runs 64 concurrent appenders with FsyncAlways: every
// entry gets a distinct seq, the chain verifies gap-free, and group commit
// needs fewer fsyncs than entries.
func TestGroupCommit64(t *testing.T) {
	cfg := testConfig(t)
	var syncs atomic.Int64
	var maxBatch atomic.Int64
	cfg.OnSync = func(d time.Duration, lines, bytes int) {
		syncs.Add(1)
		for {
			m := maxBatch.Load()
			if int64(lines) <= m || maxBatch.CompareAndSwap(m, int64(lines)) {
				break
			}
		}
	}
	w := MustOpen(t, cfg)
	const writers, each = 64, 40
	seqs := make(chan uint64, writers*each)
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				a, err := w.Append(context.Background(), []byte(vaultBody(g*each+i)))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- a.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d acknowledged twice", s)
		}
		seen[s] = true
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Entries != writers*each || len(seen) != writers*each {
		t.Fatalf("entries %d, acks %d", st.Entries, len(seen))
	}
	if st.Fsyncs >= st.Entries || syncs.Load() != int64(st.Fsyncs) {
		t.Fatalf("group commit: %d fsyncs for %d entries (OnSync saw %d)", st.Fsyncs, st.Entries, syncs.Load())
	}
	if maxBatch.Load() < 2 || st.MaxBatch < 2 {
		t.Fatalf("no batch ever held more than one entry (max %d)", st.MaxBatch)
	}
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer), NodeID: "node-a"})
	if rep.Entries != writers*each {
		t.Fatalf("verified %d entries", rep.Entries)
	}
	t.Logf("%d entries, %d fsyncs, max batch %d, mean fsync %v", st.Entries, st.Fsyncs, st.MaxBatch, st.FsyncTotal/time.Duration(st.Fsyncs))
}

// TestRestartContinuesChain reopens a log: seq continues, a "started"
// event follows, and the whole log verifies.
func TestRestartContinuesChain(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seq1, hash1 := w.Head()
	w2 := MustOpen(t, cfg)
	if s, h := w2.Head(); s <= seq1 || h == hash1 {
		t.Fatalf("head after reopen %d, before %d", s, seq1)
	}
	a := MustAppend(t, w2, `{"n":2}`)
	if a.Seq <= seq1 {
		t.Fatalf("seq went back: %d after %d", a.Seq, seq1)
	}
	w2.Close()
	lines := readLines(t, cfg.Path)
	if !strings.Contains(lines[0], `"reason":"start"`) || strings.Count(strings.Join(lines, ""), `"kind":"started"`) != 2 {
		t.Fatalf("unexpected log:\n%s", strings.Join(lines, ""))
	}
	MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
}

func TestOpenRefusesOtherNodeAndStaleLog(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	w.Close()
	seq, hash := w.Head()

	other := cfg
	other.NodeID = "node-b"
	if _, err := Open(other); !errors.Is(err, ErrNodeMismatch) {
		t.Fatalf("open with another node id: %v", err)
	}
	ahead := cfg
	ahead.TrustedCheckpoints = []Checkpoint{{NodeID: "node-a", Seq: seq + 5, Hash: hash}}
	if _, err := Open(ahead); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("open behind checkpoint: %v", err)
	}
	forked := cfg
	forked.TrustedCheckpoints = []Checkpoint{{NodeID: "node-a", Seq: seq, Hash: ZeroHash}}
	if _, err := Open(forked); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("open with diverged checkpoint: %v", err)
	}
	good := cfg
	good.TrustedCheckpoints = []Checkpoint{{NodeID: "node-a", Seq: seq, Hash: hash}}
	MustOpen(t, good).Close()
}

// TestCheckpointsAndSink: count-based checkpoints are signed, land in the
// sink, and sink failures are counted without failing appends.
func TestCheckpointsAndSink(t *testing.T) {
	cfg := testConfig(t)
	cfg.CheckpointEvery = 10
	var mu sync.Mutex
	var got []Checkpoint
	fail := atomic.Bool{}
	cfg.CheckpointSink = func(cp Checkpoint) error {
		if fail.Load() {
			return errors.New("raft unavailable")
		}
		mu.Lock()
		got = append(got, cp)
		mu.Unlock()
		return nil
	}
	w := MustOpen(t, cfg)
	for i := 0; i < 25; i++ {
		MustAppend(t, w, vaultBody(i))
	}
	waitFor(t, 5*time.Second, "checkpoints delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Seq >= 20
	})
	mu.Lock()
	last := got[len(got)-1]
	mu.Unlock()
	if err := last.Verify(pub(cfg.Signer)); err != nil {
		t.Fatalf("delivered checkpoint: %v", err)
	}
	if st := w.Stats(); st.LastCheckpointSeq != last.Seq {
		t.Fatalf("stats last checkpoint %d, sink saw %d", st.LastCheckpointSeq, last.Seq)
	}
	fail.Store(true)
	cp, err := w.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "sink error counted", func() bool { return w.Stats().CheckpointSinkErrors > 0 })
	MustAppend(t, w, `{"still":"works"}`)
	w.Close()
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer), Checkpoint: &cp})
	if !rep.TrustedCheckpointVerified || rep.Checkpoints < 3 {
		t.Fatalf("report %+v", rep)
	}
}

// TestTimedCheckpoint: once CheckpointInterval has passed (per the injected
// clock) and lines were written, the interval tick writes a checkpoint;
// without new lines it writes none. Ticks are driven by the test: each
// unbuffered send returns only once the loop took the previous one.
func TestTimedCheckpoint(t *testing.T) {
	cfg := testConfig(t)
	clk := newClock()
	cfg.Now = clk.Now
	cfg.CheckpointInterval = time.Second
	cfg.checkpointTicks = make(chan time.Time)
	tick := func() { cfg.checkpointTicks <- time.Time{}; cfg.checkpointTicks <- time.Time{} }
	w := MustOpen(t, cfg)
	before := w.Stats().Checkpoints
	MustAppend(t, w, `{"n":1}`)
	tick()
	if w.Stats().Checkpoints != before {
		t.Fatal("checkpoint before the interval passed")
	}
	clk.Advance(time.Second)
	tick()
	st := w.Stats()
	seq, _ := w.Head()
	if st.Checkpoints != before+1 || st.LastCheckpointSeq != seq-1 || !st.LastCheckpointTime.Equal(clk.Now()) {
		t.Fatalf("after the interval: %+v (head %d)", st, seq)
	}
	clk.Advance(time.Hour)
	tick()
	if w.Stats().Checkpoints != before+1 {
		t.Fatal("checkpoint written without new lines")
	}
}

// TestWriteTimeout: a stuck fsync makes Append return ErrTimeout and marks
// the writer failed; the next successful batch clears it.
func TestWriteTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.WriteTimeout = 50 * time.Millisecond
	release := make(chan struct{})
	var stuck atomic.Bool
	cfg.Faults = &Faults{BeforeSync: func() error {
		if stuck.Load() {
			<-release
		}
		return nil
	}}
	w := MustOpen(t, cfg)
	stuck.Store(true)
	_, err := w.Append(context.Background(), []byte(`{"n":1}`))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if st := w.Stats(); !st.Failed || st.Timeouts != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Queued behind the stuck batch, never taken: cancelled for sure.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := w.Append(ctx, []byte(`{"n":2}`)); done <- err }()
	waitFor(t, 5*time.Second, "second append queued", func() bool { return w.Stats().QueueDepth >= 2 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: %v", err)
	}
	stuck.Store(false)
	close(release)
	a := MustAppend(t, w, `{"n":3}`)
	if st := w.Stats(); st.Failed {
		t.Fatalf("still failed after a good write: %+v", st)
	}
	w.Close()
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{})
	lines := strings.Join(readLines(t, cfg.Path), "")
	if strings.Contains(lines, `"n":2`) || !strings.Contains(lines, `"n":1`) {
		t.Fatalf("cancelled entry written or timed-out entry lost:\n%s", lines)
	}
	if rep.LastSeq < a.Seq {
		t.Fatalf("report %v", rep)
	}
}

func TestAppendValidationAndClose(t *testing.T) {
	w := MustOpen(t, testConfig(t))
	if _, err := w.Append(context.Background(), []byte(`{"seq":1}`)); !errors.Is(err, ErrInvalidBody) {
		t.Fatalf("reserved member: %v", err)
	}
	before, _ := w.Head()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(context.Background(), []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := w.Rotate(); !errors.Is(err, ErrClosed) {
		t.Fatalf("rotate after close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if after, _ := w.Head(); after <= before {
		t.Fatal("close wrote nothing (closed event and checkpoint expected)")
	}
}

// TestFsyncInterval: entries are acknowledged after the write and fsynced
// by the interval ticker.
func TestFsyncInterval(t *testing.T) {
	cfg := testConfig(t)
	cfg.Fsync = FsyncInterval
	cfg.FsyncInterval = 5 * time.Millisecond
	var syncs atomic.Int64
	cfg.OnSync = func(time.Duration, int, int) { syncs.Add(1) }
	w := MustOpen(t, cfg)
	for i := 0; i < 20; i++ {
		MustAppend(t, w, vaultBody(i))
	}
	if n := syncs.Load(); n > 5 {
		t.Fatalf("%d fsyncs for 20 sequential appends in interval mode", n)
	}
	waitFor(t, 5*time.Second, "interval fsync", func() bool { return syncs.Load() > 0 })
	w.Close()
	MustVerifyLog(t, cfg.Path, VerifyOptions{})
}

// TestConcurrentAppendAndClose: appends racing Close either succeed (and
// are in the log) or fail with ErrClosed.
func TestConcurrentAppendAndClose(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := w.Append(context.Background(), []byte(vaultBody(i)))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				ok.Add(1)
			}
		}()
	}
	waitFor(t, 5*time.Second, "some appends", func() bool { return ok.Load() > 50 })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{})
	if rep.Entries != ok.Load() {
		t.Fatalf("%d acknowledged, %d in the log", ok.Load(), rep.Entries)
	}
}
