package chain

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// backupTimeFormat is the timestamp layout of rotated segment names,
// <prefix>-<timestamp><ext> (the layout lumberjack uses, so logs written
// before the chain named its own segments read the same way).
const backupTimeFormat = "2006-01-02T15-04-05.000"

// switchFile closes the active segment and opens a new one, whose header
// (reason s.switchReason) becomes the first line of the next batch. It is
// idempotent across failures: each step that already happened is skipped on
// retry.
//
//  1. If the active file is still at Path: fsync it if needed, rename it to
//     a fresh backup name (renameat2 RENAME_NOREPLACE: never over an
//     existing file), fsync the directory.
//  2. If it is no longer at Path (deleted, moved, replaced): if someone
//     renamed it to a backup name, keep it there; otherwise copy its
//     durable bytes, read through the still-open descriptor, into a fresh
//     backup file. Fsync it and the directory, so the directory keeps the
//     complete chain.
//  3. Create the new active file (O_EXCL; an empty file left at Path by an
//     interrupted switch is adopted), fsync the directory.
//
// A file that holds no line yet (its header was never written) is not a
// segment: it is neither rotated nor salvaged, and the next header reuses
// its index.
func (w *Writer) switchFile(now time.Time) error {
	s := &w.st
	if s.f != nil {
		if s.dirty {
			if err := w.syncFile(0, 0); err != nil {
				return err
			}
			s.dirty = false
		}
		if !s.missing && !w.atPath() {
			s.missing = true
		}
		switch {
		case s.off == 0:
		case s.missing:
			if name, ok := w.findRenamed(); ok {
				// Someone renamed it to a backup name: it already is a
				// complete rotated segment.
				if err := w.keepRenamed(name); err != nil {
					return classify("keep renamed segment", err)
				}
			} else if err := w.salvage(now); err != nil {
				return classify("salvage active segment", err)
			}
		default:
			if err := w.renameToBackup(now); err != nil {
				return classify("rotate", err)
			}
		}
		s.f.Close()
		s.f = nil
	}
	f, err := w.createActive(now)
	if err != nil {
		return classify("create segment", err)
	}
	id, err := f.Stat()
	if err != nil {
		f.Close()
		return classify("create segment", err)
	}
	if err := syncDir(filepath.Dir(w.cfg.Path)); err != nil {
		f.Close()
		return classify("fsync directory", err)
	}
	reason := s.switchReason
	s.f, s.id, s.off = f, id, 0
	s.segHasBody, s.dirty, s.missing, s.switchReason = false, false, false, ""
	index := s.seg.Index + 1
	if s.header != nil {
		index = s.header.Index // that segment never got its header
	}
	s.seg = SegmentHeader{Index: index, Created: now.UTC(), Reason: reason}
	if reason == ReasonRelink && w.cfg.relink != nil {
		l := w.cfg.relink.link
		s.seg.Link = &l
	}
	h := s.seg
	s.header = &h
	w.statsMu.Lock()
	if reason == ReasonRotate {
		w.stats.Rotations++
	}
	w.statsMu.Unlock()
	w.wakeCompressor()
	return nil
}

// keepRenamed accepts the active segment, found under the backup name
// name, as rotated: it holds exactly the durable bytes and the rename is
// made durable.
func (w *Writer) keepRenamed(name string) error {
	s := &w.st
	w.log.Warn("audit chain: active segment was renamed to a backup name; keeping it there", "to", name)
	if fi, err := s.f.Stat(); err != nil {
		return err
	} else if fi.Size() != s.off {
		if err := s.f.Truncate(s.off); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(w.cfg.Path))
}

// atPath reports whether Path still names the active file.
func (w *Writer) atPath() bool {
	st, err := os.Stat(w.cfg.Path)
	return err == nil && os.SameFile(st, w.st.id)
}

// backupName returns Path's backup name for time t.
func (w *Writer) backupName(t time.Time) string {
	dir, base := filepath.Split(w.cfg.Path)
	ext := filepath.Ext(base)
	return filepath.Join(dir, base[:len(base)-len(ext)]+"-"+t.UTC().Format(backupTimeFormat)+ext)
}

// freshBackup calls try with backup names starting at now and stepping by a
// millisecond while the name (or its .gz) is taken; try must fail with
// fs.ErrExist when its target exists.
func (w *Writer) freshBackup(now time.Time, try func(name string) error) (string, error) {
	for i := 0; i < 100000; i++ {
		name := w.backupName(now.Add(time.Duration(i) * time.Millisecond))
		if _, err := os.Lstat(name + ".gz"); err == nil {
			continue
		}
		err := try(name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, err
	}
	return "", errors.New("no free backup name")
}

func (w *Writer) renameToBackup(now time.Time) error {
	if _, err := w.freshBackup(now, func(name string) error {
		return renameNoReplace(w.cfg.Path, name)
	}); err != nil {
		return err
	}
	return syncDir(filepath.Dir(w.cfg.Path))
}

// salvage copies the first s.off bytes of the (vanished) active file into a
// new backup file. The copy is written and fsynced under a temporary name
// and then renamed, so a backup name only ever holds a complete segment
// (the compressor relies on that).
func (w *Writer) salvage(now time.Time) error {
	s := &w.st
	// A unique, exclusive temporary name: a leftover from a crash during an
	// earlier salvage may be the only copy of that segment's bytes.
	tmp := w.cfg.Path + ".salvage-" + strconv.FormatInt(time.Now().UnixNano(), 10) + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(s.f, 0, s.off))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	name, err := w.freshBackup(now, func(name string) error { return renameNoReplace(tmp, name) })
	if err != nil {
		return err
	}
	w.log.Warn("audit chain: active segment salvaged", "to", name, "bytes", s.off)
	return syncDir(filepath.Dir(w.cfg.Path))
}

// createActive creates a new, empty active file. A foreign file found at
// Path is adopted when empty and moved aside (Path + ".foreign-<unixnano>")
// otherwise; it is never overwritten.
func (w *Writer) createActive(now time.Time) (*os.File, error) {
	path := w.cfg.Path
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		f, err := openActive(path, os.O_CREATE|os.O_EXCL)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
		st, serr := os.Stat(path)
		if serr != nil {
			continue
		}
		if st.Size() == 0 && st.Mode().IsRegular() {
			return openActive(path, 0)
		}
		aside := path + ".foreign-" + strconv.FormatInt(now.UnixNano(), 10)
		if err := renameNoReplace(path, aside); err != nil {
			return nil, fmt.Errorf("move foreign file aside: %w", err)
		}
		s := &w.st
		s.events = append(s.events, Event{Kind: EventForeignFileMoved, Detail: "a foreign file at the active path was moved to " + filepath.Base(aside), Time: now.UTC()})
		w.log.Warn("audit chain: moved a foreign file away from the active path", "to", aside)
	}
	return nil, errors.New("active path keeps being recreated")
}

// watch checks that Path still names the active file and, if not, starts
// a new segment (reason "reopen") with an active_file_missing event.
func (w *Writer) watch() {
	s := &w.st
	if s.f == nil || s.switchReason != "" {
		return
	}
	if ok, detail := w.checkPath(); !ok {
		w.fileMissing(detail)
		if err := w.flush(false); err != nil {
			w.log.Error("audit chain: cannot start a new segment after the active file vanished", "err", err)
		}
	}
}

func (w *Writer) fileMissing(detail string) {
	s := &w.st
	now := w.cfg.Now()
	s.missing, s.switchReason = true, ReasonReopen
	s.events = append(s.events, Event{Kind: EventActiveFileMissing, Detail: detail, Time: now.UTC()})
	w.statsMu.Lock()
	w.stats.ActiveFileMissing++
	w.statsMu.Unlock()
	w.log.Warn("audit chain: active file missing", "path", w.cfg.Path, "detail", detail)
}

// checkPath reports whether Path still names the active file, and if not,
// what happened to it.
func (w *Writer) checkPath() (bool, string) {
	s := &w.st
	st, err := os.Stat(w.cfg.Path)
	if err == nil && os.SameFile(st, s.id) {
		return true, ""
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("audit chain: cannot stat the active path", "err", err)
		return true, "" // cannot tell; try again next tick
	}
	what := "moved"
	if cur, ferr := s.f.Stat(); ferr == nil {
		if n, ok := linkCount(cur); ok && n == 0 {
			what = "deleted"
		}
	}
	if err == nil {
		what += " and replaced by another file"
	}
	if name, ok := w.findRenamed(); ok {
		return false, fmt.Sprintf("active file %s was renamed to %s; its %d durable bytes up to seq %d stay there as a rotated segment",
			filepath.Base(w.cfg.Path), filepath.Base(name), s.off, s.seq)
	}
	return false, fmt.Sprintf("active file %s was %s; its %d durable bytes up to seq %d were salvaged into a rotated segment",
		filepath.Base(w.cfg.Path), what, s.off, s.seq)
}

// reopen implements Reopen in the writer goroutine.
func (w *Writer) reopen() error {
	s := &w.st
	w.statsMu.Lock()
	w.stats.Reopens++
	w.statsMu.Unlock()
	if s.f != nil && s.switchReason == "" {
		ok, detail := w.checkPath()
		if !ok {
			w.fileMissing(detail)
			return w.flush(false)
		}
		f, err := openActive(w.cfg.Path, 0)
		if err != nil {
			return classify("reopen", err)
		}
		id, err := f.Stat()
		if err != nil || !os.SameFile(id, s.id) {
			f.Close()
			w.fileMissing("active file replaced during reopen")
			return w.flush(false)
		}
		s.f.Close()
		s.f, s.id = f, id
		s.events = append(s.events, Event{Kind: EventReopened, Detail: "descriptors reopened", Time: w.cfg.Now().UTC()})
	}
	return w.flush(false)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// findRenamed looks for the active segment's inode under a plain backup
// name next to Path (someone renamed the active file to such a name).
func (w *Writer) findRenamed() (string, bool) {
	s := &w.st
	files, err := listSegmentFiles(w.cfg.Path)
	if err != nil {
		return "", false
	}
	for _, sf := range files {
		if sf.active || sf.compressed || sf.vanished {
			continue
		}
		if fi, err := os.Lstat(sf.path); err == nil && os.SameFile(fi, s.id) {
			return sf.path, true
		}
	}
	return "", false
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
