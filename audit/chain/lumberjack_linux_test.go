//go:build linux

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

// TestLumberjackReopenFailsEMFILE: when lumberjack cannot reopen the active
// file (here: out of descriptors), it renames the file to a backup name and
// tries to start a new, headerless one (lumberjack.go 280-284, 221-222).
// The batch fails (fail closed), the writer keeps the renamed file as a
// complete rotated segment (no duplicate salvage copy) and continues the
// chain in a new segment with a header and an active_file_missing event
// (hazard 3).
func TestLumberjackReopenFailsEMFILE(t *testing.T) {
	cfg := testConfig(t)
	var step atomic.Int32
	var saved syscall.Rlimit
	restore := func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
			t.Error(err)
		}
	}
	cfg.Faults = &Faults{
		BeforeWrite: func(b []byte) (int, error) {
			switch step.Load() {
			case 1: // fail one batch: the writer closes lumberjack's descriptor
				step.Store(2)
				return 0, errors.New("injected EIO")
			case 2: // lumberjack's reopen runs out of descriptors
				step.Store(3)
				if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
					t.Error(err)
					return 0, nil
				}
				f, err := os.Open(os.DevNull)
				if err != nil {
					t.Error(err)
					return 0, nil
				}
				lowest := uint64(f.Fd())
				f.Close()
				lim := saved
				lim.Cur = lowest
				if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
					t.Error(err)
				}
			}
			return 0, nil
		},
		BeforeTruncate: func() error {
			if step.CompareAndSwap(3, 4) {
				restore()
			}
			return nil
		},
	}
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"n":1}`)
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	MustAppend(t, w, `{"n":2}`)
	step.Store(1)
	if _, err := w.Append(context.Background(), []byte(`{"n":"failed"}`)); err == nil {
		t.Fatal("injected failure did not fail")
	}
	_, err := w.Append(context.Background(), []byte(`{"n":"emfile"}`))
	if step.Load() == 3 {
		restore()
	}
	if err == nil || !strings.Contains(err.Error(), "too many open files") {
		t.Fatalf("append while lumberjack cannot reopen: %v", err)
	}
	if _, err := os.Stat(cfg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("test setup: lumberjack did not rename the active file away (stat: %v)", err)
	}
	MustAppend(t, w, `{"n":3}`)
	w.Close()
	if st := w.Stats(); st.ActiveFileMissing != 1 {
		t.Fatalf("ActiveFileMissing = %d", st.ActiveFileMissing)
	}
	if h, err := readHeaderFile(cfg.Path); err != nil || h.Reason != ReasonReopen || h.Index != 3 {
		t.Fatalf("active header %+v %v", h, err)
	}
	if m, _ := filepath.Glob(cfg.Path + ".*"); len(m) != 1 || m[0] != cfg.Path+".merkle" {
		t.Fatalf("unexpected side files %v", m)
	}
	all := ""
	segs, err := ListSegments(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		all += strings.Join(readLines(t, s.Path), "")
	}
	if strings.Contains(all, "emfile") || strings.Contains(all, `"n":"failed"`) {
		t.Fatal("a failed entry is in the log")
	}
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
	if rep.Entries != 3 || rep.Segments != 3 {
		t.Fatalf("report %v (segments %v)", rep, segs)
	}
}
