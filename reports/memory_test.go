package reports

import (
	"context"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// memBackend is an in-memory query.Backend over a fixed record list, with
// the Filter semantics documented in reports/query.
type memBackend struct {
	recs []query.Record
	cp   *query.CheckpointRef
	// last overrides the time the log is verified up to (Coverage);
	// dropped is the seq below which entries are gone.
	last, first *time.Time
	dropped     uint64
}

var _ query.Backend = (*memBackend)(nil)

func newMemBackend(recs []query.Record) *memBackend {
	rs := append([]query.Record(nil), recs...)
	sort.SliceStable(rs, func(i, j int) bool {
		if !rs[i].Time.Equal(rs[j].Time) {
			return rs[i].Time.Before(rs[j].Time)
		}
		if rs[i].NodeID != rs[j].NodeID {
			return rs[i].NodeID < rs[j].NodeID
		}
		return rs[i].Seq < rs[j].Seq
	})
	var last uint64
	for _, r := range rs {
		last = max(last, r.Seq)
	}
	return &memBackend{recs: rs, cp: &query.CheckpointRef{NodeID: "node1", Seq: last + 1, Hash: "sha256:9f2c4e5d7a1b3c6e8f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e",
		Time: time.Date(2025, 3, 7, 0, 0, 5, 0, time.UTC), Signature: "c2lnbmF0dXJl", KeyID: "ed25519:4f3a9c1e"}}
}

func (m *memBackend) Name() string { return "memory" }

func globMatch(pattern, p string) bool {
	if strings.Contains(pattern, "**") {
		// "**" crosses "/": compare with "/" removed from the picture.
		pat := strings.ReplaceAll(pattern, "**", "\x00")
		parts := strings.Split(pat, "\x00")
		rest := p
		for i, part := range parts {
			if i == 0 {
				if !strings.HasPrefix(rest, part) {
					return false
				}
				rest = rest[len(part):]
				continue
			}
			idx := strings.Index(rest, part)
			if idx < 0 {
				return false
			}
			rest = rest[idx+len(part):]
		}
		return rest == "" || strings.HasSuffix(pattern, "**")
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

func (m *memBackend) match(f query.Filter, r query.Record) bool {
	switch {
	case !f.Since.IsZero() && r.Time.Before(f.Since):
	case !f.Until.IsZero() && !r.Time.Before(f.Until):
	case f.Actor != "" && f.Actor != r.DisplayName && f.Actor != r.EntityID && f.Actor != r.Accessor:
	case f.Operation != "" && f.Operation != r.Operation:
	case f.Allowed != nil && *f.Allowed != r.Allowed:
	case f.Mount != "" && f.Mount != r.MountPoint:
	case f.NodeID != "" && f.NodeID != r.NodeID:
	case f.Path != "" && !f.ExactPath && strings.ContainsAny(f.Path, "*?[") && !globMatch(f.Path, r.Path):
	case f.Path != "" && !f.ExactPath && !strings.ContainsAny(f.Path, "*?[") && !strings.HasPrefix(r.Path, f.Path):
	default:
		if f.Flag != "" {
			name, val, hasVal := strings.Cut(f.Flag, "=")
			v, ok := r.Flags[name]
			if !ok || hasVal && v != val {
				return false
			}
		}
		// The filters beyond the columns above are the query package's
		// own predicates (query.PrivilegedCategory, ...).
		g := f
		g.After, g.Path, g.ExactPath = "", "", false
		mm, err := g.Compile()
		if err != nil {
			return false
		}
		if f.ExactPath && r.Path != f.Path {
			return false
		}
		return mm.MatchExtra(&r)
	}
	return false
}

// Coverage implements query.CoverageReporter over the records held.
func (m *memBackend) Coverage(context.Context) ([]query.NodeCoverage, error) {
	if len(m.recs) == 0 {
		return nil, nil
	}
	nc := query.NodeCoverage{NodeID: m.cp.NodeID, FirstSeq: m.recs[0].Seq, First: m.recs[0].Time, LastSeq: m.cp.Seq, Last: m.cp.Time,
		Records: int64(len(m.recs)), DroppedBefore: m.dropped}
	if m.last != nil {
		nc.Last = *m.last
	}
	if m.first != nil {
		nc.First, nc.FirstSeq = *m.first, 1
	}
	return []query.NodeCoverage{nc}, nil
}

func (m *memBackend) Scan(ctx context.Context, f query.Filter, fn func(query.Record) error) (*query.CheckpointRef, error) {
	for _, r := range m.recs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.match(f, r) {
			if err := fn(r); err != nil {
				return nil, err
			}
		}
	}
	return m.cp, nil
}

func (m *memBackend) Query(ctx context.Context, f query.Filter) (*query.Result, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	start := 0
	if f.After != "" {
		start, _ = strconv.Atoi(f.After)
	}
	res := &query.Result{Backend: m.Name(), Checkpoint: m.cp, Records: []query.Record{}}
	for i := start; i < len(m.recs); i++ {
		res.Scanned++
		if !m.match(f, m.recs[i]) {
			continue
		}
		if len(res.Records) == limit {
			res.Next = strconv.Itoa(i)
			break
		}
		res.Records = append(res.Records, m.recs[i])
	}
	return res, nil
}
