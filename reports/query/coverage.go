package query

import (
	"context"
	"time"
)

// NodeCoverage is what a backend holds of one node's chain: the first and
// last entries it can answer for, and the ranges of entries it knows are
// missing.
type NodeCoverage struct {
	NodeID string `json:"node_id"`
	// FirstSeq and First are the oldest answered request held (its
	// response entry); LastSeq and Last the checkpoint answers are
	// computed against (the log is complete up to it).
	FirstSeq uint64    `json:"first_seq"`
	First    time.Time `json:"first"`
	LastSeq  uint64    `json:"last_seq"`
	Last     time.Time `json:"last"`
	// Records is the number of records held.
	Records int64 `json:"records"`
	// DroppedBefore, when set, is the seq below which entries were
	// removed (rotated away and deleted by retention, or trimmed from the
	// index): history before First is not held.
	DroppedBefore uint64 `json:"dropped_before,omitempty"`
	// Gaps are ranges of seqs the chain skips (segments lost), with when
	// they were found.
	Gaps []SeqGap `json:"gaps,omitempty"`
}

// SeqGap is a range of missing entries [From, To].
type SeqGap struct {
	From uint64    `json:"from"`
	To   uint64    `json:"to"`
	At   time.Time `json:"at,omitzero"`
}

// CoverageReporter is implemented by backends that can state what they
// hold. Reports use it to print their coverage and to refuse a PASS on a
// period the log does not cover.
type CoverageReporter interface {
	Coverage(ctx context.Context) ([]NodeCoverage, error)
}
