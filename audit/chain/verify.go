package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/merkle"
)

// FailureKind classifies the first problem Verify found.
type FailureKind string

const (
	// KindEdited: a line's hash does not match its content.
	KindEdited FailureKind = "edited"
	// KindDeleted: seq jumps forward (lines or whole segments missing), or
	// the log does not start at genesis and no anchor was given.
	KindDeleted FailureKind = "deleted"
	// KindReordered: a seq repeats or goes backwards, or prev_hash does
	// not match the previous line's hash: an inserted or reordered line.
	KindReordered FailureKind = "inserted_or_reordered"
	// KindTruncated: the log ends before the trusted checkpoint's seq.
	KindTruncated FailureKind = "truncated"
	// KindCheckpointMismatch: the log holds the trusted checkpoint's seq
	// with another hash, or the checkpoint belongs to another node.
	KindCheckpointMismatch FailureKind = "checkpoint_mismatch"
	// KindForgedCheckpoint: a checkpoint's signature does not verify with
	// the trusted key, it is unsigned, or it does not describe the line it
	// follows.
	KindForgedCheckpoint FailureKind = "forged_checkpoint"
	// KindSplice: lines from another log: node_id changes, or a segment
	// header does not continue the previous segment.
	KindSplice FailureKind = "splice"
	// KindMalformed: a line whose chain members cannot be parsed, anywhere
	// but at the very end of the log.
	KindMalformed FailureKind = "malformed"
	// KindCheckpointMissing (strict): more lines, or more time, between two
	// checkpoints than the cadence the segment header declares, or a
	// writer start or clean close without its checkpoint: checkpoints were
	// stripped.
	KindCheckpointMissing FailureKind = "checkpoint_missing"
	// KindAppendedAfterClose (strict): lines after a clean close and its
	// checkpoint that are not the next start of the writer: padding.
	KindAppendedAfterClose FailureKind = "appended_after_close"
	// KindTreeMismatch (strict): a checkpoint's tree_size or root, or a
	// segment header's Merkle tree, is not the tree of the chain's lines.
	KindTreeMismatch FailureKind = "tree_mismatch"
)

// Warning kinds.
const (
	// WarnTornTail: the last line of the last source is incomplete or
	// unparsable, as a crash leaves it. Not tampering: acknowledged
	// entries were fsynced, so only unacknowledged bytes can be torn.
	WarnTornTail = "torn_tail"
	// WarnCheckpointNotCovered: the trusted checkpoint is older than the
	// first line verified (older segments were not supplied).
	WarnCheckpointNotCovered = "checkpoint_not_covered"
	// WarnEmptySegment: the last source is empty (a crash right after a
	// new segment file was created).
	WarnEmptySegment = "empty_segment"
	// WarnUncleanStop: the writer started again without a closed event
	// before (a crash or kill). Not tampering by itself: the lines before
	// it are covered by the checkpoint written at the restart.
	WarnUncleanStop = "unclean_stop"
	// WarnOtherChain: a trusted checkpoint belongs to the chain this one
	// replaced (before a relink).
	WarnOtherChain = "checkpoint_of_previous_chain"
	// WarnUnsigned: some segments were written without a checkpoint key.
	WarnUnsigned = "unsigned_segments"
	// WarnCheckpointLate: checkpoints came later than the interval allows.
	WarnCheckpointLate = "checkpoint_late"
)

// cadenceSlack is added to twice the checkpoint interval when a strict
// verifier compares the time between the first line after a checkpoint and
// the next checkpoint (a warning when exceeded): the writer checks the interval on a ticker of the
// same period, and an entry's time is taken before it waits in the queue
// and for its batch's fsync.
const cadenceSlack = 30 * time.Second

// Failure locates the first problem found. Line is 1-based within File.
type Failure struct {
	Kind   FailureKind
	Seq    uint64 // the seq at which the chain breaks (expected or found)
	File   string
	Line   int64
	Detail string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("%s at seq %d (%s line %d): %s", f.Kind, f.Seq, f.File, f.Line, f.Detail)
}

// Warning is a finding that is not tampering.
type Warning struct {
	Kind   string
	File   string
	Line   int64
	Detail string
}

// StartAfter anchors verification of a log that begins mid-chain: its first
// line must have seq Seq+1 and prev_hash Hash.
type StartAfter struct {
	Seq  uint64
	Hash string
}

// VerifyOptions tune Verify. The zero value verifies a complete log from
// genesis, checking checkpoint hashes but not their signatures.
type VerifyOptions struct {
	// PublicKey verifies checkpoint signatures; without it checkpoints are
	// only checked against the line they cover and the report says
	// SignaturesChecked == false.
	PublicKey ed25519.PublicKey
	// Checkpoint is a trusted external checkpoint (e.g. from Raft
	// storage): the log must contain its seq with its hash (and, when its
	// Merkle tree is known, its root).
	Checkpoint *Checkpoint
	// Checkpoints are more trusted checkpoints (witnesses, streams,
	// other nodes): every one must hold as Checkpoint does.
	Checkpoints []Checkpoint
	// Strict applies every rule the writer keeps (docs/audit-format.md
	// section 9): every checkpoint signed by the key (PublicKey, or else
	// the key the segment headers name); at most checkpoint_every lines and
	// about checkpoint_interval between checkpoints; a checkpoint right
	// after every start and clean close, and nothing but a restart after a
	// clean close; every checkpoint's Merkle tree size and root; one key
	// for the whole log; and a log whose first segments are missing must
	// carry a covered segments_deleted record for them. Lines after the
	// last checkpoint are counted in Report.Uncovered.
	Strict bool
	// AllowUnsigned (with Strict) accepts unsigned checkpoints when
	// neither PublicKey nor the segment headers name a key.
	AllowUnsigned bool
	// OnLeaf, if set (with Strict), is called from Verify's goroutine in
	// seq order with the Merkle leaf hash of every verified line.
	OnLeaf func(seq uint64, leaf merkle.Hash)
	// OnCheckpoint, if set (with Strict), is called with every checkpoint
	// line's checkpoint once it is verified.
	OnCheckpoint func(cp Checkpoint)
	// NodeID, if set, is the node every line must belong to.
	NodeID string
	// StartAfter anchors a log that starts mid-chain. TrustFirst instead
	// accepts whatever the first line's seq and prev_hash are (the weakest
	// mode; the report says so). Without either, the log must start at
	// seq 1 with prev_hash ZeroHash.
	StartAfter *StartAfter
	TrustFirst bool
	// Progress, if set, is called from Verify's goroutine after each chunk
	// with the bytes and lines processed so far.
	Progress func(bytes, lines int64)
	// Workers is the number of hashing goroutines (default GOMAXPROCS).
	Workers int
	// ChunkBytes is the read size (default 2 MiB).
	ChunkBytes int
}

// Report is the outcome of a verification. OK is true when Failure is nil;
// warnings do not clear it.
type Report struct {
	OK                bool
	Lines             int64 // all lines verified
	Entries           int64 // caller entries (lines that are not vigil.* records)
	Events            int64
	Segments          int64 // segment headers seen
	Checkpoints       int64 // checkpoint lines verified
	SignaturesChecked bool
	// TrustedCheckpointVerified: opts.Checkpoint's seq was found with its hash.
	TrustedCheckpointVerified bool
	FirstSeq, LastSeq         uint64
	LastHash                  string
	NodeID                    string
	Bytes                     int64
	// Anchor says how the first line was trusted: "genesis" (seq 1),
	// "relink" (the first line of a relinked chain), "retention" (the
	// first segment's header, its predecessors deleted by retention),
	// "start_after" or "trust_first".
	Anchor   string
	Failure  *Failure
	Warnings []Warning

	// KeySource says where the checkpoint key came from: "given" or
	// "segment headers" ("" when none); KeyID is its id.
	KeySource string
	KeyID     string
	// ChainStart is the seq of the chain's first line, when known.
	ChainStart uint64
	// Tree is the Merkle tree of the chain's lines through LastSeq, and
	// TreeChecked says whether every checkpoint's root was checked
	// against it (strict, with the tree's start known).
	Tree        merkle.Frontier
	TreeChecked bool
	// LastCheckpoint is the last checkpoint line's checkpoint; Uncovered
	// counts the lines after it, which no signature covers yet.
	LastCheckpoint *Checkpoint
	Uncovered      int64
	// Relink is the link of a relinked chain's first header.
	Relink *Link
	// Deleted lists the segments that segments_deleted records name.
	Deleted []DeletedSegment
	// Restarts counts started events; UncleanStops those without a
	// closed event before them.
	Restarts, UncleanStops int64
}

// Source is one segment's lines: Open returns the plain (decompressed)
// bytes. Name is used in reports.
type Source struct {
	Name string
	Open func() (io.ReadCloser, error)
}

// FileSource returns a Source for a segment file, plain or gzip (detected
// by its magic bytes).
func FileSource(path string) Source {
	return Source{Name: path, Open: func() (io.ReadCloser, error) { return openSegment(path) }}
}

// FileSources returns FileSource for each path, in the given order (see
// OrderSegments).
func FileSources(paths []string) []Source {
	out := make([]Source, len(paths))
	for i, p := range paths {
		out[i] = FileSource(p)
	}
	return out
}

// Verify checks segment files given in chain order. Each source must be
// one whole segment: it starts with its vigil.segment header and headers
// appear nowhere else. It returns an error only when reading fails or ctx
// is done; evidence of tampering is reported in Report.Failure (the first
// one found, after which verification stops).
func Verify(ctx context.Context, sources []Source, opts VerifyOptions) (*Report, error) {
	return verify(ctx, sources, opts, false)
}

// VerifyReader checks a stream of lines in seq order, such as lines read
// back from Kafka or ClickHouse: segment headers may appear anywhere (they
// must still continue the chain), and the stream may begin mid-chain when
// opts.StartAfter or opts.TrustFirst is set.
func VerifyReader(ctx context.Context, r io.Reader, opts VerifyOptions) (*Report, error) {
	src := Source{Name: "stream", Open: func() (io.ReadCloser, error) { return io.NopCloser(r), nil }}
	return verify(ctx, []Source{src}, opts, true)
}

// VerifyLog verifies every segment of the log whose active file is path
// (rotated and compressed segments included), in header-index order.
func VerifyLog(ctx context.Context, path string, opts VerifyOptions) (*Report, error) {
	segs, err := ListSegments(path)
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(segs))
	for i, s := range segs {
		paths[i] = s.Path
	}
	return Verify(ctx, FileSources(paths), opts)
}

// checker links verified lines sequentially. Hashes were already checked
// by the workers, so this is cheap per line.
type checker struct {
	opts    VerifyOptions
	stream  bool
	rep     *Report
	sources []Source

	started  bool
	lastSeq  uint64
	lastHash [hashHexLen]byte
	nodeID   string
	segIndex uint64
	haveSeg  bool
	// segKeyless: the current segment's header names no checkpoint key
	// (a writer without its key, e.g. recording while the server is
	// sealed): its checkpoints are unsigned, which is not a forgery.
	segKeyless bool

	src    int
	lineNo int64

	strict    strictState
	trusted   map[uint64]*Checkpoint
	trustedOK map[uint64]bool

	// pendingGap holds a seq gap until the next line shows whether it was
	// a deletion or a reordering; pendingBad holds a malformed line until
	// we know whether it was the very last one (a torn tail).
	pendingGap      *Failure
	pendingGapWant  uint64
	pendingBad      *Failure
	pendingBadNoEOL bool
}

func (c *checker) fail(kind FailureKind, seq uint64, format string, args ...any) {
	if c.rep.Failure == nil {
		c.rep.Failure = &Failure{Kind: kind, Seq: seq, File: c.sources[c.src].Name, Line: c.lineNo, Detail: fmt.Sprintf(format, args...)}
	}
}

// line processes one line result. It returns false once a failure is set.
func (c *checker) line(ch *chunk, r *lineRes) bool {
	c.lineNo++
	if c.pendingBad != nil {
		c.rep.Failure = c.pendingBad
		return false
	}
	if r.bad != "" {
		c.pendingBad = &Failure{Kind: KindMalformed, Seq: c.lastSeq + 1, File: c.sources[c.src].Name, Line: c.lineNo, Detail: r.bad}
		c.pendingBadNoEOL = r.noEOL
		return true
	}
	if c.pendingGap != nil {
		if r.seq == c.pendingGapWant {
			c.pendingGap.Kind = KindReordered
			c.pendingGap.Detail += fmt.Sprintf("; seq %d follows it: lines were reordered", r.seq)
		} else {
			c.pendingGap.Detail += ": lines were deleted"
		}
		c.rep.Failure = c.pendingGap
		return false
	}
	data := ch.data
	hash := data[r.hash : r.hash+hashHexLen]
	prev := data[r.prev : r.prev+hashHexLen]
	node := data[r.node : r.node+int(r.nodeLen)]
	if !r.hashOK {
		c.fail(KindEdited, r.seq, "line hash does not match its content (computed %s, line says %s)", r.computed[:], hash)
		return false
	}
	if c.nodeID == "" {
		c.nodeID = string(node)
		c.rep.NodeID = c.nodeID
		if c.opts.NodeID != "" && c.opts.NodeID != c.nodeID {
			c.fail(KindSplice, r.seq, "node_id %q is not the expected %q", node, c.opts.NodeID)
			return false
		}
	} else if string(node) != c.nodeID {
		c.fail(KindSplice, r.seq, "node_id changes from %q to %q", c.nodeID, node)
		return false
	}
	isHeader := r.rtype == recSegment
	firstInSource := c.lineNo == 1
	if !c.link(r, prev, isHeader) {
		return false
	}
	if c.pendingGap != nil {
		return true // the next line decides what the gap is
	}
	if c.opts.Strict && !c.strictLine(ch, r, hash) {
		return false
	}
	if !c.stream {
		if firstInSource && !isHeader {
			c.fail(KindSplice, r.seq, "segment file does not begin with a vigil.segment header")
			return false
		}
		if isHeader && !firstInSource {
			c.fail(KindSplice, r.seq, "segment header inside a segment file")
			return false
		}
	}
	switch r.rtype {
	case recSegment:
		if r.recErr != "" {
			c.fail(KindMalformed, r.seq, "segment header: %s", r.recErr)
			return false
		}
		h := r.seg
		if h.PrevSegmentLastSeq != r.seq-1 || h.PrevSegmentLastHash != string(prev) {
			c.fail(KindSplice, r.seq, "segment header claims the previous segment ended at seq %d/%s, but the line follows seq %d/%s",
				h.PrevSegmentLastSeq, h.PrevSegmentLastHash, r.seq-1, prev)
			return false
		}
		if c.haveSeg && h.Index != c.segIndex+1 {
			c.fail(KindSplice, r.seq, "segment index %d does not follow %d", h.Index, c.segIndex)
			return false
		}
		if !c.haveSeg && (c.rep.Anchor == "genesis" || c.rep.Anchor == "relink") && h.Index != 1 {
			c.fail(KindSplice, r.seq, "the chain's first segment has index %d, want 1", h.Index)
			return false
		}
		c.segIndex, c.haveSeg, c.segKeyless = h.Index, true, h.PublicKey == ""
		c.rep.Segments++
	case recCheckpoint:
		if r.recErr != "" {
			c.fail(KindForgedCheckpoint, r.seq, "checkpoint record: %s", r.recErr)
			return false
		}
		cp := r.cp
		if cp.NodeID != c.nodeID || cp.Seq != r.seq-1 || cp.Hash != string(prev) {
			c.fail(KindForgedCheckpoint, r.seq, "checkpoint (node %q, seq %d, hash %s) does not describe the line before it (seq %d, hash %s)",
				cp.NodeID, cp.Seq, cp.Hash, r.seq-1, prev)
			return false
		}
		unsigned := len(cp.Signature) == 0 && cp.KeyID == "" && c.segKeyless
		if !c.opts.Strict && c.opts.PublicKey != nil && r.sigErr != "" && !unsigned {
			c.fail(KindForgedCheckpoint, r.seq, "%s", r.sigErr)
			return false
		}
		if c.opts.Strict && !c.strictCheckpoint(r) {
			return false
		}
		c.rep.Checkpoints++
		if !c.opts.Strict && !unsigned {
			c.rep.LastCheckpoint = cp
		}
	case recEvent:
		c.rep.Events++
	case recEntry:
		c.rep.Entries++
	}
	if tc := c.trusted[r.seq]; tc != nil {
		if string(hash) != tc.Hash {
			c.fail(KindCheckpointMismatch, r.seq, "trusted checkpoint%s says seq %d has hash %s, the log has %s", sourceOf(tc), tc.Seq, tc.Hash, hash)
			return false
		}
		if c.strict.treeKnown && tc.Root != "" {
			if tc.TreeSize != c.strict.tree.Size || tc.Root != c.strict.tree.Root().String() {
				c.fail(KindTreeMismatch, r.seq, "trusted checkpoint%s says the tree at seq %d has %d leaves and root %s; the lines give %d and %s",
					sourceOf(tc), tc.Seq, tc.TreeSize, tc.Root, c.strict.tree.Size, c.strict.tree.Root())
				return false
			}
		}
		c.trustedOK[r.seq] = true
		c.rep.TrustedCheckpointVerified = true
	}
	c.lastSeq = r.seq
	copy(c.lastHash[:], hash)
	c.rep.Lines++
	return true
}

// link checks that the line continues the chain (or anchors it).
func (c *checker) link(r *lineRes, prev []byte, isHeader bool) bool {
	if !c.started {
		c.started = true
		c.rep.FirstSeq = r.seq
		switch {
		case c.opts.StartAfter != nil:
			c.rep.Anchor = "start_after"
			sa := c.opts.StartAfter
			if r.seq != sa.Seq+1 {
				kind := KindDeleted
				if r.seq <= sa.Seq {
					kind = KindReordered
				}
				c.fail(kind, r.seq, "log starts at seq %d, anchor expects %d", r.seq, sa.Seq+1)
				return false
			}
			if string(prev) != sa.Hash {
				c.fail(KindSplice, r.seq, "prev_hash %s does not continue the anchor hash %s", prev, sa.Hash)
				return false
			}
		case c.opts.TrustFirst:
			c.rep.Anchor = "trust_first"
			if !lowerHex(prev) {
				c.fail(KindMalformed, r.seq, "prev_hash %q is not lowercase hex", prev)
				return false
			}
		case isHeader && r.seg != nil && r.seg.Reason == ReasonRelink:
			c.rep.Anchor = "relink"
			if string(prev) != ZeroHash || r.seg.ChainStart != r.seq || r.seg.Link == nil {
				c.fail(KindSplice, r.seq, "relink header at seq %d does not start a chain (chain_start %d, prev_hash %s, link present: %v)",
					r.seq, r.seg.ChainStart, prev, r.seg.Link != nil)
				return false
			}
		case c.opts.Strict && isHeader && r.seg != nil && r.seg.Index > 1:
			// The oldest segments are gone: acceptable only if a covered
			// segments_deleted record names the one before this.
			c.rep.Anchor = "retention"
			c.strict.needDeleted = &DeletedSegment{Index: r.seg.Index - 1, LastSeq: r.seg.PrevSegmentLastSeq, LastHash: r.seg.PrevSegmentLastHash}
			if r.seq != r.seg.PrevSegmentLastSeq+1 || string(prev) != r.seg.PrevSegmentLastHash || !lowerHex(prev) {
				c.fail(KindSplice, r.seq, "segment header does not describe its own predecessor")
				return false
			}
		default:
			c.rep.Anchor = "genesis"
			if r.seq != 1 {
				c.fail(KindDeleted, r.seq, "log starts at seq %d, not at genesis (seq 1); set StartAfter or TrustFirst to verify a partial log", r.seq)
				return false
			}
			if string(prev) != ZeroHash {
				c.fail(KindSplice, r.seq, "genesis line has prev_hash %s, want %s", prev, ZeroHash)
				return false
			}
		}
		return true
	}
	want := c.lastSeq + 1
	if r.seq != want {
		if isHeader {
			kind := KindSplice
			detail := "segment header does not continue the previous segment"
			if r.recErr == "" && r.seq > want && r.seg.Index > c.segIndex+1 && r.seg.PrevSegmentLastSeq == r.seq-1 {
				kind, detail = KindDeleted, fmt.Sprintf("segment(s) %d..%d missing", c.segIndex+1, r.seg.Index-1)
			}
			c.fail(kind, want, "%s: expected seq %d, found %d", detail, want, r.seq)
			return false
		}
		if r.seq > want {
			c.pendingGap = &Failure{Kind: KindDeleted, Seq: want, File: c.sources[c.src].Name, Line: c.lineNo,
				Detail: fmt.Sprintf("expected seq %d, found %d", want, r.seq)}
			c.pendingGapWant = want
			return true
		}
		c.fail(KindReordered, want, "expected seq %d, found %d", want, r.seq)
		return false
	}
	if string(prev) != string(c.lastHash[:]) {
		if isHeader {
			c.fail(KindSplice, r.seq, "segment header's prev_hash %s is not the previous segment's last hash %s", prev, c.lastHash[:])
		} else {
			c.fail(KindReordered, r.seq, "prev_hash %s is not the hash of seq %d (%s)", prev, c.lastSeq, c.lastHash[:])
		}
		return false
	}
	return true
}

// endSource is called after the last line of source c.src.
func (c *checker) endSource(empty bool) bool {
	last := c.src == len(c.sources)-1
	if c.pendingGap != nil && !last {
		return true // decided by the next line, or at the very end
	}
	if c.pendingBad != nil && !last {
		c.rep.Failure = c.pendingBad
		return false
	}
	if empty && !c.stream {
		if !last {
			c.fail(KindMalformed, c.lastSeq+1, "empty segment file in the middle of the log")
			return false
		}
		c.rep.Warnings = append(c.rep.Warnings, Warning{Kind: WarnEmptySegment, File: c.sources[c.src].Name, Detail: "last segment file is empty"})
	}
	return true
}

// finish applies end-of-log rules.
func (c *checker) finish() {
	rep := c.rep
	if c.opts.Strict {
		c.strictFinish()
	}
	if rep.Failure == nil && c.pendingGap != nil {
		c.pendingGap.Detail += ": lines were deleted"
		rep.Failure = c.pendingGap
	}
	if rep.Failure == nil && c.pendingBad != nil {
		what := "last line is unparsable"
		if c.pendingBadNoEOL {
			what = "last line has no newline"
		}
		rep.Warnings = append(rep.Warnings, Warning{Kind: WarnTornTail, File: c.pendingBad.File, Line: c.pendingBad.Line,
			Detail: what + " (" + c.pendingBad.Detail + "); a crash leaves this, the writer truncates it on the next start"})
	}
	rep.LastSeq, rep.LastHash = c.lastSeq, string(c.lastHash[:])
	if rep.Lines == 0 {
		rep.LastHash = ""
	}
	for _, tc := range c.trustedList() {
		if rep.Failure != nil {
			break
		}
		if c.trustedOK[tc.Seq] {
			continue
		}
		switch {
		case c.nodeID != "" && tc.NodeID != c.nodeID:
			rep.Failure = &Failure{Kind: KindCheckpointMismatch, Seq: tc.Seq, Detail: fmt.Sprintf("trusted checkpoint%s is for node %q, log is %q", sourceOf(tc), tc.NodeID, c.nodeID)}
		case rep.ChainStart > 0 && tc.Seq < rep.ChainStart:
			rep.Warnings = append(rep.Warnings, Warning{Kind: WarnOtherChain,
				Detail: fmt.Sprintf("trusted checkpoint%s seq %d precedes this chain's start at seq %d (relinked)", sourceOf(tc), tc.Seq, rep.ChainStart)})
		case rep.Lines > 0 && tc.Seq < rep.FirstSeq:
			rep.Warnings = append(rep.Warnings, Warning{Kind: WarnCheckpointNotCovered,
				Detail: fmt.Sprintf("trusted checkpoint%s seq %d precedes the first verified seq %d", sourceOf(tc), tc.Seq, rep.FirstSeq)})
		default:
			name := ""
			if len(c.sources) > 0 {
				name = c.sources[len(c.sources)-1].Name
			}
			rep.Failure = &Failure{Kind: KindTruncated, Seq: c.lastSeq + 1, File: name, Line: c.lineNo,
				Detail: fmt.Sprintf("log ends at seq %d but the trusted checkpoint%s covers seq %d", c.lastSeq, sourceOf(tc), tc.Seq)}
		}
	}
	key := c.opts.PublicKey
	if key == nil {
		key = c.strict.key
	}
	for _, tc := range c.trustedList() {
		if rep.Failure != nil || key == nil || len(tc.Signature) == 0 {
			break
		}
		if err := tc.Verify(key); err != nil {
			rep.Failure = &Failure{Kind: KindForgedCheckpoint, Seq: tc.Seq, Detail: "trusted checkpoint" + sourceOf(tc) + ": " + err.Error()}
		}
	}
	rep.OK = rep.Failure == nil
	rep.SignaturesChecked = c.opts.PublicKey != nil || c.strict.key != nil
}

// trustedList returns the trusted checkpoints in seq order.
func (c *checker) trustedList() []*Checkpoint {
	out := make([]*Checkpoint, 0, len(c.trusted))
	for _, tc := range c.trusted {
		out = append(out, tc)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Seq < out[j-1].Seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func sourceOf(c *Checkpoint) string {
	if c.Source == "" {
		return ""
	}
	return " (from " + c.Source + ")"
}

// decodeKey decodes a header's public_key member.
func decodeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public_key %q is not a base64 Ed25519 key", s)
	}
	return ed25519.PublicKey(b), nil
}

// String summarises the report in one line.
func (r *Report) String() string {
	var b strings.Builder
	if r.OK {
		fmt.Fprintf(&b, "OK: %d lines (%d entries, %d segments, %d checkpoints), seq %d..%d",
			r.Lines, r.Entries, r.Segments, r.Checkpoints, r.FirstSeq, r.LastSeq)
	} else {
		fmt.Fprintf(&b, "FAILED: %v", r.Failure)
	}
	if !r.SignaturesChecked {
		b.WriteString("; checkpoint signatures NOT checked (no public key)")
	}
	if r.Uncovered > 0 {
		fmt.Fprintf(&b, "; %d lines after the last checkpoint, not covered", r.Uncovered)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "; warning %s: %s", w.Kind, w.Detail)
	}
	return b.String()
}
