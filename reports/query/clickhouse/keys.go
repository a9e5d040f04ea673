package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/vigilsec/vigil/reports/query"
)

// key is a matching row's place in the result order.
type key struct {
	node   string
	seq    uint64
	t      time.Time
	ns     uint32
	isResp bool
}

// conditions returns the PREWHERE and WHERE clauses shared by both
// branches, and the WHERE of the responses sub-select used to find
// unanswered requests.
func (p *plan) conditions() (pre, where []string) {
	f := &p.m.F
	var nodes []string
	for n, h := range p.horizon {
		nodes = append(nodes, fmt.Sprintf("(node_id = %s AND seq <= %d)", lit(n), h))
	}
	sort.Strings(nodes)
	// The horizon goes to WHERE: it holds for nearly every row, and
	// ClickHouse uses it for primary-key ranges wherever it is written;
	// PREWHERE is kept for the time window, which removes most granules.
	where = append(where, "("+strings.Join(nodes, " OR ")+")")
	if !f.Since.IsZero() {
		s := f.Since.UTC()
		pre = append(pre, fmt.Sprintf("time >= toDateTime(%d, 'UTC')", s.Unix()))
		where = append(where, fmt.Sprintf("(time > toDateTime(%d, 'UTC') OR time_ns >= %d)", s.Unix(), s.Nanosecond()))
	}
	if !f.Until.IsZero() {
		u := f.Until.UTC()
		pre = append(pre, fmt.Sprintf("time <= toDateTime(%d, 'UTC')", u.Unix()))
		where = append(where, fmt.Sprintf("(time < toDateTime(%d, 'UTC') OR time_ns < %d)", u.Unix(), u.Nanosecond()))
	}
	if a := p.m.After; a != nil {
		t := a.Time.UTC()
		pre = append(pre, fmt.Sprintf("time >= toDateTime(%d, 'UTC')", t.Unix()))
		where = append(where, fmt.Sprintf("(time > toDateTime(%[1]d, 'UTC') OR time_ns > %[2]d OR (time_ns = %[2]d AND (node_id > %[3]s OR (node_id = %[3]s AND seq > %[4]d))))",
			t.Unix(), t.Nanosecond(), lit(a.NodeID), a.Seq))
	}
	same := func(c string) { where = append(where, c) }
	if f.NodeID != "" {
		same("node_id = " + lit(f.NodeID))
	}
	if f.Path != "" {
		if p.m.PathGlob {
			same("match(path, " + lit(p.m.PathRE) + ")")
		} else {
			same("startsWith(path, " + lit(f.Path) + ")")
		}
	}
	if f.Operation != "" {
		same("operation = " + lit(f.Operation))
	}
	if f.Mount != "" {
		same("mount_point = " + lit(f.Mount))
	}
	if f.Allowed != nil {
		v := 0
		if *f.Allowed {
			v = 1
		}
		where = append(where, fmt.Sprintf("allowed = %d", v))
	}
	if f.Actor != "" {
		vals := []string{lit(f.Actor)}
		for _, h := range p.m.ActorHashes {
			vals = append(vals, lit(h))
		}
		in := "(" + strings.Join(vals, ", ") + ")"
		ents := vals
		for _, id := range f.ActorEntityIDs {
			ents = append(ents, lit(id))
		}
		// The canonical actor and the entity name live in the raw line
		// only (vigil.identity): matched by position, records re-checked
		// exactly. For a login without identity the actor is derived from
		// the path ("userpass/mallory"): matched by its last segment.
		enc, _ := json.Marshal(f.Actor)
		raw := []string{
			"position(raw, " + lit(`"actor":`+string(enc)) + ") > 0",
			"position(raw, " + lit(`"entity_name":`+string(enc)) + ") > 0",
		}
		if i := strings.LastIndexByte(f.Actor, '/'); i > 0 && i < len(f.Actor)-1 {
			raw = append(raw, "endsWith(path, "+lit("/login/"+f.Actor[i+1:])+")")
		}
		where = append(where, fmt.Sprintf("(display_name IN %[1]s OR entity_id IN %[2]s OR accessor IN %[1]s OR %[3]s)",
			in, "("+strings.Join(ents, ", ")+")", strings.Join(raw, " OR ")))
	}
	if f.Namespace != "" {
		// Approximate: the namespace lives in the raw line only
		// (request.namespace.path). Records are re-checked exactly.
		where = append(where, "position(raw, "+lit(`"path":"`+jsonEscape(f.Namespace))+") > 0")
	}
	where = append(where, extraConditions(f)...)
	if f.Flag != "" {
		// Approximate: flags live in the raw line only. Records are
		// re-checked exactly.
		needle := `"` + jsonEscape(p.m.FlagName) + `":"`
		if p.m.HasFlagValue {
			needle += jsonEscape(p.m.FlagValue) + `"`
		}
		where = append(where, `position(raw, '"flags":{') > 0`, "position(raw, "+lit(needle)+") > 0")
	}
	return pre, where
}

// keys returns up to limit matching keys after the cursor, in order:
// response rows, and request rows no response row answers (Incomplete).
//
// Unanswered requests are found without an anti-join over the table: the
// request rows of the page's time span (up to the limit-th response key)
// are few, and each one's response is looked for by request id, first in
// the seq range just after it (responses follow their requests within the
// requests in flight: a primary-key range), then — only for the few not
// answered there, such as requests rejected while sealed or cut by a
// crash — in the rest of the node's chain.
func (b *Backend) keys(ctx context.Context, p *plan, limit int, rowsRead *int64) ([]key, error) {
	if len(p.horizon) == 0 {
		return nil, nil
	}
	pre, where := p.conditions()
	sel := func(typ string, pre, where []string, extra string) string {
		q := fmt.Sprintf("SELECT node_id, seq, any(time) AS t, any(time_ns) AS ns%s FROM %s", extra, b.table)
		if len(pre) > 0 {
			q += " PREWHERE " + strings.Join(pre, " AND ")
		}
		return q + " WHERE " + strings.Join(append([]string{"type = '" + typ + "'"}, where...), " AND ") + " GROUP BY node_id, seq"
	}
	resps, err := b.responseKeys(ctx, p, pre, where, limit, sel, rowsRead)
	if err != nil {
		return nil, err
	}
	rpre, rwhere := pre, where
	if len(resps) == limit {
		// Requests after the last response key cannot be in this page.
		l := resps[limit-1]
		rpre = append(append([]string(nil), pre...), fmt.Sprintf("time <= toDateTime(%d, 'UTC')", l.t.Unix()))
		rwhere = append(append([]string(nil), where...), fmt.Sprintf("(time < toDateTime(%[1]d, 'UTC') OR time_ns < %[2]d OR (time_ns = %[2]d AND (node_id < %[3]s OR (node_id = %[3]s AND seq < %[4]d))))",
			l.t.Unix(), l.ns, lit(l.node), l.seq))
	}
	var cands []key
	var ids []string
	err = b.run(ctx, sel("request", rpre, rwhere, ", any(request_id) AS rid"), rowsRead, func(r driver.Rows) error {
		var k key
		var id string
		if err := r.Scan(&k.node, &k.seq, &k.t, &k.ns, &id); err != nil {
			return err
		}
		cands, ids = append(cands, k), append(ids, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	open, err := b.unanswered(ctx, p, cands, ids, rowsRead)
	if err != nil {
		return nil, err
	}
	out := append(resps, open...)
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i], out[j]) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// responseKeys returns the first limit response keys in order. It reads the
// time window in slices that grow fourfold from one hour, from its start:
// a page of a dense window costs a slice, not the whole window, and every
// slice is a time range the PREWHERE turns into a few granules.
func (b *Backend) responseKeys(ctx context.Context, p *plan, pre, where []string, limit int,
	sel func(typ string, pre, where []string, extra string) string, rowsRead *int64) ([]key, error) {
	f := &p.m.F
	lo, hasLo := int64(0), false
	if !f.Since.IsZero() {
		lo, hasLo = f.Since.Unix(), true
	}
	if a := p.m.After; a != nil && (!hasLo || a.Time.Unix() > lo) {
		lo, hasLo = a.Time.Unix(), true
	}
	hi, hasHi := int64(0), !f.Until.IsZero()
	if hasHi {
		hi = f.Until.Unix() // the last second a record can have
	}
	minT, maxT, ok, err := b.timeRange(ctx)
	if err != nil || !ok {
		return nil, err
	}
	first := !hasLo // no lower bound: the first slice is open below
	if !hasLo {
		lo = minT
	}
	var out []key
	for a, w := lo, int64(3600); ; w *= 4 {
		end := a + w // exclusive
		final := hasHi && end > hi || !hasHi && a > maxT
		sp := append([]string(nil), pre...)
		if !first {
			sp = append(sp, fmt.Sprintf("time >= toDateTime(%d, 'UTC')", a))
		}
		if !final {
			sp = append(sp, fmt.Sprintf("time < toDateTime(%d, 'UTC')", end))
		}
		q := sel("response", sp, where, "") + fmt.Sprintf(" ORDER BY t, ns, node_id, seq LIMIT %d", limit-len(out))
		err := b.run(ctx, q, rowsRead, func(r driver.Rows) error {
			k := key{isResp: true}
			if err := r.Scan(&k.node, &k.seq, &k.t, &k.ns); err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) >= limit || final {
			return out, nil
		}
		a, first = end, false
	}
}

// timeRange is the table's oldest and newest row time (cached a minute:
// slices are only a way to read less, the last one is always open above and
// the first one open below when the query has no start).
func (b *Backend) timeRange(ctx context.Context) (minT, maxT int64, ok bool, err error) {
	b.cpMu.Lock()
	if time.Since(b.rangeAt) < nodeListTTL && b.rangeOK {
		defer b.cpMu.Unlock()
		return b.minT, b.maxT, true, nil
	}
	b.cpMu.Unlock()
	var n uint64
	var lo, hi time.Time
	err = b.run(ctx, "SELECT count(), min(time), max(time) FROM "+b.table, nil, func(r driver.Rows) error {
		return r.Scan(&n, &lo, &hi)
	})
	if errors.Is(err, errNoTable) || err == nil && n == 0 {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	b.cpMu.Lock()
	b.minT, b.maxT, b.rangeOK, b.rangeAt = lo.Unix(), hi.Unix(), true, time.Now()
	b.cpMu.Unlock()
	return lo.Unix(), hi.Unix(), true, nil
}

func keyLess(a, b key) bool {
	if !a.t.Equal(b.t) {
		return a.t.Before(b.t)
	}
	if a.ns != b.ns {
		return a.ns < b.ns
	}
	if a.node != b.node {
		return a.node < b.node
	}
	return a.seq < b.seq
}

// respWindow is how far after a request its response is looked for first
// (lines of the same node's chain).
const respWindow = 20000

// unanswered returns the request keys whose request id has no response row
// after them in their node's chain: first every response of the same
// path, operation and mount (a response repeats its request's) in the seq
// range from the first candidate to respWindow lines after the last — one
// primary-key range read —, then, by id, anywhere later for the few not
// answered there.
func (b *Backend) unanswered(ctx context.Context, p *plan, cands []key, ids []string, rowsRead *int64) ([]key, error) {
	type cand struct {
		k  key
		id string
	}
	byNode := map[string][]cand{}
	for i, k := range cands {
		byNode[k.node] = append(byNode[k.node], cand{k, ids[i]})
	}
	var out []key
	for node, cs := range byNode {
		lo, hi := cs[0].k.seq, cs[0].k.seq
		for _, c := range cs {
			lo, hi = min(lo, c.k.seq), max(hi, c.k.seq)
		}
		answered := map[string]bool{}
		find := func(seqCond string, want []cand) error {
			for start := 0; start < len(want); start += 2000 {
				part := want[start:min(start+2000, len(want))]
				lits := make([]string, len(part))
				for i, c := range part {
					lits[i] = lit(c.id)
				}
				q := fmt.Sprintf("SELECT DISTINCT request_id FROM %s PREWHERE node_id = %s AND %s WHERE type = 'response' AND request_id IN (%s)",
					b.table, lit(node), seqCond, strings.Join(lits, ","))
				if err := b.run(ctx, q, rowsRead, func(r driver.Rows) error {
					var id string
					if err := r.Scan(&id); err != nil {
						return err
					}
					answered[id] = true
					return nil
				}); err != nil {
					return err
				}
			}
			return nil
		}
		var same []string
		f := &p.m.F
		if f.Path != "" {
			if p.m.PathGlob {
				same = append(same, "match(path, "+lit(p.m.PathRE)+")")
			} else {
				same = append(same, "startsWith(path, "+lit(f.Path)+")")
			}
		}
		if f.Operation != "" {
			same = append(same, "operation = "+lit(f.Operation))
		}
		if f.Mount != "" {
			same = append(same, "mount_point = "+lit(f.Mount))
		}
		q := fmt.Sprintf("SELECT DISTINCT request_id FROM %s PREWHERE node_id = %s AND seq > %d AND seq <= %d WHERE %s",
			b.table, lit(node), lo, hi+respWindow, strings.Join(append([]string{"type = 'response'"}, same...), " AND "))
		if err := b.run(ctx, q, rowsRead, func(r driver.Rows) error {
			var id string
			if err := r.Scan(&id); err != nil {
				return err
			}
			answered[id] = true
			return nil
		}); err != nil {
			return nil, err
		}
		var rest []cand
		for _, c := range cs {
			if !answered[c.id] {
				rest = append(rest, c)
			}
		}
		if len(rest) > 0 {
			if err := find(fmt.Sprintf("seq > %d", hi+respWindow), rest); err != nil {
				return nil, err
			}
		}
		for _, c := range rest {
			if !answered[c.id] {
				out = append(out, c.k)
			}
		}
	}
	return out, nil
}

// records fetches and builds the records of keys (in the keys' order),
// dropping those the exact filter refuses.
func (b *Backend) records(ctx context.Context, p *plan, keys []key) ([]query.Record, error) {
	byNode := map[string][]uint64{}
	for _, k := range keys {
		byNode[k.node] = append(byNode[k.node], k.seq)
	}
	raws := map[string]map[uint64]string{}
	for node, seqs := range byNode {
		raws[node] = map[uint64]string{}
		for start := 0; start < len(seqs); start += 10000 {
			part := seqs[start:min(start+10000, len(seqs))]
			list := make([]string, len(part))
			for i, s := range part {
				list[i] = strconv.FormatUint(s, 10)
			}
			q := fmt.Sprintf("SELECT seq, any(raw) FROM %s WHERE node_id = %s AND seq IN (%s) GROUP BY seq", b.table, lit(node), strings.Join(list, ","))
			err := b.run(ctx, q, nil, func(r driver.Rows) error {
				var seq uint64
				var raw string
				if err := r.Scan(&seq, &raw); err != nil {
					return err
				}
				raws[node][seq] = raw
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	var parser query.Parser
	out := make([]query.Record, 0, len(keys))
	for _, k := range keys {
		raw, ok := raws[k.node][k.seq]
		if !ok {
			return nil, fmt.Errorf("clickhouse query: row %s/%d vanished", k.node, k.seq)
		}
		r, kind, err := parser.Parse([]byte(raw))
		if err != nil || kind == query.KindOther {
			return nil, fmt.Errorf("clickhouse query: row %s/%d is not an audit entry: %v", k.node, k.seq, err)
		}
		if r.NodeID != k.node || r.Seq != k.seq {
			return nil, fmt.Errorf("clickhouse query: row %s/%d holds the line of %s/%d", k.node, k.seq, r.NodeID, r.Seq)
		}
		if p.m.Match(&r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// page collects up to n records after the plan's cursor, and reports
// whether more follow.
func (b *Backend) page(ctx context.Context, p *plan, n int, rowsRead *int64) ([]query.Record, bool, error) {
	var out []query.Record
	m := *p.m
	pp := *p
	pp.m = &m
	for {
		want := n + 1 - len(out)
		batch := want
		if m.Approximate() {
			batch = max(want, 1000) // the SQL is wider than the filter: records are re-checked
		}
		ks, err := b.keys(ctx, &pp, batch, rowsRead)
		if err != nil {
			return nil, false, err
		}
		recs, err := b.records(ctx, &pp, ks)
		if err != nil {
			return nil, false, err
		}
		out = append(out, recs...)
		if len(out) > n {
			return out[:n], true, nil
		}
		if len(ks) < batch {
			return out, false, nil
		}
		last := ks[len(ks)-1]
		m.After = &query.Cursor{Time: last.t.Add(time.Duration(last.ns)), NodeID: last.node, Seq: last.seq}
	}
}

// extraConditions translates the filters of query/predicates.go into SQL
// over the typed columns. Each is exact or wider than the filter (never
// narrower): records are re-checked with Match.
func extraConditions(f *query.Filter) []string {
	var w []string
	if f.ExactPath {
		w = append(w, "path = "+lit(f.Path))
	}
	if a := f.RemoteAddr; a != "" && !strings.Contains(a, "/") {
		w = append(w, "remote_address = "+lit(a))
	}
	if f.RequestID != "" {
		w = append(w, "request_id = "+lit(f.RequestID))
	}
	if f.Policy != "" {
		w = append(w, "has(policies, "+lit(f.Policy)+")")
	}
	if f.Status != 0 {
		w = append(w, fmt.Sprintf("status = %d", f.Status))
	}
	if f.ErrorCode != "" {
		w = append(w, "error_code = "+lit(f.ErrorCode))
	}
	login := "(startsWith(path, 'auth/') AND match(path, '^auth/[^/]+/login(/|$)') AND NOT startsWith(path, 'auth/token/'))"
	switch f.Login {
	case "ok":
		w = append(w, login, "error = ''", "allowed = 1")
	case "failed":
		w = append(w, login, "(error != '' OR allowed = 0)")
	}
	if f.Entity != "" {
		w = append(w, "entity_id = "+lit(f.Entity))
	}
	if f.Category != "" {
		w = append(w, "startsWith(path, 'sys/')", "operation IN ('create', 'update', 'delete', 'patch')")
	}
	// Incomplete is decided per record (request rows no response answers).
	for _, h := range f.Has {
		switch h {
		case query.HasAddress:
			w = append(w, "remote_address != ''")
		case query.HasActor:
			w = append(w, "(display_name != '' OR entity_id != '' OR accessor != '')")
		}
	}
	switch f.Preflight {
	case query.PreflightExclude:
		w = append(w, "NOT startsWith(path, 'sys/internal/ui/mounts')")
	case query.PreflightOnly:
		w = append(w, "startsWith(path, 'sys/internal/ui/mounts')")
	}
	return w
}
