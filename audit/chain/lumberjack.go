package chain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// The active segment is written through a lumberjack.Logger, and rotation
// is lumberjack's Logger.Rotate (close, rename to a backup name, create a
// new file). Line references below are to lumberjack v2.2.1's lumberjack.go
// and chown_linux.go. Lumberjack is used only within these guarantees:
//
//   - It never rotates, deletes or compresses by itself: MaxSize is 1 PiB,
//     so neither Write (lines 140, 152) nor openExistingOrNew (276) rotates;
//     with MaxBackups, MaxAge and Compress all zero, millRunOnce returns at
//     once (305). The chain decides when to rotate, retention belongs to the
//     caller and compression is compressSegment, which fsyncs the .gz before
//     removing the original (lumberjack's compressLogFile, 468-519, does not).
//   - Backup names have millisecond resolution and os.Rename replaces an
//     existing file (lumberjack.go 221-222). Before any call that can rename
//     (Rotate, and a Write that reopens the file, whose fallback at 280-284
//     renames too), awaitFreshStamp waits until no backup name at or after
//     the current millisecond exists (this also spaces rotations at least
//     1 ms apart); if one lies further ahead (the clock stepped back),
//     rotation falls back to the chain's own no-replace rename, while a
//     reopening Write goes ahead (lumberjack renames there only if opening
//     the existing file fails). After Rotate the old file is looked up by
//     inode under its new name; if it is not there, its bytes are salvaged
//     from the descriptor. Only a wall-clock step back during the Rotate
//     call itself could still make lumberjack replace a file; that is
//     detected and logged as an error.
//   - The file Rotate creates is opened without O_APPEND (235). After a
//     failed or partial write is truncated away, such a descriptor would
//     write at its stale offset and leave a hole, so the Logger is closed
//     and the next Write reopens the file with O_APPEND (280). The first
//     write through any descriptor lumberjack opened is checked to have
//     landed in the writer's own inode (whose size must grow by exactly the
//     batch) before the batch is acknowledged; otherwise lumberjack wrote
//     to some other file (it opens Path by name and, when that fails,
//     renames the file away and starts a headerless one, 268-284): the
//     batch is written again, after a new segment (header, event) if the
//     active file is no longer at Path.
//   - fsync, truncation and salvage use the writer's own descriptor on the
//     same inode (fsync is per inode); the directory is fsynced after every
//     rename, which lumberjack never does.
//   - Each Logger starts a "mill" goroutine on its first Write or Rotate
//     (mill, 387-396, called at 202 and 265, whatever the configuration)
//     that ranges over a channel Close never closes (378-383): it lives as
//     long as the process. Closed Loggers are therefore pooled and reused,
//     which bounds those goroutines by the number of Writers open at once.
//
// Lumberjack takes backup timestamps from its own clock (time.Now, line
// 120). When Config.Now is not the default clock, the backup is renamed
// once more to the name Config.Now gives, so names follow the injected
// clock like every other timestamp.

// lumberjackMaxSizeMB keeps lumberjack from ever rotating on its own.
const lumberjackMaxSizeMB = 1 << 30 // 1 PiB

const (
	// stampHorizon: an existing backup name less than this far ahead of the
	// clock could be chosen by lumberjack for a rename that starts now.
	stampHorizon = time.Second
	// maxStampWait bounds how long awaitFreshStamp waits for the clock to
	// pass the newest backup name (rotations less than 1 ms apart).
	maxStampWait = 5 * time.Millisecond
)

// errLumberjackSwitched marks a batch that lumberjack wrote to a file other
// than the active segment. Nothing was written to the segment and no waiter
// was answered; flush writes the batch again once (after starting a new
// segment if the active file is no longer at Path).
var errLumberjackSwitched = errors.New("lumberjack wrote to a file other than the active segment")

var loggerPool struct {
	mu   sync.Mutex
	idle []*lumberjack.Logger
}

// getLogger returns a closed Logger for path. A reused Logger's mill
// goroutine only ever reads MaxBackups, MaxAge and Compress (lumberjack.go
// 305), which never change, so setting Filename on it does not race.
func getLogger(path string) *lumberjack.Logger {
	loggerPool.mu.Lock()
	defer loggerPool.mu.Unlock()
	if n := len(loggerPool.idle); n > 0 {
		l := loggerPool.idle[n-1]
		loggerPool.idle = loggerPool.idle[:n-1]
		l.Filename = path
		return l
	}
	return &lumberjack.Logger{
		Filename:   path,
		MaxSize:    lumberjackMaxSizeMB,
		MaxBackups: 0,     // never delete: retention belongs to the caller
		MaxAge:     0,     // idem
		Compress:   false, // compressSegment fsyncs; lumberjack's does not
		LocalTime:  false, // UTC names, as backupName
	}
}

// putLogger closes l and keeps it for reuse. l must not be used afterwards.
func putLogger(l *lumberjack.Logger) {
	if l == nil {
		return
	}
	l.Close()
	loggerPool.mu.Lock()
	loggerPool.idle = append(loggerPool.idle, l)
	loggerPool.mu.Unlock()
}

// closeLogger closes the Logger's descriptor; its next Write reopens Path
// with O_APPEND (lumberjack.go 280) and must be checked.
func (s *loopState) closeLogger() {
	if s.lj != nil {
		s.lj.Close()
	}
	s.ljOpen, s.ljAppend, s.ljChecked = false, false, false
}

// ljWrite writes data to the active segment through lumberjack. A Logger
// descriptor not yet known to be the writer's inode is checked after the
// write: if the bytes went elsewhere, the active segment is treated as
// missing and errLumberjackSwitched is returned.
func (w *Writer) ljWrite(data []byte) error {
	s := &w.st
	wasOpen := s.ljOpen
	if !wasOpen {
		// The Write reopens Path; if that open fails lumberjack renames
		// the file to a backup name (lumberjack.go 280-284, 221-222).
		w.awaitFreshStamp(nil)
	}
	_, err := s.lj.Write(data)
	if err != nil {
		if !wasOpen {
			s.closeLogger()
			if ok, detail := w.checkPath(); !ok {
				w.fileMissing("reopening the active file failed (" + err.Error() + "); " + detail)
			}
		}
		return classify("write", err)
	}
	if !s.ljChecked {
		fi, serr := s.f.Stat()
		if serr != nil {
			s.closeLogger()
			return classify("write: stat active segment", serr)
		}
		if fi.Size() != s.off+int64(len(data)) {
			s.closeLogger()
			w.log.Error("audit chain: lumberjack wrote a batch to a file other than the active segment",
				"path", w.cfg.Path, "segment_size", fi.Size(), "want", s.off+int64(len(data)))
			if ok, detail := w.checkPath(); !ok {
				w.fileMissing("lumberjack opened a file other than the active segment; " + detail)
			}
			// Otherwise Path is still the segment: the retry reopens it.
			return fmt.Errorf("audit chain: write: %w", errLumberjackSwitched)
		}
		s.ljChecked = true
		if !wasOpen {
			// Verified, so it was not openNew's descriptor (those are new,
			// empty files): it is openExistingOrNew's O_APPEND one (280).
			s.ljAppend = true
		}
		s.ljOpen = true
	}
	return nil
}

// afterFailedWrite runs once a failed batch was truncated away (or could
// not be). A descriptor without O_APPEND still points past the truncated
// bytes, and one that was never checked may not even be the active file:
// close both kinds, so the next Write reopens the file with O_APPEND.
func (s *loopState) afterFailedWrite() {
	if !(s.ljOpen && s.ljAppend && s.ljChecked) {
		s.closeLogger()
	}
}

// backupStamps returns the millisecond timestamps (Unix ms) of every
// backup-named file next to path, plain, compressed or being compressed.
func backupStamps(path string) (map[int64]bool, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(base)
	prefix := base[:len(base)-len(ext)] + "-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	stamps := map[int64]bool{}
	for _, e := range ents {
		name := e.Name()
		end := len(prefix) + len(backupTimeFormat)
		if !strings.HasPrefix(name, prefix) || len(name) < end || !strings.HasPrefix(name[end:], ext) {
			continue
		}
		if t, err := time.Parse(backupTimeFormat, name[len(prefix):end]); err == nil {
			stamps[t.UnixMilli()] = true
		}
	}
	return stamps, nil
}

// awaitFreshStamp makes sure a backup name lumberjack derives from the
// clock during the next moments is not taken: it waits (at most
// maxStampWait) until the current millisecond is past every existing
// backup name up to stampHorizon ahead. It reports false if a name further
// ahead than maxStampWait blocks (the clock stepped back, or names from an
// injected clock), or the directory cannot be read. taken may be nil.
func (w *Writer) awaitFreshStamp(taken map[int64]bool) bool {
	if taken == nil {
		var err error
		if taken, err = backupStamps(w.cfg.Path); err != nil {
			w.log.Warn("audit chain: cannot list rotated segments", "err", err)
			return false
		}
	}
	deadline := time.Now().Add(maxStampWait)
	for {
		now := time.Now().UnixMilli()
		inHorizon := func(t int64) bool { return t >= now && t <= now+stampHorizon.Milliseconds() }
		block := int64(-1) // the newest taken stamp within the horizon
		for t := range taken {
			if inHorizon(t) && t > block {
				block = t
			}
		}
		if t := w.st.lastStamp; inHorizon(t) && t > block {
			block = t // our last rotation, even if its file is gone
		}
		if block < 0 {
			return true
		}
		wake := time.UnixMilli(block + 1)
		if wake.After(deadline) {
			w.log.Warn("audit chain: a rotated segment is named after the current time (clock stepped back?)",
				"name", filepath.Base(w.backupName(time.UnixMilli(block))))
			return false
		}
		time.Sleep(time.Until(wake))
	}
}

// rotateActive moves the active segment (at Path, non-empty, durable) to a
// backup name with lumberjack's Rotate, falling back to the chain's own
// no-replace rename when lumberjack's name could collide or it did not
// rename. The new empty file lumberjack created (if any) is adopted by
// createActive.
func (w *Writer) rotateActive(now time.Time) error {
	s := &w.st
	taken, err := backupStamps(w.cfg.Path)
	if err != nil {
		return err
	}
	if !w.awaitFreshStamp(taken) {
		s.closeLogger()
		return w.renameToBackup(now)
	}
	// The compressor must not list the directory while lumberjack's name
	// exists only to be renamed to the Config.Now name below.
	w.nameMu.Lock()
	defer w.nameMu.Unlock()
	t1 := time.Now()
	rerr := s.lj.Rotate()
	t2 := time.Now()
	// On success lumberjack holds openNew's descriptor (no O_APPEND) on
	// the new file; on failure it holds none.
	s.ljOpen, s.ljAppend, s.ljChecked = rerr == nil, false, false
	if w.atPath() {
		// Nothing was renamed (lumberjack.go 196-198 or 209-224 failed).
		w.log.Error("audit chain: lumberjack did not rotate the active segment; renaming it without lumberjack", "err", rerr)
		s.closeLogger()
		return w.renameToBackup(now)
	}
	name := w.locateRotated(t1, t2)
	if name == "" {
		w.log.Error("audit chain: rotated segment not found under a backup name after lumberjack's Rotate; salvaging it from the open descriptor",
			"path", w.cfg.Path, "err", rerr)
		s.closeLogger()
		return w.salvage(now)
	}
	if rerr != nil {
		// Renamed, but the new file was not created (chown_linux.go 12 or
		// lumberjack.go 235 failed): createActive creates it.
		w.log.Warn("audit chain: lumberjack rotated the segment but could not create the new file", "err", rerr)
	}
	if ms, ok := w.backupStamp(name); ok {
		if taken[ms] {
			// Only possible if the wall clock stepped back during Rotate.
			w.log.Error("audit chain: lumberjack's rotation replaced an existing rotated segment; that segment is lost", "name", name)
		}
		if w.cfg.realClock {
			s.lastStamp = ms
		}
	}
	if !w.cfg.realClock && name != w.backupName(now) {
		final, err := w.freshBackup(now, func(n string) error { return renameNoReplace(name, n) })
		if err != nil {
			w.log.Warn("audit chain: cannot rename rotated segment to its Config.Now name; keeping lumberjack's", "name", name, "err", err)
		} else {
			name = final
		}
	}
	return syncDir(filepath.Dir(w.cfg.Path))
}

// backupStamp returns the Unix millisecond timestamp in a backup name of
// Path.
func (w *Writer) backupStamp(name string) (int64, bool) {
	base := filepath.Base(w.cfg.Path)
	ext := filepath.Ext(base)
	prefix := base[:len(base)-len(ext)] + "-"
	n := filepath.Base(name)
	if !isBackupName(n, prefix, ext) {
		return 0, false
	}
	t, err := time.Parse(backupTimeFormat, n[len(prefix):len(n)-len(ext)])
	return t.UnixMilli(), err == nil
}

// locateRotated returns the backup name that now holds the active
// segment's inode after a Rotate that ran between t1 and t2: lumberjack's
// name for a millisecond in that range, or any backup name if the clock
// jumped. "" if the inode is under no backup name.
func (w *Writer) locateRotated(t1, t2 time.Time) string {
	s := &w.st
	for ms := t1.UnixMilli(); ms <= t2.UnixMilli() && ms < t1.UnixMilli()+1000; ms++ {
		name := w.backupName(time.UnixMilli(ms))
		if fi, err := os.Lstat(name); err == nil && os.SameFile(fi, s.id) {
			return name
		}
	}
	name, _ := w.findRenamed()
	return name
}

// findRenamed looks for the active segment's inode under a plain backup
// name next to Path (lumberjack renames it there when reopening fails).
func (w *Writer) findRenamed() (string, bool) {
	s := &w.st
	files, err := listSegmentFiles(w.cfg.Path)
	if err != nil {
		return "", false
	}
	for _, sf := range files {
		if sf.active || sf.compressed {
			continue
		}
		if fi, err := os.Lstat(sf.path); err == nil && os.SameFile(fi, s.id) {
			return sf.path, true
		}
	}
	return "", false
}
