package embedded

import (
	"context"

	"github.com/vigilsec/vigil/reports/query"
)

var _ query.CoverageReporter = (*Index)(nil)

// Coverage implements query.CoverageReporter: the oldest record indexed,
// the checkpoint answers stand at, entries trimmed by retention and the
// gaps the log reader found.
func (ix *Index) Coverage(context.Context) ([]query.NodeCoverage, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	nc := query.NodeCoverage{NodeID: ix.cfg.NodeID}
	if ix.lowSeq > 1 {
		nc.DroppedBefore = ix.lowSeq // retention trimmed what came before
	}
	first := func(seq uint64, t int64) {
		if nc.FirstSeq == 0 || seq < nc.FirstSeq {
			nc.FirstSeq, nc.First = seq, timeOf(t)
		}
	}
	for _, c := range ix.chunks {
		nc.Records += int64(c.Rows)
		if c.Rows > 0 {
			first(c.MinSeq, c.MinT)
		}
	}
	if v := ix.tail; v != nil {
		nc.Records += int64(v.n)
		for i := 0; i < v.n; i++ {
			first(v.c.seq[i], v.c.time[i])
		}
	}
	// Requests without a response yet are records too (Incomplete).
	for _, p := range ix.pend {
		if ix.cp == nil || p.Seq <= ix.cp.Seq {
			nc.Records++
		}
	}
	if cp := ix.cp; cp != nil {
		nc.LastSeq, nc.Last = cp.Seq, cp.Time
	}
	for _, g := range ix.gaps {
		nc.Gaps = append(nc.Gaps, query.SeqGap{From: g.From, To: g.To, At: g.At})
	}
	return []query.NodeCoverage{nc}, nil
}
