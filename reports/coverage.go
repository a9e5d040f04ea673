package reports

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// Coverage states, per node, what the log held covers of the report's
// period. A figure drawn from audit records is only a finding about the
// period if the log covers it: Status is "full", "partial" or "none", and
// a section whose judgement comes from records says PARTIAL or NO DATA
// instead of PASS when the coverage is not full.
type Coverage struct {
	Status string               `json:"status"`
	Text   string               `json:"text"`
	Nodes  []query.NodeCoverage `json:"nodes"`
}

// Coverage statuses.
const (
	CoverageFull    = "full"
	CoveragePartial = "partial"
	CoverageNone    = "none"
)

// coverage computes what the backend holds of [from, to).
func coverage(ctx context.Context, b query.Backend, from, to time.Time, loc *time.Location) (*Coverage, error) {
	cr, ok := b.(query.CoverageReporter)
	if !ok {
		return &Coverage{Status: CoveragePartial, Text: "The query backend (" + b.Name() + ") cannot state which entries it holds: treat every record-based figure as partial.",
			Nodes: []query.NodeCoverage{}}, nil
	}
	nodes, err := cr.Coverage(ctx)
	if err != nil {
		return nil, fmt.Errorf("reports: coverage: %w", err)
	}
	c := &Coverage{Status: CoverageFull, Nodes: nodes}
	if c.Nodes == nil {
		c.Nodes = []query.NodeCoverage{}
	}
	day := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04 MST") }
	var why []string
	anyOverlap := false
	for _, n := range nodes {
		if n.Records == 0 || n.LastSeq == 0 {
			why = append(why, fmt.Sprintf("node %s: no record is held", n.NodeID))
			continue
		}
		if n.First.Before(to) && n.Last.After(from) {
			anyOverlap = true
		}
		if n.First.After(from) {
			s := fmt.Sprintf("node %s: the log held begins at %s (seq %d), after the period starts", n.NodeID, day(n.First), n.FirstSeq)
			if n.DroppedBefore > 0 {
				s += fmt.Sprintf("; entries before seq %d were rotated away or deleted by retention", n.DroppedBefore)
			} else {
				s += "; nothing older is held"
			}
			why = append(why, s)
		}
		if n.Last.Before(to) {
			why = append(why, fmt.Sprintf("node %s: the log is verified up to %s (checkpoint seq %d), before the period ends", n.NodeID, day(n.Last), n.LastSeq))
		}
		for _, g := range n.Gaps {
			s := fmt.Sprintf("node %s: entries %d to %d are missing", n.NodeID, g.From, g.To)
			if !g.At.IsZero() {
				s += " (found " + day(g.At) + ")"
			}
			why = append(why, s)
		}
	}
	switch {
	case len(nodes) == 0 || !anyOverlap:
		c.Status = CoverageNone
		c.Text = "NO DATA: the log held does not cover any of the period."
		if len(why) > 0 {
			c.Text += " " + strings.Join(why, "; ") + "."
		}
	case len(why) > 0:
		c.Status = CoveragePartial
		c.Text = "PARTIAL: " + strings.Join(why, "; ") + ". Figures count only what the log holds."
	default:
		c.Text = "The log held covers the whole period on every node, without gaps."
	}
	return c, nil
}

// gate replaces a record-based judgement when the coverage is not full:
// NO DATA when the log covers none of the period; PARTIAL instead of PASS
// (and noted on the other results) when it covers part of it.
func (c *Coverage) gate(s *Section) {
	if c == nil || c.Status == CoverageFull {
		return
	}
	switch {
	case c.Status == CoverageNone && s.Result != ResultFail:
		s.Result, s.ResultText = ResultNoData, "No audit record covers the period: nothing can be concluded from the log. "+s.ResultText
	case s.Result == ResultPass || s.Result == ResultInfo:
		s.Result, s.ResultText = ResultPartial, "The log held covers only part of the period (see Coverage): "+s.ResultText
	default:
		s.ResultText += " The log held covers only part of the period (see Coverage)."
	}
}
