package chain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// TornTailWindow is how far from the end of the active segment Open looks
// for damage in FsyncAlways mode. Only the last, unacknowledged batch can be
// torn by a crash, and a batch is at most MaxBatchBytes plus one entry, so
// damage further back is not a crash artifact: Open fails with ErrCorrupt.
// In the other fsync modes any unsynced suffix may be damaged, so the whole
// active segment is the window.
const TornTailWindow = 16 << 20

// scanResult is what scanning a run of lines found.
type scanResult struct {
	validEnd int            // end of the last intact line (relative to the scanned data)
	lines    int            // intact lines
	lastSeq  uint64         // seq of the last intact line
	lastHash []byte         // its hash (aliases the data)
	header   *SegmentHeader // header, if the data starts at file offset 0
	hdrLen   int            // length of the header line
	badLine  string         // why scanning stopped early, if it did
}

// scanIntact walks complete lines of data from the start and stops at the
// first line that is not intact: no newline, chain members unparsable, hash
// wrong, node id not nodeID, or not linked to the line before it. When
// fileStart is set the first line must be a consistent segment header.
func scanIntact(data []byte, fileStart bool, nodeID string, lh *lineHasher) (scanResult, error) {
	var r scanResult
	var got [hashHexLen]byte
	prevSeq := uint64(0)
	var prevHash []byte
	for off := 0; off < len(data); {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			r.badLine = "partial line without newline"
			break
		}
		line := data[off : off+nl]
		f, err := parseChain(line)
		if err != nil {
			r.badLine = err.Error()
			break
		}
		if string(f.NodeID) != nodeID {
			return r, fmt.Errorf("%w: line seq %d has node_id %q, writer is %q", ErrNodeMismatch, f.Seq, f.NodeID, nodeID)
		}
		lh.hash(got[:], f.PrevHash, line[:f.CanonEnd])
		if !bytes.Equal(got[:], f.Hash) {
			r.badLine = fmt.Sprintf("hash mismatch at seq %d", f.Seq)
			break
		}
		// An intact line (its own hash verifies) that does not continue
		// the chain is never what a crash leaves: a crash only damages
		// the unsynced end of the last batch, whose lines were written in
		// order. It means lines were removed or inserted.
		if r.lines > 0 && (f.Seq != prevSeq+1 || !bytes.Equal(f.PrevHash, prevHash)) {
			kind := KindReordered
			if f.Seq > prevSeq+1 {
				kind = KindDeleted
			}
			return r, &RefusalError{Failure: &Failure{Kind: kind, Seq: prevSeq + 1, Detail: fmt.Sprintf(
				"intact line seq %d follows seq %d near the end of the log: lines were removed or inserted (a crash cannot do this)", f.Seq, prevSeq)}}
		}
		if r.lines == 0 && fileStart {
			if recordType(line) != TypeSegment {
				return r, &RefusalError{Failure: &Failure{Kind: KindSplice, Seq: f.Seq, Detail: "the segment's first line is an intact line but not a segment header"}}
			}
			h, err := parseSegmentBody(append(line[:f.BodyEnd:f.BodyEnd], '}'))
			if err != nil || h.PrevSegmentLastSeq != f.Seq-1 || h.PrevSegmentLastHash != string(f.PrevHash) {
				r.badLine = "inconsistent segment header"
				break
			}
			r.header, r.hdrLen = &h, nl+1
		}
		prevSeq, prevHash = f.Seq, f.Hash
		r.lines++
		r.lastSeq, r.lastHash = f.Seq, f.Hash
		off += nl + 1
		r.validEnd = off
	}
	return r, nil
}

// recover restores the writer's state from the files at Path before the
// writer goroutine starts. See Open.
func (w *Writer) recover() error {
	s := &w.st
	path := w.cfg.Path
	now := w.cfg.Now()
	s.lastCPTime = now
	s.hash = [hashHexLen]byte([]byte(ZeroHash))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit chain: open: %w", err)
	}
	activeExisted := true
	f, err := openActive(path, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		activeExisted = false
	case err != nil:
		return fmt.Errorf("audit chain: open: %w", err)
	}
	if w.cfg.relink != nil {
		if f != nil {
			f.Close()
		}
		return w.startRelinked(now)
	}
	if f != nil {
		ok, err := w.recoverActive(f, now)
		if err != nil {
			f.Close()
			var re *RefusalError
			if errors.As(err, &re) && re.Failure.File == "" {
				re.Failure.File = path
			}
			return err
		}
		if ok {
			return w.startupCheck()
		}
		f.Close() // empty: adopted by createActive below
	}
	// No usable active segment: continue the chain from the newest rotated
	// segment, or start a new chain.
	b, err := w.newestBackup()
	if err != nil {
		return err
	}
	if b != nil {
		s.seq, s.seg.Index = b.lastSeq, b.header.Index
		copy(s.hash[:], b.lastHash)
		if !activeExisted {
			s.events = append(s.events, Event{Kind: EventActiveFileMissing, Time: now.UTC(),
				Detail: fmt.Sprintf("active file absent at open (deleted while stopped, or a crash during rotation); continuing after %s, seq %d", filepath.Base(b.path), b.lastSeq)})
		}
	}
	s.switchReason = ReasonStart
	s.events = append(s.events, Event{Kind: EventStarted, Detail: "writer opened", Time: now.UTC()})
	return w.startupCheck()
}

// recoverActive restores state from a non-empty active file, removing a torn
// tail. It returns false if the file holds no intact line (and is now empty).
func (w *Writer) recoverActive(f *os.File, now time.Time) (bool, error) {
	s := &w.st
	id, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("audit chain: open: %w", err)
	}
	size := id.Size()
	if size == 0 {
		return false, nil
	}
	window := size
	if w.cfg.Fsync == FsyncAlways {
		window = min(size, TornTailWindow)
	}
	start := size - window
	data := make([]byte, window)
	if _, err := f.ReadAt(data, start); err != nil {
		return false, fmt.Errorf("audit chain: open: read tail: %w", err)
	}
	skip := 0
	if start > 0 { // the window starts mid-line: skip to the next line
		skip = bytes.IndexByte(data, '\n') + 1
		if skip == 0 {
			return false, fmt.Errorf("%w: no line boundary in the last %d bytes of %s", ErrCorrupt, window, f.Name())
		}
	}
	res, err := scanIntact(data[skip:], start == 0, w.cfg.NodeID, s.lh)
	if err != nil {
		return false, err
	}
	if start > 0 && res.lines == 0 {
		return false, fmt.Errorf("%w: no intact line in the last %d bytes of %s (%s)", ErrCorrupt, window, f.Name(), res.badLine)
	}
	hdr := res.header
	hdrLen := int64(res.hdrLen)
	if start > 0 {
		h, _, n, err := readHeader(io.NewSectionReader(f, 0, size))
		if err != nil {
			return false, fmt.Errorf("%w: %s: %v", ErrCorrupt, f.Name(), err)
		}
		hdr, hdrLen = &h, int64(n)
	}
	validEnd := start + int64(skip+res.validEnd)
	if torn := size - validEnd; torn > 0 {
		saved := w.cfg.Path + ".torn-" + strconv.FormatInt(now.UnixNano(), 10)
		if err := os.WriteFile(saved, data[int64(len(data))-torn:], 0o600); err != nil {
			saved = "(not saved: " + err.Error() + ")"
		}
		if err := f.Truncate(validEnd); err != nil {
			return false, fmt.Errorf("audit chain: open: truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return false, classify("open: fsync after truncating torn tail", err)
		}
		w.statsMu.Lock()
		w.stats.TornTailBytes += uint64(torn)
		w.statsMu.Unlock()
		after := "the start of the file"
		if res.lines > 0 {
			after = "seq " + strconv.FormatUint(res.lastSeq, 10)
		}
		s.events = append(s.events, Event{Kind: EventTornTail, Time: w.cfg.Now().UTC(),
			Detail: fmt.Sprintf("truncated %d torn bytes after %s (%s); saved to %s", torn, after, res.badLine, filepath.Base(saved))})
	}
	if validEnd == 0 {
		return false, nil
	}
	s.f, s.id, s.off = f, id, validEnd
	s.seq = res.lastSeq
	copy(s.hash[:], res.lastHash)
	s.seg = *hdr
	s.segHasBody = validEnd > hdrLen
	s.events = append(s.events, Event{Kind: EventStarted, Detail: "writer opened", Time: w.cfg.Now().UTC()})
	return true, nil
}

// backupTail is the end of a rotated segment.
type backupTail struct {
	path     string
	header   SegmentHeader
	lastSeq  uint64
	lastHash []byte
}

// newestBackup returns the tail of the rotated segment with the highest
// header index (the longest intact copy if several files share it), or nil
// if there is none.
func (w *Writer) newestBackup() (*backupTail, error) {
	segs, err := listSegmentFiles(w.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("audit chain: open: %w", err)
	}
	var best *backupTail
	for _, sf := range segs {
		if sf.active || sf.vanished {
			continue
		}
		h, err := readHeaderFile(sf.path)
		if err != nil {
			return nil, fmt.Errorf("%w: rotated segment %s: %v", ErrCorrupt, sf.path, err)
		}
		if best != nil && h.Index < best.header.Index {
			continue
		}
		t, err := w.readBackupTail(sf.path)
		if err != nil {
			return nil, err
		}
		t.header = h
		if best == nil || h.Index > best.header.Index || t.lastSeq > best.lastSeq {
			best = t
		}
	}
	return best, nil
}

func (w *Writer) readBackupTail(path string) (*backupTail, error) {
	rc, err := openSegment(path)
	if err != nil {
		return nil, fmt.Errorf("audit chain: open: %w", err)
	}
	defer rc.Close()
	tail := &tailKeeper{max: TornTailWindow}
	if _, err := io.Copy(tail, rc); err != nil {
		return nil, fmt.Errorf("audit chain: open: read %s: %w", path, err)
	}
	tail.compact()
	data := tail.buf
	skip := 0
	if tail.dropped {
		skip = bytes.IndexByte(data, '\n') + 1
	}
	res, err := scanIntact(data[skip:], !tail.dropped, w.cfg.NodeID, w.st.lh)
	if err != nil {
		return nil, err
	}
	if res.lines == 0 {
		return nil, fmt.Errorf("%w: rotated segment %s has no intact line at its end (%s)", ErrCorrupt, path, res.badLine)
	}
	return &backupTail{path: path, lastSeq: res.lastSeq, lastHash: bytes.Clone(res.lastHash)}, nil
}

// tailKeeper is an io.Writer that keeps the last max bytes written to it.
type tailKeeper struct {
	max     int
	buf     []byte
	dropped bool
}

func (t *tailKeeper) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max { // compact rarely: amortised O(1) per byte
		t.compact()
	}
	return len(p), nil
}

func (t *tailKeeper) compact() {
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.dropped = true
	}
}
