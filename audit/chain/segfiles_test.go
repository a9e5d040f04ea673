package chain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// realClockConfig is testConfig with the default clock, so rotated names
// follow the real time.
func realClockConfig(tb testing.TB) Config {
	tb.Helper()
	cfg := testConfig(tb)
	cfg.Now = nil
	return cfg
}

// TestRotationNames: back-to-back rotations with the default clock (many
// within one millisecond) each keep their segment under a distinct name
// taken from the real time, strictly increasing; none replaces another
// (see also TestRotationNeverReplacesBackup).
func TestRotationNames(t *testing.T) {
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
		// Names come from the real clock.
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

// TestFailedWriteAfterRotateLeavesNoHole: a failed or torn batch in a
// freshly created segment is truncated away and the next batch must start
// exactly there, not at a stale offset (the descriptor has O_APPEND).
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

// TestWriterLeavesNoGoroutine: Open, rotate and Close 25 times leave no
// goroutine behind (Close waits for every goroutine the writer started).
func TestWriterLeavesNoGoroutine(t *testing.T) {
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
	before := runtime.NumGoroutine()
	for i := 0; i < 25; i++ {
		cycle()
	}
	// Exiting goroutines may still be counted for a moment after Close
	// returns; wait for the count to settle rather than for a fixed time.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); after > before && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		runtime.Gosched()
	}
	if after > before {
		t.Fatalf("goroutines grew from %d to %d over 25 Open/Close cycles", before, after)
	}
}

// TestRotationNeverReplacesBackup: files already hold the backup names
// the clock gives for the next milliseconds (a rotation less than 1 ms
// earlier, or, further ahead, a clock that stepped back). Rotating must
// replace none of them and must not wait for the clock: the segment takes
// the next free name at once.
func TestRotationNeverReplacesBackup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ahead time.Duration
	}{
		{"next milliseconds", 4 * time.Millisecond},
		{"clock stepped back", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t) // a clock that stands still: waiting for it would never end
			w := MustOpen(t, cfg)
			MustAppend(t, w, `{"n":1}`)
			now := cfg.Now()
			planted := map[string]string{}
			for d := time.Duration(0); d <= tc.ahead; d += time.Millisecond {
				name := w.backupName(now.Add(d))
				planted[name] = "not a segment " + d.String()
				if err := os.WriteFile(name, []byte(planted[name]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Rotate(); err != nil {
				t.Fatal(err)
			}
			next := w.backupName(now.Add(tc.ahead + time.Millisecond))
			if _, err := os.Stat(next); err != nil {
				t.Fatalf("the segment did not take the next free name %s: %v", filepath.Base(next), err)
			}
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
		})
	}
}
