package chain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// realClockConfig is testConfig with the default clock, so rotated names
// are lumberjack's own.
func realClockConfig(tb testing.TB) Config {
	tb.Helper()
	cfg := testConfig(tb)
	cfg.Now = nil
	return cfg
}

// TestLumberjackConfig pins the settings under which lumberjack never
// rotates, deletes or compresses on its own.
func TestLumberjackConfig(t *testing.T) {
	l := getLogger(filepath.Join(t.TempDir(), "audit.log"))
	defer putLogger(l)
	if l.MaxBackups != 0 || l.MaxAge != 0 || l.Compress || l.LocalTime || l.MaxSize < 1<<20 {
		t.Fatalf("lumberjack config %+v: it could delete, compress or rotate by itself", l)
	}
}

// TestLumberjackRotationNames: back-to-back rotations with the default
// clock each keep their segment under a distinct lumberjack name taken from
// the real time, strictly increasing; none replaces another (hazard 1; see
// also TestLumberjackNeverReplacesBackup).
func TestLumberjackRotationNames(t *testing.T) {
	cfg := realClockConfig(t)
	w := MustOpen(t, cfg)
	const rotations = 40
	start := time.Now()
	for i := 0; i < rotations; i++ {
		MustAppend(t, w, vaultBody(i))
		if err := w.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	w.Close()
	segs, err := ListSegments(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != rotations+1 {
		t.Fatalf("%d segments after %d rotations: a rotated segment was lost", len(segs), rotations)
	}
	seen := map[string]bool{}
	var last int64
	for _, s := range segs[:rotations] {
		base := filepath.Base(s.Path)
		if seen[base] {
			t.Fatalf("duplicate name %s", base)
		}
		seen[base] = true
		ms, ok := (&Writer{cfg: cfg}).backupStamp(s.Path)
		if !ok {
			t.Fatalf("%s is not a backup name", base)
		}
		// Lumberjack's names come from the real clock.
		if d := time.Since(time.UnixMilli(ms)); d < 0 || d > time.Minute {
			t.Fatalf("%s is not named after the real time of rotation", base)
		}
		if ms <= last {
			t.Fatalf("%s does not follow the previous rotation's name", base)
		}
		last = ms
	}
	if st := w.Stats(); st.Rotations != rotations {
		t.Fatalf("rotations %d", st.Rotations)
	}
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
	if rep.Entries != rotations || rep.Segments != rotations+1 {
		t.Fatalf("report %v", rep)
	}
	t.Logf("%d rotations in %v", rotations, elapsed)
}

// TestFailedWriteAfterRotateLeavesNoHole: after a rotation lumberjack's
// descriptor has no O_APPEND; a failed or torn batch is truncated away and
// the next batch must start exactly there, not at the stale offset
// (hazard 2).
func TestFailedWriteAfterRotateLeavesNoHole(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults func(sw *faultSwitch) *Faults
	}{
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
			for _, real := range []bool{false, true} {
				cfg := testConfig(t)
				if real {
					cfg = realClockConfig(t)
				}
				sw := &faultSwitch{}
				cfg.Faults = tc.faults(sw)
				w := MustOpen(t, cfg)
				MustAppend(t, w, `{"n":1}`)
				if err := w.Rotate(); err != nil {
					t.Fatal(err)
				}
				sizeBefore := fileSize(t, cfg.Path)
				sw.armed.Store(true)
				if _, err := w.Append(context.Background(), []byte(`{"n":"lost"}`)); err == nil {
					t.Fatal("append during fault succeeded")
				}
				if got := fileSize(t, cfg.Path); got != sizeBefore {
					t.Fatalf("active file is %d bytes after the failed batch, was %d", got, sizeBefore)
				}
				MustAppend(t, w, `{"n":2}`)
				MustAppend(t, w, `{"n":3}`)
				w.Close()
				raw, err := os.ReadFile(cfg.Path)
				if err != nil {
					t.Fatal(err)
				}
				if i := bytes.IndexByte(raw, 0); i >= 0 {
					t.Fatalf("zero byte at offset %d of the active segment:\n%q", i, raw)
				}
				MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
			}
		})
	}
}

// TestLumberjackReopenCreatesStrayFile: when lumberjack reopens the active
// path (after a failed write closed its descriptor) and the path is gone, it
// creates a new headerless file and writes the batch there (lumberjack.go
// 268-270). The writer notices, salvages the real segment, moves the stray
// file aside, starts a new segment and writes the batch again: the caller
// sees success and the chain verifies (hazard 3).
func TestLumberjackReopenCreatesStrayFile(t *testing.T) {
	cfg := testConfig(t)
	var step atomic.Int32
	cfg.Faults = &Faults{BeforeWrite: func(b []byte) (int, error) {
		switch step.Load() {
		case 1: // fail one batch: the writer closes lumberjack's descriptor
			step.Store(2)
			return 0, errors.New("injected EIO")
		case 2: // the active file vanishes before lumberjack reopens it
			step.Store(3)
			if err := os.Remove(cfg.Path); err != nil {
				t.Error(err)
			}
		}
		return 0, nil
	}}
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	if err := w.Rotate(); err != nil { // lumberjack now holds a descriptor without O_APPEND
		t.Fatal(err)
	}
	MustAppend(t, w, `{"n":2}`)
	step.Store(1)
	if _, err := w.Append(context.Background(), []byte(`{"n":"failed"}`)); err == nil {
		t.Fatal("injected failure did not fail")
	}
	a := MustAppend(t, w, `{"n":3}`)
	if step.Load() != 3 {
		t.Fatal("fault sequence did not run")
	}
	MustAppend(t, w, `{"n":4}`)
	w.Close()
	if st := w.Stats(); st.ActiveFileMissing != 1 {
		t.Fatalf("ActiveFileMissing = %d", st.ActiveFileMissing)
	}
	h, err := readHeaderFile(cfg.Path)
	if err != nil || h.Reason != ReasonReopen || h.Index != 3 {
		t.Fatalf("active header %+v %v", h, err)
	}
	active := strings.Join(readLines(t, cfg.Path), "")
	if !strings.Contains(active, `"kind":"active_file_missing"`) || !strings.Contains(active, "lumberjack") {
		t.Fatalf("no event explaining the switch:\n%s", active)
	}
	foreign, _ := filepath.Glob(cfg.Path + ".foreign-*")
	if len(foreign) != 1 {
		t.Fatalf("stray file written by lumberjack not moved aside: %v", foreign)
	}
	if b, _ := os.ReadFile(foreign[0]); !bytes.Contains(b, []byte(`{"n":3`)) {
		t.Fatalf("stray file holds %q", b)
	}
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
	if rep.Entries != 4 || rep.Segments != 3 || rep.LastSeq < a.Seq {
		t.Fatalf("report %v (entry n=3 at seq %d)", rep, a.Seq)
	}
}

// TestLumberjackGoroutinesBounded: lumberjack starts a goroutine per Logger
// that Close does not stop; reusing Loggers keeps their number bounded by
// the Writers open at once, not by how many were ever opened (hazard 5).
func TestLumberjackGoroutinesBounded(t *testing.T) {
	cycle := func() {
		cfg := testConfig(t)
		w, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		MustAppend(t, w, `{"n":1}`)
		if err := w.Rotate(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	time.Sleep(10 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := 0; i < 25; i++ {
		cycle()
	}
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+3 {
		t.Fatalf("goroutines grew from %d to %d over 25 Open/Close cycles", before, after)
	}
}

// TestLumberjackNeverReplacesBackup: files already hold the backup names
// lumberjack would derive from the clock in the next milliseconds (a
// rotation less than 1 ms earlier, or, further ahead, a clock that stepped
// back). Rotating must replace none of them (hazard 1): the writer waits
// out a few milliseconds, or renames without lumberjack when the names
// reach further ahead.
func TestLumberjackNeverReplacesBackup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ahead time.Duration
	}{
		{"next milliseconds", 4 * time.Millisecond},
		{"clock stepped back", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := realClockConfig(t)
			w := MustOpen(t, cfg)
			MustAppend(t, w, `{"n":1}`)
			now := time.Now()
			planted := map[string]string{}
			for d := time.Duration(0); d <= tc.ahead; d += time.Millisecond {
				name := w.backupName(now.Add(d))
				planted[name] = "not a segment " + d.String()
				if err := os.WriteFile(name, []byte(planted[name]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := w.Rotate(); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			MustAppend(t, w, `{"n":2}`)
			w.Close()
			for name, want := range planted {
				if b, err := os.ReadFile(name); err != nil || string(b) != want {
					t.Fatalf("%s was replaced by the rotation: %q %v", filepath.Base(name), b, err)
				}
				os.Remove(name)
			}
			rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
			if rep.Segments != 2 || rep.Entries != 2 {
				t.Fatalf("report %v", rep)
			}
			if tc.ahead > maxStampWait && took > tc.ahead {
				t.Fatalf("rotation waited %v for names %v ahead instead of renaming without lumberjack", took, tc.ahead)
			}
		})
	}
}
