// Package diskwatch watches the free space of audit device folders and acts
// on pressure: it reports levels (ok, warn, critical, full) for health and
// metrics, keeps an emergency reserve file per folder that it releases when
// the disk fills so that alerts and the audit of the operator's recovery can
// still be written, rotates at critical pressure, and deletes the oldest
// rotated segments that retention allows — never one a shipper still holds
// (see SegmentGuard).
//
// Nothing here sleeps or reads the wall clock on its own: Check runs one
// pass and Run drives it from an injected tick channel, with an injected
// Now and Statfs, so tests control time and disk sizes.
package diskwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Usage is a filesystem's size and free space in bytes.
type Usage struct {
	Total uint64 // size of the filesystem
	Free  uint64 // free blocks, including those reserved for root
	Avail uint64 // free to unprivileged writers
}

// UsedPercent is the share of Total not free, in percent (0 for an empty Total).
func (u Usage) UsedPercent() float64 {
	if u.Total == 0 {
		return 0
	}
	return 100 * float64(u.Total-min(u.Free, u.Total)) / float64(u.Total)
}

// FreePercent is 100 - UsedPercent.
func (u Usage) FreePercent() float64 { return 100 - u.UsedPercent() }

// StatfsFunc reports the usage of the filesystem holding dir.
type StatfsFunc func(dir string) (Usage, error)

// Level is a pressure level, ordered.
type Level int

// Levels.
const (
	LevelOK       Level = iota
	LevelWarn           // above the warn threshold: health "degraded"
	LevelCritical       // above the critical threshold: rotate, compress, prune
	LevelFull           // no room left for an audit batch (or ENOSPC seen)
)

func (l Level) String() string {
	switch l {
	case LevelWarn:
		return "warn"
	case LevelCritical:
		return "critical"
	case LevelFull:
		return "full"
	}
	return "ok"
}

// Thresholds define the levels. A level is reached when either its used
// percentage or its free-bytes floor is crossed (a zero floor is unset).
type Thresholds struct {
	WarnUsedPercent     float64 // default 80
	CriticalUsedPercent float64 // default 90
	WarnFreeBytes       int64
	CriticalFreeBytes   int64
	// FullFreeBytes: below this much available space the disk counts as
	// full and the reserve is released (default 1 MiB).
	FullFreeBytes int64
}

// DefaultThresholds returns 80% / 90% used, full below 1 MiB.
func DefaultThresholds() Thresholds {
	return Thresholds{WarnUsedPercent: 80, CriticalUsedPercent: 90, FullFreeBytes: 1 << 20}
}

// Level classifies u.
func (t Thresholds) Level(u Usage) Level {
	used := u.UsedPercent()
	avail := int64(u.Avail)
	switch {
	case t.FullFreeBytes > 0 && avail < t.FullFreeBytes:
		return LevelFull
	case used >= t.CriticalUsedPercent || t.CriticalFreeBytes > 0 && avail < t.CriticalFreeBytes:
		return LevelCritical
	case used >= t.WarnUsedPercent || t.WarnFreeBytes > 0 && avail < t.WarnFreeBytes:
		return LevelWarn
	}
	return LevelOK
}

// SegmentGuard is provided by each streaming shipper: busy is true when the
// shipper has not yet passed the segment at path (so it must not be
// deleted), and holder names the shipper for health reports.
type SegmentGuard func(path string) (holder string, busy bool)

// Segment is a rotated (never the active) segment of a device's log, as
// the device lists them, oldest first.
type Segment struct {
	Path    string
	Created time.Time
	Size    int64
}

// Target is one watched device.
type Target struct {
	Name       string
	Dir        string
	Thresholds Thresholds
	// ReserveBytes is the emergency reserve kept in Dir (0: none).
	ReserveBytes int64
	// Rotate closes the active segment (called on entering critical).
	Rotate func() error
	// Segments lists the rotated segments, oldest first.
	Segments func() ([]Segment, error)
	// MaxBackups and MaxAge are retention: rotated segments beyond the
	// newest MaxBackups, or created more than MaxAge ago, may be deleted
	// (zero: keep). Deletion happens oldest first and stops at the first
	// segment a guard holds.
	MaxBackups int
	MaxAge     time.Duration
	// BeforeDelete, if set, runs before retention deletes a segment; an
	// error keeps the segment (the audit log records each deletion in its
	// chain first, so a verifier can tell retention from tampering).
	BeforeDelete func(s Segment) error
}

// State is what the watcher knows about a target.
type State struct {
	Name        string
	Dir         string
	Level       Level
	Usage       Usage
	Err         string    // last statfs or action error
	ReserveHeld int64     // bytes currently held in the reserve file
	Holder      string    // shipper holding a segment retention would delete
	HeldPath    string    // that segment
	Pruned      uint64    // segments deleted by retention
	Released    uint64    // times the reserve was released
	Checked     time.Time // last check
}

// Config configures a Watcher.
type Config struct {
	Statfs StatfsFunc       // default: the real statfs
	Now    func() time.Time // default time.Now
	Logger *slog.Logger
	// Guards is read on every pass; shippers register theirs (see AddGuard).
	Guards []SegmentGuard
	// PruneEvery is how many passes between routine retention runs
	// (default 60); at critical pressure retention runs every pass.
	PruneEvery int
	// Allocate preallocates a reserve file of n bytes (default: fallocate,
	// falling back to writing zeros).
	Allocate func(path string, n int64) error
}

// ReserveName is the reserve file's name inside each device folder.
const ReserveName = ".vigil-audit-reserve"

// Watcher watches targets. It is safe for concurrent use.
type Watcher struct {
	cfg Config

	mu      sync.Mutex
	targets map[string]*target
	guards  []SegmentGuard
	passes  int

	// states is a copy of every target's state, published under mu after
	// each change, so that readers (sys/health, metrics) never wait for a
	// pass whose statfs is stuck on a hung disk.
	states atomic.Pointer[[]State]
}

// publish copies the targets' states for States and State. Caller holds w.mu.
func (w *Watcher) publish() {
	out := make([]State, 0, len(w.targets))
	for _, t := range w.targets {
		out = append(out, t.st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	w.states.Store(&out)
}

type target struct {
	t          Target
	st         State
	inCritical bool
}

// New returns a watcher.
func New(cfg Config) *Watcher {
	if cfg.Statfs == nil {
		cfg.Statfs = Statfs
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = 60
	}
	if cfg.Allocate == nil {
		cfg.Allocate = allocate
	}
	return &Watcher{cfg: cfg, targets: map[string]*target{}, guards: append([]SegmentGuard(nil), cfg.Guards...)}
}

// AddGuard registers a shipper's segment guard.
func (w *Watcher) AddGuard(g SegmentGuard) {
	w.mu.Lock()
	w.guards = append(w.guards, g)
	w.mu.Unlock()
}

// Add starts watching t (replacing a target of the same name).
func (w *Watcher) Add(t Target) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.targets[t.Name] = &target{t: t, st: State{Name: t.Name, Dir: t.Dir}}
	w.publish()
}

// Remove stops watching name. Its reserve file is left in place.
func (w *Watcher) Remove(name string) {
	w.mu.Lock()
	delete(w.targets, name)
	w.publish()
	w.mu.Unlock()
}

// States returns the state of every target as of the end of the last pass
// or change, sorted by name. It never waits for a pass in progress.
func (w *Watcher) States() []State {
	p := w.states.Load()
	if p == nil {
		return []State{}
	}
	return append([]State(nil), (*p)...)
}

// State returns one target's state (as States does).
func (w *Watcher) State(name string) (State, bool) {
	p := w.states.Load()
	if p == nil {
		return State{}, false
	}
	for _, st := range *p {
		if st.Name == name {
			return st, true
		}
	}
	return State{}, false
}

// Run calls Check on every tick until ctx is done.
func (w *Watcher) Run(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			w.Check()
		}
	}
}

// Check runs one pass over every target: statfs, level, reserve, and at
// critical pressure rotation and retention. Targets are processed one at a
// time under the watcher's lock; callbacks must not call back into w.
func (w *Watcher) Check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.passes++
	names := make([]string, 0, len(w.targets))
	for n := range w.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w.check(w.targets[n])
	}
	w.publish()
}

func (w *Watcher) check(t *target) {
	now := w.cfg.Now()
	t.st.Checked = now
	t.st.Err = ""
	u, err := w.cfg.Statfs(t.t.Dir)
	if err != nil {
		t.st.Err = "statfs: " + err.Error()
		return
	}
	t.st.Usage = u
	lvl := t.t.Thresholds.Level(u)
	reserve := filepath.Join(t.t.Dir, ReserveName)
	held := fileSize(reserve)
	t.st.ReserveHeld = held
	if lvl == LevelFull && held > 0 {
		w.release(t, reserve, "disk full")
		if u2, err := w.cfg.Statfs(t.t.Dir); err == nil {
			t.st.Usage, lvl = u2, t.t.Thresholds.Level(u2)
		}
	}
	if lvl >= LevelCritical {
		if !t.inCritical && t.t.Rotate != nil {
			if err := t.t.Rotate(); err != nil {
				t.st.Err = "rotate: " + err.Error()
			}
		}
		t.inCritical = true
		w.prune(t, now)
	} else {
		t.inCritical = false
		if w.passes%w.cfg.PruneEvery == 0 {
			w.prune(t, now)
		}
	}
	t.st.Level = lvl
	// Re-create the reserve once there is room for it without reaching
	// critical pressure.
	if t.t.ReserveBytes > 0 && held < t.t.ReserveBytes && lvl < LevelCritical {
		after := u
		need := uint64(t.t.ReserveBytes - held)
		if after.Avail > need && after.Free > need {
			after.Avail -= need
			after.Free -= need
			if t.t.Thresholds.Level(after) < LevelCritical {
				if err := w.cfg.Allocate(reserve, t.t.ReserveBytes); err != nil {
					_ = os.Remove(reserve)
					t.st.Err = "reserve: " + err.Error()
				} else {
					t.st.ReserveHeld = t.t.ReserveBytes
				}
			}
		}
	}
}

// ReleaseReserve deletes name's reserve file now (the device saw ENOSPC).
// It reports whether any space was released.
func (w *Watcher) ReleaseReserve(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.targets[name]
	if !ok {
		return false
	}
	reserve := filepath.Join(t.t.Dir, ReserveName)
	if fileSize(reserve) == 0 {
		return false
	}
	w.release(t, reserve, "ENOSPC")
	t.st.Level = LevelFull
	w.publish()
	return true
}

func (w *Watcher) release(t *target, reserve, why string) {
	if err := os.Remove(reserve); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.st.Err = "release reserve: " + err.Error()
		return
	}
	t.st.ReserveHeld = 0
	t.st.Released++
	w.cfg.Logger.Warn("audit disk full: emergency reserve released", "device", t.t.Name, "dir", t.t.Dir, "reason", why)
}

// prune deletes rotated segments that retention allows, oldest first,
// stopping at the first one a guard holds.
func (w *Watcher) prune(t *target, now time.Time) {
	t.st.Holder, t.st.HeldPath = "", ""
	if t.t.Segments == nil || (t.t.MaxBackups <= 0 && t.t.MaxAge <= 0) {
		return
	}
	segs, err := t.t.Segments()
	if err != nil {
		t.st.Err = "list segments: " + err.Error()
		return
	}
	for i, s := range segs {
		overCount := t.t.MaxBackups > 0 && len(segs)-i > t.t.MaxBackups
		tooOld := t.t.MaxAge > 0 && now.Sub(s.Created) > t.t.MaxAge
		if !overCount && !tooOld {
			return
		}
		for _, g := range w.guards {
			if holder, busy := g(s.Path); busy {
				t.st.Holder, t.st.HeldPath = holder, s.Path
				return
			}
		}
		if t.t.BeforeDelete != nil {
			if err := t.t.BeforeDelete(s); err != nil {
				t.st.Err = fmt.Sprintf("record deletion of %s: %v", filepath.Base(s.Path), err)
				return
			}
		}
		if err := os.Remove(s.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.st.Err = fmt.Sprintf("delete %s: %v", filepath.Base(s.Path), err)
			return
		}
		t.st.Pruned++
		w.cfg.Logger.Info("audit retention: deleted rotated segment", "device", t.t.Name, "segment", s.Path)
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
