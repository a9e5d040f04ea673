package ship

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sort"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/logline"
)

// VerifyOptions tune a Verifier.
type VerifyOptions struct {
	// Chain is passed to chain.VerifyReader for every node (public key,
	// trusted checkpoint, StartAfter or TrustFirst for a sink whose
	// retention dropped the chain's start). Chain.NodeID, when set,
	// restricts verification to that node; lines of other nodes are
	// ignored.
	Chain chain.VerifyOptions
	// Window is how many recent hashes per node are kept to check that a
	// repeated (node_id, seq) is the same line (default 1<<20). Repeats
	// older than that are counted as unchecked.
	Window int
}

// NodeResult is the verification of one node's chain read back from a
// sink.
type NodeResult struct {
	NodeID string
	// Report is chain.VerifyReader's report over the deduplicated lines.
	Report *chain.Report
	// Lines counts every line fed; Unique the lines verified (one per
	// seq); Duplicates the repeats dropped (at-least-once delivery), of
	// which UncheckedDuplicates were too old to compare.
	Lines, Unique, Duplicates, UncheckedDuplicates uint64
	// Conflict describes the first repeat of a seq whose bytes differ from
	// the first copy: two different lines under one idempotency key.
	Conflict string
	// Err is a read error of the verifier itself (not tampering).
	Err error
}

// OK reports whether the node's chain verified and no conflicting repeat
// was seen.
func (r NodeResult) OK() bool {
	return r.Err == nil && r.Conflict == "" && r.Report != nil && r.Report.OK
}

// Complete reports whether every seq from the first to the last verified
// one is present exactly once after deduplication.
func (r NodeResult) Complete() bool {
	return r.OK() && r.Report.LastSeq >= r.Report.FirstSeq && r.Unique == r.Report.LastSeq-r.Report.FirstSeq+1
}

// String summarises the result.
func (r NodeResult) String() string {
	s := fmt.Sprintf("node %s: %d lines read, %d unique, %d duplicates dropped", r.NodeID, r.Lines, r.Unique, r.Duplicates)
	if r.UncheckedDuplicates > 0 {
		s += fmt.Sprintf(" (%d too old to compare)", r.UncheckedDuplicates)
	}
	if r.Report != nil {
		s += "; " + r.Report.String()
	}
	if r.Conflict != "" {
		s += "; CONFLICT: " + r.Conflict
	}
	if r.Err != nil {
		s += "; error: " + r.Err.Error()
	}
	return s
}

// Verifier re-verifies chains read back from a sink. Feed it the original
// log lines in the sink's order (a Kafka partition's offset order, or
// ClickHouse rows ordered by seq): it drops the repeats of (node_id, seq)
// that at-least-once delivery leaves — checking that each repeat is
// byte-identical to the first copy — and verifies each node's chain with
// chain.VerifyReader as the lines arrive (memory stays bounded). It is not
// safe for concurrent use.
type Verifier struct {
	ctx   context.Context
	opts  VerifyOptions
	nodes map[string]*nodeVerifier
}

type nodeVerifier struct {
	res     NodeResult
	pw      *io.PipeWriter
	bw      *bufio.Writer
	done    chan struct{}
	last    uint64
	started bool
	ringSeq []uint64
	ring    [][32]byte
}

// NewVerifier returns a verifier; ctx bounds the verification goroutines.
func NewVerifier(ctx context.Context, opts VerifyOptions) *Verifier {
	if opts.Window <= 0 {
		opts.Window = 1 << 20
	}
	return &Verifier{ctx: ctx, opts: opts, nodes: map[string]*nodeVerifier{}}
}

// Add feeds one original log line (without its newline). A line whose
// chain members cannot be found is passed on to the chain verifier of the
// node it claims, or fails Add when no node can be told.
func (v *Verifier) Add(line []byte) error {
	m, err := logline.ScanMembers(line)
	if err != nil {
		return fmt.Errorf("audit stream verify: %w: %.120s", err, line)
	}
	if v.opts.Chain.NodeID != "" && m.NodeID != v.opts.Chain.NodeID {
		return nil
	}
	nv := v.nodes[m.NodeID]
	if nv == nil {
		nv = v.start(m.NodeID)
	}
	nv.res.Lines++
	slot := int(m.Seq % uint64(len(nv.ring)))
	h := sha256.Sum256(line) // a repeat must be byte-identical, not just carry the same hash member
	if nv.started && m.Seq <= nv.last {
		nv.res.Duplicates++
		switch {
		case nv.ringSeq[slot] != m.Seq:
			nv.res.UncheckedDuplicates++
		case nv.ring[slot] != h && nv.res.Conflict == "":
			nv.res.Conflict = fmt.Sprintf("seq %d appears twice with different content (the copy read later has hash member %s)", m.Seq, m.Hash)
		}
		return nil
	}
	nv.started, nv.last = true, m.Seq
	nv.ringSeq[slot], nv.ring[slot] = m.Seq, h
	nv.res.Unique++
	if _, err := nv.bw.Write(line); err != nil {
		return nil // the verifier stopped at a failure; keep counting
	}
	_ = nv.bw.WriteByte('\n')
	return nil
}

func (v *Verifier) start(node string) *nodeVerifier {
	pr, pw := io.Pipe()
	nv := &nodeVerifier{pw: pw, bw: bufio.NewWriterSize(pw, 1<<20), done: make(chan struct{}),
		ringSeq: make([]uint64, v.opts.Window), ring: make([][32]byte, v.opts.Window)}
	nv.res.NodeID = node
	opts := v.opts.Chain
	opts.NodeID = node
	go func() {
		defer close(nv.done)
		rep, err := chain.VerifyReader(v.ctx, pr, opts)
		nv.res.Report, nv.res.Err = rep, err
		_, _ = io.Copy(io.Discard, pr) // a failure stops reading early: never block Add
	}()
	v.nodes[node] = nv
	return nv
}

// Close ends the input and returns each node's result, sorted by node id.
func (v *Verifier) Close() []NodeResult {
	out := make([]NodeResult, 0, len(v.nodes))
	for _, nv := range v.nodes {
		_ = nv.bw.Flush()
		_ = nv.pw.Close()
		<-nv.done
		out = append(out, nv.res)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}
