package chain

import (
	"os"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/audit/merkle"
)

// storedNode is a tree node waiting for the store.
type storedNode struct {
	level uint8
	index uint64
	h     merkle.Hash
}

// loopState is owned by the writer goroutine (and by Open before it starts).
type loopState struct {
	f      *os.File    // active file, O_RDWR|O_APPEND: every write, fsync, truncate, salvage; nil while a switch is pending
	id     os.FileInfo // identity of f, for os.SameFile
	off    int64       // end of the last successfully written batch
	broken error       // a failed batch could not be truncated away

	seq  uint64
	hash [hashHexLen]byte

	seg        SegmentHeader  // header of the active segment
	segHasBody bool           // the active segment has lines after its header
	header     *SegmentHeader // header still to be written (first line of next batch)
	events     []Event        // events still to be written

	switchReason string // non-empty: start a new segment before the next batch
	missing      bool   // the active file is no longer at Path: salvage, don't rename

	sinceCP    int // lines since the last checkpoint line
	lastCP     Checkpoint
	lastCPTime time.Time
	dirty      bool // written but not fsynced

	// chainStart is the seq of the chain's first line; tree is the
	// Merkle tree of its lines through seq. A batch builds on treeTmp and
	// swaps it in once durable.
	chainStart uint64
	tree       merkle.Frontier
	treeTmp    merkle.Frontier
	nodes      []storedNode // the batch's new tree nodes, for the store

	lh      *lineHasher
	buf     []byte
	pending []*request
	taken   []*request
	acks    []Appended
	hashes  []byte // the batch's entry hashes, back to back
}

// closeFile closes the active file.
func (s *loopState) closeFile() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// run is the writer goroutine.
func (w *Writer) run() {
	defer close(w.done)
	s := &w.st
	tick := func(d time.Duration) (<-chan time.Time, func()) {
		if d <= 0 {
			return nil, func() {}
		}
		t := time.NewTicker(d)
		return t.C, t.Stop
	}
	watchC, stop1 := tick(w.cfg.WatchInterval)
	defer stop1()
	cpC, stop2 := tick(w.cfg.CheckpointInterval)
	defer stop2()
	if w.cfg.checkpointTicks != nil {
		cpC = w.cfg.checkpointTicks
	}
	var syncC <-chan time.Time
	if w.cfg.Fsync == FsyncInterval {
		c, stop3 := tick(w.cfg.FsyncInterval)
		defer stop3()
		syncC = c
	}
	for {
		if len(s.pending) == 0 {
			select {
			case r := <-w.reqs:
				s.pending = append(s.pending, r)
				w.queued.Add(1)
			case op := <-w.ctrl:
				if w.handle(op) {
					return
				}
			case <-watchC:
				w.watch()
			case <-cpC:
				w.timedCheckpoint()
			case <-syncC:
				w.syncDirty()
			}
		} else {
			select {
			case op := <-w.ctrl:
				if w.handle(op) {
					return
				}
			case <-watchC:
				w.watch()
			case <-syncC:
				w.syncDirty()
			default:
			}
		}
		w.drain(w.cfg.MaxBatchEntries)
		if len(s.pending) > 0 {
			_ = w.flush(false)
		}
	}
}

// drain moves queued requests into pending without blocking, until pending
// holds max requests.
func (w *Writer) drain(max int) {
	s := &w.st
	for len(s.pending) < max {
		select {
		case r := <-w.reqs:
			s.pending = append(s.pending, r)
			w.queued.Add(1)
		default:
			return
		}
	}
}

// handle runs one control operation and reports whether the loop must exit.
func (w *Writer) handle(op ctrlOp) bool {
	s := &w.st
	var res ctrlResult
	switch op.kind {
	case opRotate:
		s.switchReason = ReasonRotate
		res.err = w.flush(false)
	case opReopen:
		res.err = w.reopen()
	case opCheckpoint:
		if s.sinceCP > 0 || s.lastCP.Seq == 0 {
			res.err = w.flush(true)
		}
		res.cp = s.lastCP
	case opEvent:
		n := len(s.events)
		s.events = append(s.events, *op.ev)
		if res.err = w.flush(true); res.err != nil && len(s.events) > n {
			s.events = s.events[:n] // not written: the caller deletes nothing
		}
		res.cp = s.lastCP
	case opClose:
		for {
			w.drain(1 << 30)
			if len(s.pending) == 0 {
				break
			}
			_ = w.flush(false)
		}
		s.events = append(s.events, Event{Kind: EventClosed, Detail: "writer closed", Time: w.cfg.Now()})
		res.err = w.flush(true)
		if res.err == nil && s.dirty {
			res.err = w.syncFile(0, 0)
		}
		s.closeFile()
		op.done <- res
		return true
	}
	op.done <- res
	return false
}

func (w *Writer) timedCheckpoint() {
	s := &w.st
	if s.sinceCP > 0 && w.cfg.Now().Sub(s.lastCPTime) >= w.cfg.CheckpointInterval {
		_ = w.flush(true)
	}
}

func (w *Writer) syncDirty() {
	if w.st.dirty && w.st.f != nil {
		if err := w.syncFile(0, 0); err != nil {
			w.markFailed(err)
			w.log.Error("audit chain: interval fsync failed; acknowledged entries may be lost on a crash", "err", err)
			return
		}
		w.st.dirty = false
	}
}

// lineLen is the exact length of the line appendLine produces for a body of
// n bytes (empty: only whitespace between its braces) at seq, including the
// newline.
func (w *Writer) lineLen(n int, empty bool, seq uint64) int {
	if empty {
		n = 2 // written as "{", like the 2-byte body "{}"
	}
	l := n - 1 + len(memSeq) + digits(seq) + len(memNodeID) + len(w.cfg.NodeID) +
		len(memPrevHash) + hashHexLen + 1 + lineTail + 1
	if !empty {
		l++ // the comma after the body's members
	}
	return l
}

func digits(v uint64) int {
	var b [20]byte
	return len(strconv.AppendUint(b[:0], v, 10))
}

// flush writes one batch: a pending segment header, pending events, then as
// many pending requests as the batch and segment limits allow, with
// checkpoint lines after every CheckpointEvery lines (and one at the end if
// forceCP or the checkpoint interval elapsed). It returns once the batch is
// durable per the fsync mode and its waiters are completed, or the batch
// failed: then every waiter in it gets the error, the file is truncated back
// to the end of the previous batch, and no seq is consumed.
func (w *Writer) flush(forceCP bool) error {
	s := &w.st
	now := w.cfg.Now()
	if s.broken != nil {
		if err := w.repair(); err != nil {
			w.failPending(err)
			return err
		}
	}
	if s.switchReason == "" && w.needsRotation(now) {
		s.switchReason = ReasonRotate
	}
	if s.switchReason != "" {
		if err := w.switchFile(now); err != nil {
			w.markFailed(err)
			w.failPending(err)
			return err
		}
	}

	buf := s.buf[:0]
	seq, hash, sinceCP := s.seq, s.hash, s.sinceCP
	var next [hashHexLen]byte
	lines, entries := 0, 0
	var cps []Checkpoint
	tree := &s.treeTmp
	tree.Size, tree.Nodes = s.tree.Size, append(tree.Nodes[:0], s.tree.Nodes...)
	nodes := s.nodes[:0]
	addNode := func(level uint8, index uint64, h merkle.Hash) {
		nodes = append(nodes, storedNode{level, index, h})
	}
	if w.store == nil {
		addNode = nil
	}
	emit := func(body []byte) {
		buf = appendLine(buf, body, seq+1, w.cfg.NodeID, hash[:], s.lh, next[:])
		if !w.cfg.skipTree {
			tree.Append(merkle.LeafHash(s.lh.sum[:]), addNode)
		}
		seq, hash = seq+1, next
		lines++
	}
	checkpoint := func() {
		cp := Checkpoint{NodeID: w.cfg.NodeID, Seq: seq, Hash: string(hash[:]), Time: now,
			TreeSize: tree.Size, Root: tree.Root().String()}
		if w.cfg.Signer != nil {
			cp.Sign(w.cfg.Signer)
		}
		emit(checkpointBody(cp))
		cps = append(cps, cp)
		sinceCP = 0
	}
	counted := func() {
		sinceCP++
		if w.cfg.CheckpointEvery > 0 && sinceCP >= w.cfg.CheckpointEvery {
			checkpoint()
		}
	}
	if s.header != nil {
		h := *s.header
		h.PrevSegmentLastSeq, h.PrevSegmentLastHash = seq, string(hash[:])
		h.ChainStart = s.chainStart
		h.Tree = TreeState{Size: tree.Size, Frontier: tree.Hex()}
		h.KeyID, h.PublicKey = w.cfg.keyFields()
		h.CheckpointEvery, h.CheckpointIntervalMS = w.cfg.cadence()
		emit(segmentBody(h))
		counted()
	}
	for _, e := range s.events {
		emit(eventBody(e))
		counted()
	}
	taken, acks, hashes := s.taken[:0], s.acks[:0], s.hashes[:0]
	n := 0
	for n < len(s.pending) && len(taken) < w.cfg.MaxBatchEntries {
		r := s.pending[n]
		ll := w.lineLen(len(r.body), emptyObject(r.body), seq+1)
		if len(taken) > 0 && (len(buf)+ll > w.cfg.MaxBatchBytes || s.off+int64(len(buf)+ll) > w.maxBytes) {
			break
		}
		n++
		if !r.state.CompareAndSwap(reqPending, reqTaken) {
			w.queued.Add(-1) // abandoned by its caller before we got to it
			r.noteFailed()
			continue
		}
		if r.orphaned() {
			// Its first entry was not written: neither is this one.
			w.queued.Add(-1)
			r.done <- result{err: ErrFirstNotWritten}
			continue
		}
		emit(r.body)
		taken = append(taken, r)
		acks = append(acks, Appended{Seq: seq})
		hashes = append(hashes, hash[:]...)
		entries++
		counted()
	}
	// One string for the batch's hashes instead of one per entry.
	if len(hashes) > 0 {
		all := string(hashes)
		for i := range acks {
			acks[i].Hash = all[i*hashHexLen : (i+1)*hashHexLen]
		}
	}
	s.hashes = hashes[:0]
	s.pending = append(s.pending[:0], s.pending[n:]...)
	s.taken, s.acks = taken, acks
	if sinceCP > 0 && (forceCP || w.cfg.CheckpointInterval > 0 && now.Sub(s.lastCPTime) >= w.cfg.CheckpointInterval) {
		checkpoint()
	}
	s.buf = buf
	s.nodes = nodes
	if len(buf) == 0 {
		return nil
	}

	err := w.writeBatch(buf)
	if err == nil && w.cfg.Fsync == FsyncAlways {
		err = w.syncFile(lines, len(buf))
	}
	if err != nil {
		w.rollback()
		w.markFailed(err)
		w.statsMu.Lock()
		w.stats.FailedBatches++
		w.statsMu.Unlock()
		for _, r := range taken {
			r.noteFailed()
			r.done <- result{err: err}
		}
		w.queued.Add(-int64(len(taken)))
		clear(taken)
		return err
	}

	s.off += int64(len(buf))
	s.seq, s.hash, s.sinceCP = seq, hash, sinceCP
	s.tree, s.treeTmp = s.treeTmp, s.tree
	w.storeNodes(nodes)
	if s.header != nil {
		s.header = nil
		if lines > 1 {
			s.segHasBody = true
		}
	} else {
		s.segHasBody = true
	}
	s.events = s.events[:0]
	s.dirty = w.cfg.Fsync != FsyncAlways
	// Publish head and stats before waking waiters, so a caller sees its
	// own entry reflected in Head and Stats when Append returns.
	w.headMu.Lock()
	w.headSeq, w.headHash = seq, string(hash[:])
	w.headMu.Unlock()
	w.statsMu.Lock()
	st := &w.stats
	st.Entries += uint64(entries)
	st.Lines += uint64(lines)
	st.Bytes += uint64(len(buf))
	st.Batches++
	if entries > st.MaxBatch {
		st.MaxBatch = entries
	}
	st.Failed, st.LastError = false, ""
	for _, cp := range cps {
		st.Checkpoints++
		st.LastCheckpointSeq, st.LastCheckpointTime = cp.Seq, cp.Time
	}
	w.statsMu.Unlock()
	for i, r := range taken {
		r.done <- result{a: acks[i]}
	}
	w.queued.Add(-int64(len(taken)))
	clear(taken)
	for _, cp := range cps {
		s.lastCP, s.lastCPTime = cp, cp.Time
		w.noteCheckpoint(cp, s.chainStart)
		w.offerCheckpoint(cp)
	}
	return nil
}

// needsRotation reports whether the active segment must be closed before
// the next batch: it has content beyond its header and either the next line
// would push it past the size limit or it is older than MaxAgeDays.
func (w *Writer) needsRotation(now time.Time) bool {
	s := &w.st
	if !s.segHasBody || len(s.pending) == 0 && len(s.events) == 0 {
		return false
	}
	if w.maxAge > 0 && now.Sub(s.seg.Created) >= w.maxAge {
		return true
	}
	next := 0
	if len(s.pending) > 0 {
		r := s.pending[0]
		next = w.lineLen(len(r.body), emptyObject(r.body), s.seq+1)
	}
	return s.off+int64(next) > w.maxBytes
}

// writeBatch writes buf to the active file in one call, honouring
// Faults.BeforeWrite. The descriptor has O_APPEND, so after a failed batch
// was truncated away the next write lands at the new end, not at a stale
// offset.
func (w *Writer) writeBatch(buf []byte) error {
	data, injected := buf, error(nil)
	if f := w.cfg.Faults; f != nil && f.BeforeWrite != nil {
		if n, err := f.BeforeWrite(buf); err != nil {
			data, injected = buf[:max(0, min(n, len(buf)))], err
		}
	}
	if len(data) > 0 {
		if _, err := w.st.f.Write(data); err != nil {
			return classify("write", err)
		}
	}
	return classify("write", injected)
}

// syncFile fsyncs the active file and records the latency.
func (w *Writer) syncFile(lines, n int) error {
	if f := w.cfg.Faults; f != nil && f.BeforeSync != nil {
		if err := f.BeforeSync(); err != nil {
			w.countSyncFailure()
			return classify("fsync", err)
		}
	}
	t0 := time.Now()
	err := w.st.f.Sync()
	d := time.Since(t0)
	if err != nil {
		w.countSyncFailure()
		return classify("fsync", err)
	}
	if f := w.cfg.Faults; f != nil && f.AfterSync != nil {
		f.AfterSync()
	}
	w.statsMu.Lock()
	w.stats.Fsyncs++
	w.stats.FsyncTotal += d
	w.stats.FsyncMax = max(w.stats.FsyncMax, d)
	w.statsMu.Unlock()
	if w.cfg.OnSync != nil {
		w.cfg.OnSync(d, lines, n)
	}
	return nil
}

func (w *Writer) countSyncFailure() {
	w.statsMu.Lock()
	w.stats.FsyncFailures++
	w.statsMu.Unlock()
}

// rollback truncates the active file back to the end of the last good
// batch. If that fails the writer is broken: nothing more is appended to
// this file until repair succeeds (and a restart's torn-tail rule removes
// the bytes if it never does).
func (w *Writer) rollback() {
	if err := w.truncate(); err != nil {
		w.st.broken = err
		w.log.Error("audit chain: cannot truncate failed batch", "offset", w.st.off, "err", err)
	}
}

func (w *Writer) repair() error {
	if err := w.truncate(); err != nil {
		return classify("repair torn batch", err)
	}
	w.st.broken = nil
	return nil
}

func (w *Writer) truncate() error {
	if f := w.cfg.Faults; f != nil && f.BeforeTruncate != nil {
		if err := f.BeforeTruncate(); err != nil {
			return err
		}
	}
	return w.st.f.Truncate(w.st.off)
}

func (w *Writer) failPending(err error) {
	s := &w.st
	for _, r := range s.pending {
		if r.state.CompareAndSwap(reqPending, reqTaken) {
			r.noteFailed()
			r.done <- result{err: err}
		} else {
			r.noteFailed()
		}
	}
	w.queued.Add(-int64(len(s.pending)))
	clear(s.pending)
	s.pending = s.pending[:0]
}

func (w *Writer) markFailed(err error) {
	w.statsMu.Lock()
	w.stats.Failed = true
	w.stats.LastError = err.Error()
	w.statsMu.Unlock()
}
