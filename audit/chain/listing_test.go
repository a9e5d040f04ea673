package chain

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// mustRotatedLog writes a log of three segments (two rotated, plain) and
// returns its config and the rotated segments in chain order.
func mustRotatedLog(tb testing.TB) (Config, []SegmentInfo) {
	tb.Helper()
	cfg := testConfig(tb)
	w := MustOpen(tb, cfg)
	for i := 0; i < 3; i++ {
		if i > 0 {
			if err := w.Rotate(); err != nil {
				tb.Fatal(err)
			}
		}
		MustAppend(tb, w, vaultBody(i))
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	segs, err := ListSegments(cfg.Path)
	if err != nil || len(segs) != 3 || segs[0].Compressed || segs[1].Compressed || !segs[2].Active {
		tb.Fatalf("setup: %+v %v", segs, err)
	}
	return cfg, segs[:2]
}

// onceAfterReadDir runs f the first time the directory has been read,
// between the read and the stat of its entries.
func onceAfterReadDir(tb testing.TB, f func() error) {
	tb.Helper()
	done := false
	afterReadDir = func() {
		if done {
			return
		}
		done = true
		if err := f(); err != nil {
			tb.Error(err)
		}
	}
	tb.Cleanup(func() { afterReadDir = nil })
}

// mustGzipCopy writes src.gz next to src, as the compressor does before it
// removes src.
func mustGzipCopy(tb testing.TB, src string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(src + ".gz")
	if err != nil {
		tb.Fatal(err)
	}
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// wantIndexes fails unless segs are exactly indexes 1..n in order.
func wantIndexes(tb testing.TB, segs []SegmentInfo, n int) {
	tb.Helper()
	if len(segs) != n {
		var got []string
		for _, s := range segs {
			got = append(got, fmt.Sprintf("%d:%s", s.Index, filepath.Base(s.Path)))
		}
		tb.Fatalf("listed %d segments %v, want %d: a segment was left out", len(segs), got, n)
	}
	for i, s := range segs {
		if s.Index != uint64(i+1) {
			tb.Fatalf("segment %d has index %d", i, s.Index)
		}
	}
}

// A listing never leaves out a segment that is rotated or compressed
// between the directory read and the stat of its entries: the windows in
// which a log tailer following the chain saw the next segment missing
// (and the next-but-one present) while the writer rotated and compressed.
func TestListSegmentsDuringCompressionAndRotation(t *testing.T) {
	t.Run("compressed after the directory read", func(t *testing.T) {
		cfg, rot := mustRotatedLog(t)
		// The read saw only x; x.gz is created and x removed before x is
		// stat'ed.
		onceAfterReadDir(t, func() error { return compressSegment(rot[0].Path) })
		segs, err := ListSegments(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		wantIndexes(t, segs, 3)
		if !segs[0].Compressed || segs[0].Path != rot[0].Path+".gz" {
			t.Fatalf("segment 1 listed as %+v, want its .gz", segs[0])
		}
	})
	t.Run("x and x.gz both read, x removed before its stat", func(t *testing.T) {
		cfg, rot := mustRotatedLog(t)
		mustGzipCopy(t, rot[1].Path)
		onceAfterReadDir(t, func() error { return os.Remove(rot[1].Path) })
		segs, err := ListSegments(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		wantIndexes(t, segs, 3)
		if !segs[1].Compressed {
			t.Fatalf("segment 2 listed as %+v, want its .gz", segs[1])
		}
	})
	t.Run("active file rotated after the directory read", func(t *testing.T) {
		cfg, _ := mustRotatedLog(t)
		w := &Writer{cfg: cfg}
		onceAfterReadDir(t, func() error { return renameNoReplace(cfg.Path, w.backupName(t0.Add(time.Hour))) })
		segs, err := ListSegments(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		wantIndexes(t, segs, 3)
		if segs[2].Active {
			t.Fatalf("segment 3 still listed as the active file: %+v", segs[2])
		}
	})
}
