package chain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// failOnce returns a hook that fails the first time armed is set.
type faultSwitch struct{ armed atomic.Bool }

func (f *faultSwitch) fire() bool { return f.armed.CompareAndSwap(true, false) }

// TestWriteErrorConsumesNoSeq: a failed write fails its waiters, consumes
// no seq, leaves no bytes behind, and the next append succeeds.
func TestWriteErrorConsumesNoSeq(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(sw *faultSwitch) *Faults
	}{
		{"write", func(sw *faultSwitch) *Faults {
			return &Faults{BeforeWrite: func(b []byte) (int, error) {
				if sw.fire() {
					return 0, errors.New("injected EIO")
				}
				return 0, nil
			}}
		}},
		{"torn write", func(sw *faultSwitch) *Faults {
			return &Faults{BeforeWrite: func(b []byte) (int, error) {
				if sw.fire() {
					return len(b) / 2, errors.New("injected short write")
				}
				return 0, nil
			}}
		}},
		{"fsync", func(sw *faultSwitch) *Faults {
			return &Faults{BeforeSync: func() error {
				if sw.fire() {
					return errors.New("injected fsync EIO")
				}
				return nil
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			sw := &faultSwitch{}
			cfg.Faults = tc.fault(sw)
			w := MustOpen(t, cfg)
			a1 := MustAppend(t, w, `{"n":1}`)
			sizeBefore := fileSize(t, cfg.Path)
			sw.armed.Store(true)
			if _, err := w.Append(context.Background(), []byte(`{"n":"lost"}`)); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("append during fault: %v", err)
			}
			if got := fileSize(t, cfg.Path); got != sizeBefore {
				t.Fatalf("file is %d bytes after the failed batch, was %d", got, sizeBefore)
			}
			if seq, h := w.Head(); seq != a1.Seq || h != a1.Hash {
				t.Fatalf("head moved to %d after a failed batch", seq)
			}
			if st := w.Stats(); !st.Failed || st.FailedBatches != 1 {
				t.Fatalf("stats %+v", st)
			}
			a2 := MustAppend(t, w, `{"n":2}`)
			if a2.Seq != a1.Seq+1 {
				t.Fatalf("seq after failure %d, want %d (failed batch must not consume seq)", a2.Seq, a1.Seq+1)
			}
			if w.Stats().Failed {
				t.Fatal("still failed after a good batch")
			}
			w.Close()
			if strings.Contains(strings.Join(readLines(t, cfg.Path), ""), "lost") {
				t.Fatal("failed entry is in the log")
			}
			MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
		})
	}
}

// TestTornWriteThenReopen models a crash mid-write: the batch is torn and
// cannot be truncated; the next Open removes the torn tail, records a
// torn_tail_truncated event and the chain verifies.
func TestTornWriteThenReopen(t *testing.T) {
	cfg := testConfig(t)
	sw := &faultSwitch{}
	var crashed atomic.Bool
	cfg.Faults = &Faults{
		BeforeWrite: func(b []byte) (int, error) {
			if sw.fire() {
				crashed.Store(true)
				return len(b) - 7, errors.New("injected crash mid-write")
			}
			return 0, nil
		},
		BeforeTruncate: func() error {
			if crashed.Load() {
				return errors.New("injected: process is dead")
			}
			return nil
		},
	}
	w := MustOpen(t, cfg)
	last := MustAppend(t, w, `{"n":1}`)
	sw.armed.Store(true)
	if _, err := w.Append(context.Background(), []byte(`{"n":"torn"}`)); err == nil {
		t.Fatal("torn append succeeded")
	}
	// While broken, nothing may be appended after the torn bytes.
	if _, err := w.Append(context.Background(), []byte(`{"n":"after"}`)); err == nil {
		t.Fatal("append after an unrepairable torn write succeeded")
	}
	w.Close() // the "dead" process: truncation keeps failing
	raw, _ := os.ReadFile(cfg.Path)
	if raw[len(raw)-1] == '\n' {
		t.Fatal("test setup: expected a torn last line")
	}
	rep, err := VerifyLog(context.Background(), cfg.Path, VerifyOptions{})
	if err != nil || !rep.OK || len(rep.Warnings) != 1 || rep.Warnings[0].Kind != WarnTornTail {
		t.Fatalf("torn log: want OK with a torn_tail warning, got %v %v", rep, err)
	}

	cfg.Faults = nil
	w2 := MustOpen(t, cfg)
	st := w2.Stats()
	if st.TornTailBytes == 0 {
		t.Fatal("no torn bytes counted")
	}
	seq, _ := w2.Head()
	w2.Close()
	lines := strings.Join(readLines(t, cfg.Path), "")
	if !strings.Contains(lines, `"kind":"torn_tail_truncated"`) || strings.Contains(lines, `"n":"after"`) {
		t.Fatalf("log after recovery:\n%s", lines)
	}
	if seq <= last.Seq {
		t.Fatalf("head %d", seq)
	}
	saved, _ := filepath.Glob(cfg.Path + ".torn-*")
	if len(saved) != 1 || fileSize(t, saved[0]) != st.TornTailBytes {
		t.Fatalf("torn bytes not preserved: %v", saved)
	}
	rep = MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
	if len(rep.Warnings) != 0 {
		t.Fatalf("warnings after recovery: %v", rep.Warnings)
	}
}

// TestTornTailGarbageLines: a crash can also leave complete-looking garbage
// lines (zero-filled blocks); Open cuts from the first broken line.
func TestTornTailGarbageLines(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	w.Close()
	f, _ := os.OpenFile(cfg.Path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\x00\x00\x00\x00\n{\"n\":2,\"seq\":99}\n{\"partial")
	f.Close()
	w2 := MustOpen(t, cfg)
	MustAppend(t, w2, `{"n":3}`)
	w2.Close()
	MustVerifyLog(t, cfg.Path, VerifyOptions{})
}

// TestDiskFull: ENOSPC from the write path is recognisable both as
// syscall.ENOSPC and ErrDiskFull.
func TestDiskFull(t *testing.T) {
	cfg := testConfig(t)
	var full atomic.Bool
	cfg.Faults = &Faults{BeforeWrite: func(b []byte) (int, error) {
		if full.Load() {
			return 0, &os.PathError{Op: "write", Path: cfg.Path, Err: syscall.ENOSPC}
		}
		return 0, nil
	}}
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	full.Store(true)
	_, err := w.Append(context.Background(), []byte(`{"n":2}`))
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrDiskFull) {
		t.Fatalf("err %v: want both ENOSPC and ErrDiskFull", err)
	}
	full.Store(false)
	MustAppend(t, w, `{"n":3}`)
	w.Close()
	MustVerifyLog(t, cfg.Path, VerifyOptions{})
}

func fileSize(tb testing.TB, path string) uint64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return uint64(fi.Size())
}
