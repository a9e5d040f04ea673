package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/reports/query"
)

// reader reads a log's lines in seq order across its segments — rotated,
// gzip'd and active — as audit/ship's Tailer does, but built for the
// index's budget: lines are returned as slices of a large read buffer (no
// copy per line), and a line's own SHA-256 is recomputed only when
// verifyHashes is set. Every line is checked against the chain: node id,
// seq continuity, and prev_hash equal to the previous line's hash (so a
// deleted, inserted or reordered line, or a splice from another log, stops
// the index); the hash check adds detection of an edited line. Segments
// are found and opened with ship.OpenSegment, as the Tailer does.
//
// Like the Tailer it never returns a line past the writer's durable head
// (a batch whose fsync may still fail and be truncated), never returns an
// incomplete last line (a torn tail: it waits for the newline, and rewinds
// if the writer truncates the file), follows rotation (the renamed active
// file is drained through the open descriptor), compression (a rotated file
// replaced by its .gz while open stays readable) and replacement of the
// active file, and reports gaps where segments were deleted before it read
// them. Not safe for concurrent use.
type reader struct {
	path         string
	node         []byte
	head         ship.HeadFunc
	verifyHashes bool
	now          func() time.Time

	next uint64 // seq expected next (0: anything)
	prev []byte // hash its prev_hash must equal (nil: unchecked)

	seg       *chain.SegmentInfo
	f         *os.File      // plain segment file
	rc        io.ReadCloser // what is read (f, or a gzip reader)
	active    bool
	wantIndex uint64

	buf        []byte
	start, end int   // unread bytes: buf[start:end]
	startOff   int64 // file offset of buf[start] (plain files)
	badAt      int64
	badCount   int
	gaps       []ship.Gap
	prevStore  [64]byte
}

// rline is one line read: slices of the reader's buffer, valid until the
// next call to read.
type rline struct {
	seq            uint64
	prevHash, hash []byte
	raw            []byte // without the newline
}

func newReader(path, node string, head ship.HeadFunc, after ship.Position, verifyHashes bool, now func() time.Time) *reader {
	r := &reader{path: path, node: []byte(node), head: head, verifyHashes: verifyHashes, now: now, buf: make([]byte, 4<<20)}
	if after.Seq > 0 {
		r.next = after.Seq + 1
		if after.Hash != "" {
			r.prev = append(r.prevStore[:0], after.Hash...)
		}
	}
	return r
}

func (r *reader) close() {
	if r.rc != nil {
		_ = r.rc.Close()
	}
	r.rc, r.f, r.seg = nil, nil, nil
}

// read returns the lines readable now (possibly none), up to max.
func (r *reader) read(max int) ([]rline, error) {
	var out []rline
	if r.active && r.f != nil && r.end > r.start {
		// Unread bytes of the active file (an incomplete last line) are
		// read again: the writer may have truncated and rewritten them (a
		// torn tail removed on restart).
		if err := r.rewind(r.startOff); err != nil {
			return nil, err
		}
	}
	// Everything returned last time is consumed: keep only unread bytes.
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	var head uint64
	headOK := false
	if r.head != nil {
		head, headOK = r.head()
	}
	for len(out) < max {
		if r.rc == nil {
			ok, err := r.open()
			if err != nil || !ok {
				return out, err
			}
		}
		i := bytes.IndexByte(r.buf[r.start:r.end], '\n')
		if i < 0 {
			if len(out) > 0 {
				return out, nil // the buffer may move when filled: let the caller consume first
			}
			more, err := r.fill()
			if err != nil {
				return out, err
			}
			if !more {
				cont, err := r.atEOF()
				if err != nil || !cont {
					return out, err
				}
			}
			continue
		}
		raw := r.buf[r.start : r.start+i]
		lineOff := r.startOff
		l, keep, err := r.check(raw)
		if err != nil {
			if r.active {
				// Possibly a batch truncated and rewritten while we read:
				// read again from this line; give up if it persists.
				if r.badAt == lineOff && r.badCount >= 50 {
					return out, err
				}
				if r.badAt != lineOff {
					r.badAt, r.badCount = lineOff, 0
				}
				r.badCount++
				return out, r.rewind(lineOff)
			}
			return out, err
		}
		if keep && r.active && headOK && l.seq > head {
			// Not durable yet: do not keep its bytes (they may be
			// truncated away); read them again later.
			return out, r.rewind(lineOff)
		}
		r.start += i + 1
		r.startOff += int64(i + 1)
		r.badCount = 0
		if !keep {
			continue
		}
		r.next = l.seq + 1
		r.prev = append(r.prevStore[:0], l.hash...)
		out = append(out, l)
	}
	return out, nil
}

// check validates one complete line against the chain. keep is false for
// lines before the start position.
func (r *reader) check(raw []byte) (rline, bool, error) {
	seq, node, prev, hash, ok := query.ChainMembers(raw)
	if !ok {
		return rline{}, false, fmt.Errorf("%w: %s: malformed line after seq %d", ship.ErrChainMismatch, r.seg.Path, r.next-1)
	}
	if len(r.node) > 0 && !bytes.Equal(node, r.node) {
		return rline{}, false, fmt.Errorf("%w: %s: seq %d belongs to node %q, not %q", ship.ErrChainMismatch, r.seg.Path, seq, node, r.node)
	}
	if r.next != 0 {
		if seq < r.next {
			return rline{}, false, nil
		}
		if seq > r.next {
			return rline{}, false, fmt.Errorf("%w: %s: seq jumps from %d to %d", ship.ErrChainMismatch, r.seg.Path, r.next-1, seq)
		}
		if r.prev != nil && !bytes.Equal(prev, r.prev) {
			return rline{}, false, fmt.Errorf("%w: %s: seq %d has prev_hash %.12s, but seq %d has hash %.12s", ship.ErrChainMismatch, r.seg.Path, seq, prev, seq-1, r.prev)
		}
	}
	if r.verifyHashes && !chain.LineHashOK(raw, prev, hash) {
		return rline{}, false, fmt.Errorf("%w: %s: seq %d does not match its hash", ship.ErrChainMismatch, r.seg.Path, seq)
	}
	return rline{seq: seq, prevHash: prev, hash: hash, raw: raw}, true, nil
}

// fill reads more bytes into the buffer; more is false at end of file.
func (r *reader) fill() (bool, error) {
	if r.start > 0 && (r.end == len(r.buf) || r.start > len(r.buf)/2) {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= chain.MaxLineBytes+1 {
			return false, fmt.Errorf("%w: %s: line longer than %d bytes", ship.ErrChainMismatch, r.seg.Path, chain.MaxLineBytes)
		}
		nb := make([]byte, 2*len(r.buf))
		copy(nb, r.buf[r.start:r.end])
		r.buf, r.end, r.start = nb, r.end-r.start, 0
	}
	n, err := r.rc.Read(r.buf[r.end:])
	r.end += n
	if n > 0 {
		return true, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return false, nil
	}
	return false, fmt.Errorf("audit query index: read %s: %w", r.seg.Path, err)
}

// atEOF handles the end of the current file's bytes. cont is true when
// reading should go on (next segment, or the active file was rotated).
func (r *reader) atEOF() (bool, error) {
	if !r.active {
		if r.end > r.start {
			return false, fmt.Errorf("%w: %s: rotated segment ends with an incomplete line", ship.ErrChainMismatch, r.seg.Path)
		}
		r.wantIndex = r.seg.Index + 1
		r.close()
		return true, nil
	}
	fi, err := r.f.Stat()
	if err != nil {
		return false, fmt.Errorf("audit query index: stat %s: %w", r.seg.Path, err)
	}
	if fi.Size() < r.startOff+int64(r.end-r.start) {
		// Truncated under us (a failed batch, or a torn tail removed by
		// the writer on restart): read again from the first unread line.
		return false, r.rewind(r.startOff)
	}
	cur, err := os.Stat(r.path)
	if err == nil && os.SameFile(cur, fi) {
		// Still the active file: wait for more. An incomplete last line is
		// not kept: it may be a torn tail the writer truncates and rewrites
		// when it restarts, so it is read again from the file next time.
		if r.end > r.start {
			return false, r.rewind(r.startOff)
		}
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("audit query index: stat %s: %w", r.path, err)
	}
	// Rotated, moved or replaced: the writer appends elsewhere now. Drain
	// our descriptor, then go on with the next segment.
	r.active = false
	return true, nil
}

// rewind drops buffered bytes from file offset off on and seeks there.
func (r *reader) rewind(off int64) error {
	if r.f == nil {
		return fmt.Errorf("%w: %s: cannot re-read a compressed segment", ship.ErrChainMismatch, r.seg.Path)
	}
	if _, err := r.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("audit query index: seek %s: %w", r.seg.Path, err)
	}
	r.start, r.end, r.startOff = 0, 0, off
	return nil
}

// open opens the segment to read next; ok is false when there is none yet.
func (r *reader) open() (bool, error) {
	seg, ok, err := ship.OpenSegment(r.path, r.wantIndex, r.next)
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("audit query index: %w", err)
		}
		return false, err
	}
	if r.next != 0 && seg.Info.FirstSeq > r.next {
		r.gaps = append(r.gaps, ship.Gap{From: r.next, To: seg.Info.FirstSeq - 1, At: r.now()})
		r.next, r.prev = seg.Info.FirstSeq, nil
	}
	r.seg, r.rc, r.f, r.active = &seg.Info, seg.RC, seg.File, seg.Info.Active
	r.start, r.end, r.startOff, r.wantIndex = 0, 0, 0, 0
	return true, nil
}
