package ship

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/logline"
)

// Record is one line of the local log, as shipped.
type Record struct {
	Seq      uint64
	NodeID   string
	PrevHash string
	Hash     string
	// Line is the exact bytes of the local line, without its newline.
	Line []byte
	// Time is the line's own time (logline.Time); zero if it has none.
	Time time.Time
}

// HeadFunc reports the seq of the last durable line of the log: lines
// after it may still be truncated away by a failed fsync and are not
// shipped. ok is false when no writer has the log open; every complete
// line is then final.
type HeadFunc func() (seq uint64, ok bool)

// Position is a place in a chain: the line with seq Seq and hash Hash.
// The zero Position is "before the oldest segment"; an empty Hash is
// "whatever comes next" (not checked).
type Position struct {
	Seq  uint64
	Hash string
}

// Errors returned by Tailer.Next. Match them with errors.Is.
var (
	// ErrChainMismatch: the local log does not continue the chain the
	// tailer expects (another node's lines, a prev_hash that does not
	// match the last shipped hash, a seq jump inside a segment, a
	// malformed complete line). Shipping stops: sending it would put a
	// broken chain in the sink.
	ErrChainMismatch = errors.New("audit stream: local log does not continue the shipped chain")
	// ErrSegmentMissing: the segment that continues the chain after the
	// one just read (header index + 1) stayed absent for
	// TailerConfig.MissingSegmentWait while a later segment is on disk.
	// The tailer never skips to the later one; errors with it also match
	// ErrChainMismatch (shipping stalls, loudly).
	ErrSegmentMissing = errors.New("audit stream: the next segment of the chain is missing")
)

// Gap records lines that were deleted before the tailer read them
// (From..To inclusive): only possible when segments are removed by hand or
// by retention without a guard, and only before the segment the tailer
// starts in (its After position lies before the oldest segment on disk).
// Once reading, the tailer follows segments by header index and never
// jumps over a missing one (ErrSegmentMissing).
type Gap struct {
	From, To uint64
	At       time.Time
}

// TailerConfig configures a Tailer.
type TailerConfig struct {
	// Path is the log's active segment file (the device's path).
	Path string
	// NodeID, when set, is the node every line must belong to.
	NodeID string
	// After is where to start: the first record returned has seq
	// After.Seq+1 (and prev_hash After.Hash when set). The zero value
	// starts at the oldest segment still on disk.
	After Position
	// Head gates the active segment (see HeadFunc); nil means no writer.
	Head HeadFunc
	// Poll is how often Next looks for new lines (default 10ms).
	Poll time.Duration
	// Now stamps gaps and times MissingSegmentWait (default time.Now).
	Now func() time.Time
	// MissingSegmentWait is how long a segment may be absent from the
	// directory listing, while a later one is present, before the tailer
	// believes it is gone (default 10s): the next segment in chain order
	// then fails Next with ErrSegmentMissing; a gap before the starting
	// segment is recorded as a Gap. Until then the tailer lists again
	// every Poll: a listing taken while the writer rotates or compresses
	// must never make it skip a segment.
	MissingSegmentWait time.Duration
}

// DefaultMissingSegmentWait is TailerConfig.MissingSegmentWait's default.
const DefaultMissingSegmentWait = 10 * time.Second

// Tailer reads a log's lines in seq order across segment files: rotated,
// gzip'd and the active one, following rotation, compression and
// replacement of the active file while it reads. It is not safe for
// concurrent use; one goroutine owns it.
type Tailer struct {
	cfg TailerConfig

	// Chain state: the next seq expected and the hash its prev_hash must
	// equal ("" = unchecked). next == 0 means "anything": the first line
	// read fixes it.
	next uint64
	prev string

	// Current segment.
	seg       *chain.SegmentInfo
	active    bool
	file      *os.File // plain files (active or rotated)
	rc        io.ReadCloser
	br        *bufio.Reader
	wantIndex uint64 // the segment to open next (0: position by seq)
	partial   []byte
	readOff   int64 // bytes consumed from the current file, partial line included

	// Held line: complete but beyond the writer's durable head.
	held       *Record
	heldStart  int64 // offset of the held line
	badAt      int64 // offset of a bad line in the active file
	badCount   int
	commitOff  int64 // offset after the last line returned (active file)
	commitNext uint64
	commitPrev string

	gaps     []Gap
	lastRead uint64
	// missingSince is when the segment the tailer waits for was first
	// seen missing while a later one was listed (zero: not missing).
	missingSince time.Time
}

// NewTailer returns a tailer; it opens files lazily in Next.
func NewTailer(cfg TailerConfig) *Tailer {
	if cfg.Poll <= 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MissingSegmentWait <= 0 {
		cfg.MissingSegmentWait = DefaultMissingSegmentWait
	}
	t := &Tailer{cfg: cfg}
	if cfg.After.Seq > 0 {
		t.next, t.prev = cfg.After.Seq+1, cfg.After.Hash
	}
	t.commitNext, t.commitPrev = t.next, t.prev
	return t
}

// Gaps returns the gaps met so far.
func (t *Tailer) Gaps() []Gap { return append([]Gap(nil), t.gaps...) }

// LastRead is the seq of the last line read from disk (held lines
// included); 0 before the first.
func (t *Tailer) LastRead() uint64 { return t.lastRead }

// Close releases the open segment file.
func (t *Tailer) Close() error {
	t.closeSeg()
	return nil
}

// Next returns the next records in seq order: at least one and at most
// max. When fewer than max are ready it keeps reading for up to linger
// after the first one. It blocks until a record is available or ctx is
// done (then it returns ctx.Err() and any records already read — callers
// must ship or drop them consistently; the Shipper drops them and starts
// a new tailer from its cursor). Errors: ErrChainMismatch (wrapped with
// the detail), or an I/O error reading a segment.
func (t *Tailer) Next(ctx context.Context, max int, linger time.Duration) ([]Record, error) {
	if max <= 0 {
		max = 1
	}
	var out []Record
	var first time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var err error
		out, err = t.fill(out, max)
		if err != nil {
			return out, err
		}
		if len(out) >= max {
			return out, nil
		}
		wait := t.cfg.Poll
		if len(out) > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			left := linger - time.Since(first)
			if left <= 0 {
				return out, nil
			}
			wait = min(wait, left)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-timer.C:
		}
	}
}

// fill appends the records readable now.
func (t *Tailer) fill(out []Record, max int) ([]Record, error) {
	for len(out) < max {
		if t.held != nil {
			ok, err := t.releaseHeld()
			if err != nil || !ok {
				return out, err
			}
			out = append(out, *t.held)
			t.held = nil
			continue
		}
		if t.rc == nil {
			ok, err := t.open()
			if err != nil || !ok {
				return out, err
			}
		}
		line, err := t.br.ReadSlice('\n')
		t.readOff += int64(len(line))
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			t.partial = append(t.partial, line...)
			if len(t.partial) > chain.MaxLineBytes {
				return out, fmt.Errorf("%w: %s: line longer than %d bytes", ErrChainMismatch, t.seg.Path, chain.MaxLineBytes)
			}
			continue
		case errors.Is(err, io.EOF):
			t.partial = append(t.partial, line...)
			more, err := t.atEOF()
			if err != nil || !more {
				return out, err
			}
			continue
		case err != nil:
			return out, fmt.Errorf("audit stream: read %s: %w", t.seg.Path, err)
		}
		if len(t.partial) > 0 {
			line = append(t.partial, line...)
			t.partial = t.partial[:0]
		}
		start := t.readOff - int64(len(line))
		rec, keep, err := t.record(line[:len(line)-1])
		if err != nil {
			if t.active {
				// In the active file a bad line may be the splice of an
				// unsynced batch that was truncated and rewritten while we
				// read it: read again from the last good line, and give up
				// only if it persists.
				if t.badAt == start && t.badCount >= activeRetries {
					return out, err
				}
				if t.badAt != start {
					t.badAt, t.badCount = start, 0
				}
				t.badCount++
				return out, t.rewind()
			}
			return out, err
		}
		t.badCount = 0
		if !keep {
			if t.active {
				t.commit()
			}
			continue
		}
		if t.active && !t.durable(rec.Seq) {
			t.held, t.heldStart = &rec, start
			return out, nil
		}
		out = append(out, rec)
		if t.active {
			t.commit()
		}
	}
	return out, nil
}

// activeRetries is how many times a bad line at the same offset of the
// active file is re-read before it counts as corruption.
const activeRetries = 50

// commit records the current read position as the end of the last line
// returned (only meaningful in the active file).
func (t *Tailer) commit() {
	t.commitOff, t.commitNext, t.commitPrev = t.readOff, t.next, t.prev
}

// releaseHeld reports whether the held line became durable and is still
// the line in the file at its offset. A held line that was truncated away
// (its batch failed) is dropped and reading restarts where it began.
func (t *Tailer) releaseHeld() (bool, error) {
	if !t.durable(t.held.Seq) {
		return false, nil
	}
	if t.file != nil {
		buf := make([]byte, len(t.held.Line)+1)
		n, err := t.file.ReadAt(buf, t.heldStart)
		if n != len(buf) || !bytes.Equal(buf[:len(buf)-1], t.held.Line) || buf[len(buf)-1] != '\n' {
			if err != nil && !errors.Is(err, io.EOF) {
				return false, fmt.Errorf("audit stream: read %s: %w", t.seg.Path, err)
			}
			t.held = nil
			return false, t.rewind()
		}
	}
	t.commitOff, t.commitNext, t.commitPrev = t.heldStart+int64(len(t.held.Line))+1, t.held.Seq+1, t.held.Hash
	return true, nil
}

// rewind re-reads the active file from the end of the last line returned.
func (t *Tailer) rewind() error {
	if _, err := t.file.Seek(t.commitOff, io.SeekStart); err != nil {
		return fmt.Errorf("audit stream: rewind %s: %w", t.seg.Path, err)
	}
	t.br.Reset(t.file)
	t.partial = t.partial[:0]
	t.readOff = t.commitOff
	t.next, t.prev = t.commitNext, t.commitPrev
	return nil
}

func (t *Tailer) durable(seq uint64) bool {
	if !t.active || t.cfg.Head == nil {
		return true
	}
	h, ok := t.cfg.Head()
	return !ok || seq <= h
}

// record checks one complete line — its chain members, its own hash, and
// that it continues the chain — and advances the chain state. keep is
// false for lines before the start position.
func (t *Tailer) record(line []byte) (Record, bool, error) {
	m, err := logline.ScanMembers(line)
	if err != nil {
		return Record{}, false, fmt.Errorf("%w: %s: malformed line after seq %d", ErrChainMismatch, t.seg.Path, t.next-1)
	}
	if t.cfg.NodeID != "" && m.NodeID != t.cfg.NodeID {
		return Record{}, false, fmt.Errorf("%w: %s: seq %d belongs to node %q, not %q", ErrChainMismatch, t.seg.Path, m.Seq, m.NodeID, t.cfg.NodeID)
	}
	if t.next != 0 {
		if m.Seq < t.next {
			return Record{}, false, nil
		}
		if m.Seq > t.next {
			return Record{}, false, fmt.Errorf("%w: %s: seq jumps from %d to %d", ErrChainMismatch, t.seg.Path, t.next-1, m.Seq)
		}
		if t.prev != "" && m.PrevHash != t.prev {
			return Record{}, false, fmt.Errorf("%w: %s: seq %d has prev_hash %s, but seq %d has hash %s",
				ErrChainMismatch, t.seg.Path, m.Seq, short(m.PrevHash), m.Seq-1, short(t.prev))
		}
	}
	if !chain.LineHashOK(line, []byte(m.PrevHash), []byte(m.Hash)) {
		return Record{}, false, fmt.Errorf("%w: %s: seq %d does not match its hash", ErrChainMismatch, t.seg.Path, m.Seq)
	}
	t.next, t.prev, t.lastRead = m.Seq+1, m.Hash, m.Seq
	at, _ := logline.Time(line)
	return Record{Seq: m.Seq, NodeID: m.NodeID, PrevHash: m.PrevHash, Hash: m.Hash, Line: append([]byte(nil), line...), Time: at}, true, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// atEOF handles the end of the current file's bytes. more is true when
// reading should continue (the file was rotated away, or the next segment
// is to be opened).
func (t *Tailer) atEOF() (more bool, err error) {
	if !t.active {
		if len(t.partial) > 0 {
			return false, fmt.Errorf("%w: %s: rotated segment ends with an incomplete line", ErrChainMismatch, t.seg.Path)
		}
		t.wantIndex = t.seg.Index + 1
		t.closeSeg()
		return true, nil
	}
	fi, err := t.file.Stat()
	if err != nil {
		return false, fmt.Errorf("audit stream: stat %s: %w", t.seg.Path, err)
	}
	if fi.Size() < t.readOff {
		// Truncated under us: a failed batch was removed. Nothing returned
		// was past the durable head, so re-read from the last line returned.
		t.held = nil
		return true, t.rewind()
	}
	cur, err := os.Stat(t.cfg.Path)
	if err == nil && os.SameFile(cur, fi) {
		return false, nil // still the active file: wait for more
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("audit stream: stat %s: %w", t.cfg.Path, err)
	}
	// Rotated, moved or replaced: the writer no longer appends to our
	// descriptor. Drain it, then go on with the next segment.
	t.active = false
	return true, nil
}

func (t *Tailer) closeSeg() {
	if t.rc != nil {
		_ = t.rc.Close()
	}
	t.rc, t.file, t.seg = nil, nil, nil
	t.partial = t.partial[:0]
	t.readOff, t.commitOff = 0, 0
	t.active = false
}

// open opens the segment to read next. ok is false when there is nothing
// to open yet.
func (t *Tailer) open() (bool, error) {
	infos, err := chain.ListSegments(t.cfg.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil // files kept vanishing while listing: list again
		}
		return false, fmt.Errorf("audit stream: list segments of %s: %w", t.cfg.Path, err)
	}
	var pick *chain.SegmentInfo
	if t.wantIndex != 0 {
		pick, err = t.following(infos)
	} else {
		pick, err = t.positioning(infos)
	}
	if err != nil || pick == nil {
		return false, err
	}
	seg, ok, err := openInfo(*pick)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("audit stream: %w", err)
		}
		return false, err
	}
	t.missingSince = time.Time{}
	if t.wantIndex == 0 && t.next != 0 && seg.Info.FirstSeq > t.next {
		g := Gap{From: t.next, To: seg.Info.FirstSeq - 1, At: t.cfg.Now()}
		t.gaps = append(t.gaps, g)
		t.next, t.prev = seg.Info.FirstSeq, ""
		t.commitNext, t.commitPrev = t.next, t.prev
	}
	t.seg, t.rc, t.file = &seg.Info, seg.RC, seg.File
	t.active = seg.Info.Active
	if t.br == nil {
		t.br = bufio.NewReaderSize(seg.RC, 1<<20)
	} else {
		t.br.Reset(seg.RC)
	}
	t.readOff, t.commitOff = 0, 0
	t.commitNext, t.commitPrev = t.next, t.prev
	t.wantIndex = 0
	return true, nil
}

// following picks the segment that continues the chain after the one just
// read: header index wantIndex, starting at seq next. nil means not yet:
// it has not been written, or it is missing from this listing (a file
// being rotated or compressed) and has not been missing for
// MissingSegmentWait. A later segment is never picked instead.
func (t *Tailer) following(infos []chain.SegmentInfo) (*chain.SegmentInfo, error) {
	var later *chain.SegmentInfo
	for i := range infos {
		s := &infos[i]
		if s.Index == t.wantIndex {
			if t.next != 0 && s.FirstSeq != t.next {
				return nil, fmt.Errorf("%w: %s: segment %d starts at seq %d, but segment %d ended at seq %d",
					ErrChainMismatch, s.Path, s.Index, s.FirstSeq, t.wantIndex-1, t.next-1)
			}
			return s, nil
		}
		if s.Index > t.wantIndex && later == nil {
			later = s
		}
	}
	if later == nil {
		t.missingSince = time.Time{} // the writer has not started it yet
		return nil, nil
	}
	if since, gone := t.missingFor(); gone {
		return nil, fmt.Errorf("%w: %w: segment %d (from seq %d) has not been on disk for %v, but segment %d (from seq %d, %s) is: seq %d..%d would be skipped",
			ErrChainMismatch, ErrSegmentMissing, t.wantIndex, t.next, since.Round(time.Millisecond), later.Index, later.FirstSeq, later.Path, t.next, later.FirstSeq-1)
	}
	return nil, nil
}

// positioning picks the segment to start in: the last whose first seq is
// at most next (the first segment when next is 0 or none is). When the
// lines from next on start only in a later segment, the pick is made (and
// the gap recorded by open) only once that has held for
// MissingSegmentWait: a segment missing from one listing may be a file
// being rotated or compressed.
func (t *Tailer) positioning(infos []chain.SegmentInfo) (*chain.SegmentInfo, error) {
	if len(infos) == 0 {
		return nil, nil
	}
	pick := &infos[0]
	for i := range infos {
		if t.next != 0 && infos[i].FirstSeq <= t.next {
			pick = &infos[i]
		}
	}
	if t.next != 0 && pick.FirstSeq > t.next {
		if _, gone := t.missingFor(); !gone {
			return nil, nil
		}
	}
	return pick, nil
}

// missingFor notes that a segment is missing now and reports for how long
// it has been, and whether that reached MissingSegmentWait.
func (t *Tailer) missingFor() (time.Duration, bool) {
	now := t.cfg.Now()
	if t.missingSince.IsZero() {
		t.missingSince = now
	}
	since := now.Sub(t.missingSince)
	return since, since >= t.cfg.MissingSegmentWait
}
