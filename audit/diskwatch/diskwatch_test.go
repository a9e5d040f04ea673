package diskwatch

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// fakeDisk is a statfs double: a fixed total and a settable amount used
// by others; the reserve file's real size counts as used.
type fakeDisk struct {
	mu     sync.Mutex
	total  uint64
	others uint64
	dir    string
}

func (d *fakeDisk) statfs(string) (Usage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	used := d.others + uint64(fileSize(filepath.Join(d.dir, ReserveName)))
	free := d.total - min(used, d.total)
	return Usage{Total: d.total, Free: free, Avail: free}, nil
}

func (d *fakeDisk) setOthers(n uint64) { d.mu.Lock(); d.others = n; d.mu.Unlock() }

// sparse allocation keeps the test fast and small on the real disk.
func sparse(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(n)
}

func TestThresholdLevels(t *testing.T) {
	th := DefaultThresholds()
	for _, c := range []struct {
		used  float64
		avail uint64
		want  Level
	}{{50, 500 << 20, LevelOK}, {80, 200 << 20, LevelWarn}, {91, 90 << 20, LevelCritical}, {99.95, 500 << 10, LevelFull}} {
		total := uint64(1000 << 20)
		free := uint64(float64(total) * (100 - c.used) / 100)
		if got := th.Level(Usage{Total: total, Free: free, Avail: c.avail}); got != c.want {
			t.Errorf("used %.2f%%: %v, want %v", c.used, got, c.want)
		}
	}
	abs := Thresholds{WarnUsedPercent: 80, CriticalUsedPercent: 90, CriticalFreeBytes: 5 << 30}
	if got := abs.Level(Usage{Total: 100 << 30, Free: 4 << 30, Avail: 4 << 30}); got != LevelCritical {
		t.Fatalf("absolute critical floor ignored: %v", got)
	}
}

func TestReserveReleasedWhenFullAndRecreated(t *testing.T) {
	dir := t.TempDir()
	disk := &fakeDisk{total: 100 << 20, dir: dir}
	now := time.Unix(1700000000, 0)
	w := New(Config{Statfs: disk.statfs, Now: func() time.Time { return now }, Allocate: sparse})
	rotations := 0
	w.Add(Target{Name: "file", Dir: dir, Thresholds: DefaultThresholds(), ReserveBytes: 4 << 20,
		Rotate: func() error { rotations++; return nil }})
	w.Check()
	st, _ := w.State("file")
	if st.ReserveHeld != 4<<20 || st.Level != LevelOK {
		t.Fatalf("reserve not created: %+v", st)
	}
	disk.setOthers(97 << 20) // with the reserve the disk is full
	w.Check()
	st, _ = w.State("file")
	if st.ReserveHeld != 0 || st.Released != 1 {
		t.Fatalf("reserve not released when full: %+v", st)
	}
	if st.Level != LevelCritical || rotations != 1 {
		t.Fatalf("after release: level %v rotations %d", st.Level, rotations)
	}
	w.Check()
	if rotations != 1 {
		t.Fatal("rotated again while staying critical")
	}
	disk.setOthers(20 << 20)
	w.Check()
	st, _ = w.State("file")
	if st.ReserveHeld != 4<<20 || st.Level != LevelOK {
		t.Fatalf("reserve not re-created after space returned: %+v", st)
	}
	if !w.ReleaseReserve("file") {
		t.Fatal("ReleaseReserve on ENOSPC released nothing")
	}
	if w.ReleaseReserve("file") {
		t.Fatal("released twice")
	}
}

func TestRetentionStopsAtGuardedSegment(t *testing.T) {
	dir := t.TempDir()
	base := time.Unix(1700000000, 0)
	var segs []Segment
	for i := 0; i < 5; i++ {
		p := filepath.Join(dir, "audit-"+string(rune('a'+i))+".log")
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, Segment{Path: p, Created: base.Add(time.Duration(i) * time.Hour)})
	}
	disk := &fakeDisk{total: 100 << 20, others: 95 << 20, dir: dir} // critical: prune every pass
	held := segs[1].Path
	w := New(Config{Statfs: disk.statfs, Now: func() time.Time { return base.Add(10 * time.Hour) }, Allocate: sparse,
		Guards: []SegmentGuard{func(p string) (string, bool) { return "kafka-main", p == held }}})
	w.Add(Target{Name: "file", Dir: dir, Thresholds: DefaultThresholds(), MaxBackups: 2,
		Segments: func() ([]Segment, error) {
			var out []Segment
			for _, s := range segs {
				if _, err := os.Stat(s.Path); err == nil {
					out = append(out, s)
				}
			}
			return out, nil
		}})
	w.Check()
	st, _ := w.State("file")
	if _, err := os.Stat(segs[0].Path); err == nil {
		t.Fatal("oldest unguarded segment beyond max_backups not deleted")
	}
	if _, err := os.Stat(held); err != nil {
		t.Fatal("deleted a segment a shipper holds")
	}
	if _, err := os.Stat(segs[2].Path); err != nil {
		t.Fatal("deleted past the held segment (would leave a gap)")
	}
	if st.Holder != "kafka-main" || st.HeldPath != held || st.Pruned != 1 {
		t.Fatalf("state: %+v", st)
	}
	held = ""
	w.Check()
	for i, s := range segs {
		_, err := os.Stat(s.Path)
		if exists := err == nil; exists != (i >= 3) {
			t.Fatalf("segment %d exists=%v", i, exists)
		}
	}
}

func TestRealStatfs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Statfs is implemented on Linux only")
	}
	u, err := Statfs(t.TempDir())
	if err != nil {
		t.Fatalf("Statfs: %v", err)
	}
	if u.Total == 0 || u.Avail > u.Total || u.Free > u.Total {
		t.Fatalf("implausible usage %+v", u)
	}
	p := filepath.Join(t.TempDir(), ReserveName)
	if err := allocate(p, 1<<20); err != nil {
		t.Fatal(err)
	}
	if fileSize(p) != 1<<20 {
		t.Fatalf("reserve size %d", fileSize(p))
	}
}
