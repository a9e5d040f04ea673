package chain

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/audit/merkle"
)

// strictState is what VerifyOptions.Strict checks carry from line to line.
type strictState struct {
	// key verifies checkpoints when VerifyOptions.PublicKey is nil: the
	// key the segment headers name. workerKey is the key the hashing
	// workers verify signatures with (given, or read from the first
	// header before they start).
	key       ed25519.PublicKey
	workerKey ed25519.PublicKey
	keySource string

	// Cadence of the segment being read, and whether its header names no
	// key: a writer without its key (e.g. one recording while the server
	// is sealed) writes unsigned checkpoints, which count for the cadence
	// but cover nothing; the next signed checkpoint covers those lines.
	every       int
	interval    time.Duration
	segUnsigned bool
	// sinceSigned counts lines since the last signed checkpoint (the
	// uncovered tail); unsignedLines the lines in key-less segments.
	sinceSigned   int64
	unsignedLines int64

	sinceCP    int       // non-checkpoint lines since the last checkpoint line
	allowance  int       // lines allowed beyond every in this interval
	firstTime  time.Time // time of the first line after the last checkpoint
	needTime   bool      // the next line starts an interval
	restart    bool      // a started event lies in this interval
	expectCP   string    // "started" or "closed": the next line must be a checkpoint
	afterClose bool      // a clean close and its checkpoint: only a restart may follow
	running    int8      // 1 after started, 0 after closed, -1 unknown

	tree        merkle.Frontier
	treeKnown   bool
	cpTreeSize  uint64 // the tree before the checkpoint line being checked
	cpRoot      string
	treeChecked bool // the tree was known from the first line on
	chainStart  uint64

	needDeleted    *DeletedSegment // the record a retention-anchored log needs
	deletedAt      uint64          // seq of the record that names it
	deletedCovered bool            // a checkpoint follows that record

	// late counts checkpoints later than the interval allows (a warning).
	late      int
	firstLate string

	// countFail is a cadence failure held for one line: when the next
	// line is a checkpoint, its own checks (description, signature,
	// tree) name the tampering better; otherwise countFail stands.
	countFail *Failure
}

func (c *checker) initStrict(workerKey ed25519.PublicKey, headerKey bool) {
	st := &c.strict
	st.running = -1
	st.needTime = true
	st.workerKey = workerKey
	switch {
	case c.opts.PublicKey != nil:
		st.keySource = "given"
	case workerKey != nil && headerKey:
		st.key, st.keySource = workerKey, "segment headers"
	}
	if c.opts.StartAfter != nil || c.opts.TrustFirst {
		// Lines before the anchor may already have followed the last
		// checkpoint: allow a second interval's worth.
		st.allowance = -1 // resolved at the first header's cadence
	}
}

// strictLine applies the strict rules to one line that links to the
// chain, before its record-specific checks. It returns false after a
// failure.
func (c *checker) strictLine(ch *chunk, r *lineRes, hash []byte) bool {
	st := &c.strict
	if st.countFail != nil && r.rtype != recCheckpoint {
		c.rep.Failure = st.countFail
		return false
	}
	st.sinceSigned++
	if st.segUnsigned {
		st.unsignedLines++
	}
	if st.afterClose {
		ok := r.rtype == recSegment
		if r.rtype == recEvent && r.ev != nil {
			switch r.ev.Kind {
			case EventTornTail, EventActiveFileMissing, EventForeignFileMoved, EventStarted:
				ok = true
			}
		}
		if !ok {
			c.fail(KindAppendedAfterClose, r.seq, "line appended after the writer closed cleanly; only the next start of the writer may follow a close and its checkpoint")
			return false
		}
	}
	if st.expectCP != "" && r.rtype != recCheckpoint {
		if restartLine(r) {
			st.expectCP = "" // the writer died before its checkpoint; the restart covers it
		} else {
			c.fail(KindCheckpointMissing, r.seq, "the writer %s at seq %d but the next line is not a checkpoint", st.expectCP, r.seq-1)
			return false
		}
	}
	if r.rtype == recSegment && r.seg != nil {
		if !c.strictHeader(r) {
			return false
		}
	}
	if r.rtype == recCheckpoint && st.treeKnown {
		// Checked in strictCheckpoint, after the signature.
		st.cpTreeSize, st.cpRoot = st.tree.Size, st.tree.Root().String()
	}
	if st.treeKnown {
		st.tree.Append(r.leaf, nil)
		if c.opts.OnLeaf != nil {
			c.opts.OnLeaf(r.seq, r.leaf)
		}
	}
	if r.rtype == recCheckpoint {
		return true // strictCheckpoint runs once the checkpoint itself is checked
	}
	if st.needTime {
		st.needTime = false
		st.firstTime, _ = lineTime(ch.data[r.off:r.end])
	}
	st.sinceCP++
	if r.rtype == recEvent && r.ev != nil {
		switch r.ev.Kind {
		case EventStarted:
			c.rep.Restarts++
			if st.running == 1 {
				c.rep.UncleanStops++
				c.rep.Warnings = append(c.rep.Warnings, Warning{Kind: WarnUncleanStop, File: c.sources[c.src].Name, Line: c.lineNo,
					Detail: fmt.Sprintf("the writer started again at seq %d without closing first (a crash or a kill)", r.seq)})
			}
			st.running, st.restart, st.afterClose, st.expectCP = 1, true, false, "started"
			if st.every > 0 {
				st.allowance += st.every
			}
		case EventClosed:
			st.running, st.expectCP = 0, "closed"
		case EventSegmentsDeleted:
			c.rep.Deleted = append(c.rep.Deleted, r.ev.Deleted...)
			if n := st.needDeleted; n != nil && st.deletedAt == 0 {
				for _, d := range r.ev.Deleted {
					if d.Index == n.Index && d.LastSeq == n.LastSeq && d.LastHash == n.LastHash {
						st.deletedAt = r.seq
					}
				}
			}
		}
	}
	if st.every > 0 && st.sinceCP > st.every+max(st.allowance, 0) && !restartLine(r) && st.countFail == nil {
		st.countFail = &Failure{Kind: KindCheckpointMissing, Seq: r.seq, File: c.sources[c.src].Name, Line: c.lineNo,
			Detail: fmt.Sprintf("%d lines since the last checkpoint; the segment header says one follows every %d", st.sinceCP, st.every)}
	}
	return true
}

// restartLine reports whether r is one of the lines a writer writes when
// it starts (a new segment's header, torn_tail_truncated,
// active_file_missing, foreign_file_moved, started): the writer counts
// lines since its last checkpoint from zero at every start.
func restartLine(r *lineRes) bool {
	if r.rtype == recSegment {
		return true
	}
	if r.rtype != recEvent || r.ev == nil {
		return false
	}
	switch r.ev.Kind {
	case EventTornTail, EventActiveFileMissing, EventForeignFileMoved, EventStarted:
		return true
	}
	return false
}

// strictHeader checks a segment header's key, chain start and Merkle tree
// against what came before, and adopts its cadence.
func (c *checker) strictHeader(r *lineRes) bool {
	st := &c.strict
	h := r.seg
	if h.PublicKey != "" {
		k, err := decodeKey(h.PublicKey)
		if err != nil {
			c.fail(KindMalformed, r.seq, "segment header: %v", err)
			return false
		}
		if KeyID(k) != h.KeyID {
			c.fail(KindForgedCheckpoint, r.seq, "segment header's key_id %s is not its public key's id %s", h.KeyID, KeyID(k))
			return false
		}
		known := c.opts.PublicKey
		if known == nil {
			known = st.key
		}
		switch {
		case known == nil:
			st.key, st.keySource = k, "segment headers"
		case !known.Equal(k):
			c.fail(KindForgedCheckpoint, r.seq, "segment header names checkpoint key %s, the log is verified with key %s", h.KeyID, KeyID(known))
			return false
		}
	}
	if h.ChainStart == 0 || h.ChainStart > r.seq {
		c.fail(KindMalformed, r.seq, "segment header has no valid chain_start (%d)", h.ChainStart)
		return false
	}
	if st.chainStart != 0 && h.ChainStart != st.chainStart {
		c.fail(KindSplice, r.seq, "segment header says the chain starts at seq %d, earlier headers say %d", h.ChainStart, st.chainStart)
		return false
	}
	st.chainStart = h.ChainStart
	c.rep.ChainStart = h.ChainStart
	if h.Tree.Size != r.seq-h.ChainStart {
		what := "lines were inserted before it (and the chain renumbered)"
		if h.Tree.Size > r.seq-h.ChainStart {
			what = "lines were removed before it (and the chain renumbered)"
		}
		c.fail(KindTreeMismatch, r.seq, "segment header's tree has %d leaves; the chain has %d lines before it: %s", h.Tree.Size, r.seq-h.ChainStart, what)
		return false
	}
	f, err := merkle.ParseFrontier(h.Tree.Size, h.Tree.Frontier)
	if err != nil {
		c.fail(KindTreeMismatch, r.seq, "segment header: %v", err)
		return false
	}
	if st.treeKnown {
		if f.Root() != st.tree.Root() {
			c.fail(KindTreeMismatch, r.seq, "segment header's tree root %s is not the tree of the lines before it (%s)", f.Root(), st.tree.Root())
			return false
		}
	} else {
		st.tree, st.treeKnown = f, true
		st.treeChecked = c.rep.Lines == 0
	}
	if h.Reason == ReasonRelink && h.Link != nil {
		l := *h.Link
		c.rep.Relink = &l
	}
	st.every = h.CheckpointEvery
	st.interval = time.Duration(h.CheckpointIntervalMS) * time.Millisecond
	st.segUnsigned = h.PublicKey == ""
	if st.allowance < 0 && st.every > 0 {
		st.allowance = st.every
	}
	return true
}

// strictCheckpoint applies the strict rules to a checkpoint line whose
// description and (given key) signature were checked.
func (c *checker) strictCheckpoint(r *lineRes) bool {
	st := &c.strict
	cp := r.cp
	signed := true
	switch {
	case len(cp.Signature) == 0 && cp.KeyID == "" && (st.segUnsigned || c.opts.AllowUnsigned):
		signed = false // a key-less writer's checkpoint: it covers nothing
	case st.workerKey == nil && st.key != nil:
		if err := cp.Verify(st.key); err != nil {
			c.fail(KindForgedCheckpoint, r.seq, "%v (key %s from the segment headers)", err, KeyID(st.key))
			return false
		}
	case st.workerKey == nil:
		c.fail(KindForgedCheckpoint, r.seq, "no checkpoint key: the segment headers name none and none was given, so checkpoint signatures cannot be checked")
		return false
	case r.sigErr != "":
		c.fail(KindForgedCheckpoint, r.seq, "%s", r.sigErr)
		return false
	}
	if st.treeKnown && (cp.TreeSize != st.cpTreeSize || cp.Root != st.cpRoot) {
		c.fail(KindTreeMismatch, r.seq, "checkpoint says the tree through seq %d has %d leaves and root %s; the lines give %d leaves and root %s",
			cp.Seq, cp.TreeSize, cp.Root, st.cpTreeSize, st.cpRoot)
		return false
	}
	if st.countFail != nil {
		c.rep.Failure = st.countFail // the checkpoint is genuine but late: lines were added before it
		return false
	}
	if st.interval > 0 && !st.restart && !st.firstTime.IsZero() {
		if gap := cp.Time.Sub(st.firstTime); gap > 2*st.interval+cadenceSlack {
			// Times come from clocks that jump (NTP, a suspended VM), so a
			// late checkpoint is reported, not failed; the line count and
			// the signatures are what cannot be faked.
			st.late++
			if st.late == 1 {
				st.firstLate = fmt.Sprintf("seq %d came %s after the first line it covers (the header says every %s)", r.seq, gap.Round(time.Millisecond), st.interval)
			}
		}
	}
	if st.expectCP == "closed" {
		st.afterClose = true
	}
	st.expectCP = ""
	st.sinceCP, st.allowance, st.restart, st.needTime, st.firstTime = 0, 0, false, true, time.Time{}
	if st.deletedAt > 0 && signed {
		st.deletedCovered = true
	}
	if signed {
		st.sinceSigned = 0
		c.rep.LastCheckpoint = cp
	}
	if c.opts.OnCheckpoint != nil {
		c.opts.OnCheckpoint(*cp)
	}
	return true
}

// strictFinish applies the end-of-log strict rules.
func (c *checker) strictFinish() {
	st := &c.strict
	rep := c.rep
	if rep.Failure == nil && st.countFail != nil {
		rep.Failure = st.countFail
	}
	rep.Uncovered = st.sinceSigned
	if rep.LastCheckpoint == nil {
		rep.Uncovered = rep.Lines
	}
	if st.late > 0 {
		rep.Warnings = append(rep.Warnings, Warning{Kind: WarnCheckpointLate,
			Detail: fmt.Sprintf("%d checkpoints came later than twice checkpoint_interval plus %s after the lines they cover (first: %s): the clock jumped or the writer stalled", st.late, cadenceSlack, st.firstLate)})
	}
	if st.unsignedLines > 0 {
		rep.Warnings = append(rep.Warnings, Warning{Kind: WarnUnsigned,
			Detail: fmt.Sprintf("%d lines are in segments whose header names no checkpoint key (written without the key, e.g. while sealed): only a later signed checkpoint covers them", st.unsignedLines)})
	}
	rep.Tree = st.tree
	rep.TreeChecked = st.treeKnown && st.treeChecked && rep.Failure == nil
	rep.ChainStart = st.chainStart
	rep.KeySource = st.keySource
	switch {
	case c.opts.PublicKey != nil:
		rep.KeyID = KeyID(c.opts.PublicKey)
	case st.key != nil:
		rep.KeyID = KeyID(st.key)
	}
	if n := st.needDeleted; rep.Failure == nil && n != nil && !st.deletedCovered {
		what := "no segments_deleted record names it"
		if st.deletedAt > 0 {
			what = fmt.Sprintf("the segments_deleted record at seq %d that names it is not covered by a checkpoint", st.deletedAt)
		}
		rep.Failure = &Failure{Kind: KindDeleted, Seq: rep.FirstSeq, File: c.sources[0].Name, Line: 1,
			Detail: fmt.Sprintf("the log starts with segment %d: segments 1..%d (the chain through seq %d) are missing and %s, so they were not deleted by retention",
				n.Index+1, n.Index, n.LastSeq, what)}
	}
}

// lineTime returns the time a line was made: an entry's leading "time"
// member, a segment header's "created" or an event's "time".
func lineTime(line []byte) (time.Time, bool) {
	var rest []byte
	switch {
	case bytes.HasPrefix(line, []byte(`{"time":"`)):
		rest = line[len(`{"time":"`):]
	case bytes.HasPrefix(line, recordPrefix):
		head := line[:min(len(line), 512)]
		for _, k := range [][]byte{[]byte(`"created":"`), []byte(`"time":"`)} {
			if i := bytes.Index(head, k); i >= 0 {
				rest = line[i+len(k):]
				break
			}
		}
	}
	if rest == nil {
		return time.Time{}, false
	}
	end := bytes.IndexByte(rest[:min(len(rest), 64)], '"')
	if end < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	return t, err == nil
}
