package chain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRotationCompressedEndToEnd rotates through many small segments under
// concurrent load, gzips the rotated ones, and verifies the whole log.
func TestRotationCompressedEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.maxBytes = 8 << 10
	cfg.Compress = true
	cfg.CheckpointEvery = 7
	w := MustOpen(t, cfg)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if _, err := w.Append(context.Background(), []byte(vaultBody(g*1000+i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, 10*time.Second, "rotated segments compressed", func() bool {
		segs, err := w.Segments()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if !s.Active && !s.Compressed {
				return false
			}
		}
		return len(segs) > 3
	})
	segs, err := w.Segments()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range segs {
		if s.Index != uint64(i+1) {
			t.Fatalf("segment %d has index %d", i, s.Index)
		}
		if i > 0 && segs[i-1].LastSeq+1 != s.FirstSeq {
			t.Fatalf("segment %d ends at %d, next starts at %d", i-1, segs[i-1].LastSeq, s.FirstSeq)
		}
		if !s.Active && !strings.HasSuffix(s.Path, ".gz") {
			t.Fatalf("rotated segment not compressed: %s", s.Path)
		}
		if s.Reason != map[bool]string{true: ReasonStart, false: ReasonRotate}[i == 0] {
			t.Fatalf("segment %d reason %q", i, s.Reason)
		}
	}
	if seq, hash := w.Head(); segs[len(segs)-1].LastSeq != seq || segs[len(segs)-1].LastHash != hash || !segs[len(segs)-1].Active {
		t.Fatalf("active segment %+v, head %d", segs[len(segs)-1], seq)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Rotations != uint64(len(segs)-1) || st.Compressed != st.Rotations {
		t.Fatalf("stats %+v, %d segments", st, len(segs))
	}
	// Plain sizes respect the limit (plus at most one checkpoint line).
	for _, s := range segs[:len(segs)-1] {
		rc, _ := openSegment(s.Path)
		n, _ := copyCount(rc)
		rc.Close()
		if n > cfg.maxBytes+600 {
			t.Fatalf("%s holds %d bytes, limit %d", s.Path, n, cfg.maxBytes)
		}
	}
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer), NodeID: "node-a"})
	if rep.Entries != 8*40 || rep.Segments != int64(len(segs)) {
		t.Fatalf("report %v", rep)
	}
	// OrderSegments recovers chain order from shuffled paths.
	paths := make([]string, len(segs))
	for i, s := range segs {
		paths[len(segs)-1-i] = s.Path
	}
	ordered, err := OrderSegments(paths)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(context.Background(), FileSources(ordered), VerifyOptions{}); err != nil || !rep.OK {
		t.Fatalf("ordered verify: %v %v", rep, err)
	}
}

func copyCount(rc interface{ Read([]byte) (int, error) }) (int64, error) {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := rc.Read(buf)
		n += int64(m)
		if err != nil {
			return n, nil
		}
	}
}

// TestMaxAgeRotation rotates once the active segment is older than
// MaxAgeDays, at the next write.
func TestMaxAgeRotation(t *testing.T) {
	cfg := testConfig(t)
	clk := newClock()
	cfg.Now = clk.Now
	cfg.MaxAgeDays = 1
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	clk.Advance(23 * time.Hour)
	MustAppend(t, w, `{"n":2}`)
	if w.Stats().Rotations != 0 {
		t.Fatal("rotated too early")
	}
	clk.Advance(2 * time.Hour)
	MustAppend(t, w, `{"n":3}`)
	if w.Stats().Rotations != 1 {
		t.Fatal("did not rotate an old segment")
	}
	w.Close()
	lines := readLines(t, cfg.Path)
	if !strings.Contains(lines[0], `"reason":"rotate"`) || !strings.Contains(lines[1], `"n":3`) {
		t.Fatalf("new segment:\n%s", strings.Join(lines, ""))
	}
	MustVerifyLog(t, cfg.Path, VerifyOptions{})
}

// TestActiveFileDeletedOrMoved: the watcher notices within WatchInterval,
// salvages the vanished segment from the open descriptor, starts a new
// segment with reason "reopen" and an active_file_missing event, and the
// chain verifies across.
func TestActiveFileDeletedOrMoved(t *testing.T) {
	for _, how := range []string{"deleted", "moved"} {
		t.Run(how, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.WatchInterval = 5 * time.Millisecond
			w := MustOpen(t, cfg)
			for i := 0; i < 5; i++ {
				MustAppend(t, w, vaultBody(i))
			}
			if how == "deleted" {
				os.Remove(cfg.Path)
			} else {
				os.Rename(cfg.Path, filepath.Join(t.TempDir(), "elsewhere.log"))
			}
			waitFor(t, 5*time.Second, "new active segment", func() bool {
				h, err := readHeaderFile(cfg.Path)
				return err == nil && h.Reason == ReasonReopen
			})
			MustAppend(t, w, `{"after":"reopen"}`)
			w.Close()
			if st := w.Stats(); st.ActiveFileMissing != 1 {
				t.Fatalf("ActiveFileMissing = %d", st.ActiveFileMissing)
			}
			lines := readLines(t, cfg.Path)
			if !strings.Contains(lines[1], `"kind":"active_file_missing"`) || !strings.Contains(lines[1], how) {
				t.Fatalf("second line of the new segment: %s", lines[1])
			}
			rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
			if rep.Entries != 6 || rep.Segments != 2 {
				t.Fatalf("report %v", rep)
			}
		})
	}
}

// TestReopen: SIGHUP-style Reopen on an intact file keeps the segment and
// writes a "reopened" event; on a replaced file it starts a new segment.
func TestReopen(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	MustAppend(t, w, `{"n":2}`)
	if w.Stats().Rotations != 0 || !strings.Contains(strings.Join(readLines(t, cfg.Path), ""), `"kind":"reopened"`) {
		t.Fatal("reopen of an intact file changed segments or wrote no event")
	}
	// logrotate-style: move away, create an empty file, SIGHUP.
	os.Rename(cfg.Path, cfg.Path+".1")
	os.WriteFile(cfg.Path, nil, 0o600)
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	MustAppend(t, w, `{"n":3}`)
	w.Close()
	if h, err := readHeaderFile(cfg.Path); err != nil || h.Reason != ReasonReopen || h.Index != 2 {
		t.Fatalf("header after reopen: %+v %v", h, err)
	}
	if st := w.Stats(); st.Reopens != 2 || st.ActiveFileMissing != 1 {
		t.Fatalf("stats %+v", st)
	}
	MustVerifyLog(t, cfg.Path, VerifyOptions{})
}

// TestOpenWithoutActiveFile: if the active file vanished while stopped,
// Open continues after the newest rotated segment and says so in an event;
// a trusted checkpoint turns the silent loss into an error.
func TestOpenWithoutActiveFile(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	MustAppend(t, w, `{"n":2}`)
	w.Close()
	seq, hash := w.Head()
	os.Remove(cfg.Path)

	trusting := cfg
	trusting.TrustedCheckpoints = []Checkpoint{{NodeID: "node-a", Seq: seq, Hash: hash}}
	if _, err := Open(trusting); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("open after losing the active segment, with a checkpoint: %v", err)
	}
	w2 := MustOpen(t, cfg)
	MustAppend(t, w2, `{"n":3}`)
	w2.Close()
	lines := strings.Join(readLines(t, cfg.Path), "")
	if !strings.Contains(lines, `"kind":"active_file_missing"`) {
		t.Fatalf("no event:\n%s", lines)
	}
	MustVerifyLog(t, cfg.Path, VerifyOptions{})
	if rep, _ := VerifyLog(context.Background(), cfg.Path, VerifyOptions{Checkpoint: &trusting.TrustedCheckpoints[0]}); rep.OK {
		t.Fatal("verification against the checkpoint missed the lost segment")
	}
}
