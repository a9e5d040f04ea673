package embedded

import (
	"container/heap"
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/reports/query"
)

// noTime stands for an entry without a time (never written by Vigil).
const noTime = math.MinInt64

func timeOf(ns int64) time.Time {
	if ns == noTime {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// snapshot is what one query reads: the published state at its start.
type snapshot struct {
	chunks  []chunkMeta
	tail    *view
	pend    []pendingReq
	cp      *query.CheckpointRef
	horizon uint64 // records with seq > horizon are not returned
	lowSeq  uint64
	warn    []string
	verify  string
}

func (ix *Index) snapshot(m *query.Matcher) *snapshot {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := &snapshot{chunks: ix.chunks, tail: ix.tail, pend: ix.pend, cp: ix.cp, lowSeq: ix.lowSeq}
	if s.cp != nil {
		s.horizon = s.cp.Seq
	}
	if m.After != nil && m.After.Horizon != nil {
		if h, ok := m.After.Horizon[ix.cfg.NodeID]; ok && h < s.horizon {
			s.horizon = h
		}
	}
	if ix.failure != "" {
		s.warn = append(s.warn, "the audit query index stopped at seq "+itoa(ix.pos.Seq)+" because the log does not verify: "+ix.failure+
			"; results end at the last checkpoint verified before it")
	}
	if ix.persistErr != "" {
		s.warn = append(s.warn, "index files are not being written ("+ix.persistErr+"); the index is kept in memory")
	}
	if ix.cfg.Head != nil {
		if head, ok := ix.cfg.Head(); ok && head > ix.pos.Seq+1000 {
			s.warn = append(s.warn, fmt.Sprintf("the index is catching up with the log: indexed through seq %d of %d", ix.pos.Seq, head))
		}
	}
	if ix.cp == nil {
		s.warn = append(s.warn, "no verified checkpoint yet: nothing can be returned until the log's next checkpoint is indexed")
	}
	s.verify = ix.verificationLocked(s)
	return s
}

func (ix *Index) verificationLocked(s *snapshot) string {
	if s.cp == nil {
		return ""
	}
	from := "genesis (seq 1)"
	first := ix.anchor.Seq
	if ix.anchor.Kind != "genesis" || ix.lowSeq > 1 {
		first = max(first, ix.lowSeq)
		from = fmt.Sprintf("seq %d (the oldest segment kept; earlier segments were removed by retention)", first)
	}
	var msg string
	if ix.cfg.VerifyHashes {
		msg = fmt.Sprintf("embedded index: every line's hash and its link to the previous line were verified as the log was indexed, from %s through seq %d", from, ix.pos.Seq)
	} else {
		msg = fmt.Sprintf("embedded index: every line's seq and its link to the previous line (prev_hash) were checked as the log was indexed, from %s through seq %d", from, ix.pos.Seq)
	}
	if ix.sigChecked {
		msg += fmt.Sprintf("; checkpoint %d's Ed25519 signature verified (key %s)", s.cp.Seq, s.cp.KeyID)
	} else {
		msg += fmt.Sprintf("; checkpoint %d's signature was NOT checked (no verification key available)", s.cp.Seq)
	}
	for _, g := range ix.gaps {
		msg += fmt.Sprintf("; seqs %d-%d were deleted before they were indexed", g.From, g.To)
	}
	if !ix.cfg.VerifyHashes {
		var v *ServerVerification
		if ix.cfg.LastVerified != nil {
			v = ix.cfg.LastVerified()
		}
		switch {
		case v == nil:
			msg += "; the lines' own hashes are verified by the server's full verification, which has not run: run `vigil audit verify` (POST sys/audit/verify)"
			s.warn = append(s.warn, "no full verification of the audit log has been recorded: run POST sys/audit/verify so the lines' hashes are checked")
		case !v.OK:
			msg += fmt.Sprintf("; the server's full verification of %s FAILED: %s", v.Time.UTC().Format(time.RFC3339), v.Failure)
			s.warn = append(s.warn, "the server's last full verification of the audit log failed: "+v.Failure)
		default:
			msg += fmt.Sprintf("; the lines' own hashes were verified by the server's full verification of %s, through seq %d", v.Time.UTC().Format(time.RFC3339), v.LastSeq)
			if v.LastSeq < s.cp.Seq {
				msg += fmt.Sprintf(" (lines %d-%d are covered by the link and checkpoint checks only until the next verification)", v.LastSeq+1, s.cp.Seq)
			}
		}
	}
	return msg
}

func itoa(n uint64) string { return fmt.Sprint(n) }

// compile compiles f, hashing a raw actor with the device salt.
func (ix *Index) compile(ctx context.Context, f query.Filter) (*query.Matcher, []string, error) {
	var hashes, warn []string
	if f.Actor != "" && !strings.HasPrefix(f.Actor, hmac.Prefix) && ix.cfg.Hash != nil {
		h, err := ix.cfg.Hash(ctx, f.Actor)
		if err != nil {
			warn = append(warn, "the actor could not be hashed with the audit device's salt ("+err.Error()+"): only display names, entity ids and stored accessors match")
		} else {
			hashes = append(hashes, h)
		}
	}
	m, err := f.Compile(hashes...)
	return m, warn, err
}

// key orders rows: (time, node, seq) with the node fixed.
type key struct {
	t   int64
	seq uint64
}

func (a key) less(b key) bool { return a.t < b.t || a.t == b.t && a.seq < b.seq }

// hit is a matching row.
type hit struct {
	k   key
	v   *view // nil for a pending request
	row int
	rec *query.Record // pending requests are parsed up front
}

// bounds are what every row is tested against besides the filter.
type bounds struct {
	lowSeq, horizon uint64
	since, until    int64 // until exclusive; 0: none
	hasSince        bool
	hasUntil        bool
	after           *key // strictly after
}

func (ix *Index) boundsOf(m *query.Matcher, s *snapshot) bounds {
	b := bounds{lowSeq: s.lowSeq, horizon: s.horizon}
	if !m.F.Since.IsZero() {
		b.since, b.hasSince = m.F.Since.UnixNano(), true
	}
	if !m.F.Until.IsZero() {
		b.until, b.hasUntil = m.F.Until.UnixNano(), true
	}
	if a := m.After; a != nil {
		// Records of this node come after the cursor when (time, node, seq)
		// is greater: at the cursor's time, a node id before ours puts all
		// our records after it, one after ours none.
		k := key{t: a.Time.UnixNano(), seq: a.Seq}
		switch {
		case a.NodeID < ix.cfg.NodeID:
			k.seq = 0
			if k.t > math.MinInt64 {
				k.t-- // every record at a.Time qualifies
				k.seq = math.MaxUint64
			}
		case a.NodeID > ix.cfg.NodeID:
			k.seq = math.MaxUint64
		}
		b.after = &k
	}
	return b
}

// chunkMatches returns the rows of v matching m and b, sorted by key.
func chunkMatches(v *view, m *query.Matcher, b *bounds, scanned *int64) []hit {
	n := v.n
	if n == 0 {
		return nil
	}
	c := &v.c
	f := &m.F
	eq := func(col int, want string) []bool {
		out := make([]bool, len(c.vals[col]))
		for i, s := range c.vals[col] {
			out[i] = s == want
		}
		return out
	}
	var pathOK, opOK, mountOK, flagOK, nsOK []bool
	var actorOK [5][]bool
	if f.Path != "" || m.NeedsRecord() {
		pathOK = make([]bool, len(c.vals[cPath]))
		for i, s := range c.vals[cPath] {
			pathOK[i] = m.MatchPath(s) && m.PathMayMatch(s)
		}
	}
	// The filters of the materialised record, first narrowed by the
	// dictionaries they depend on (one test per distinct value).
	var remoteOK, errCodeOK, entityOK []bool
	if f.RemoteAddr != "" {
		remoteOK = make([]bool, len(c.vals[cRemote]))
		for i, s := range c.vals[cRemote] {
			remoteOK[i] = m.AddrMayMatch(s)
		}
	}
	if f.ErrorCode != "" {
		errCodeOK = eq(cErrorCode, f.ErrorCode)
	}
	if f.Entity != "" {
		entityOK = eq(cEntity, f.Entity)
	}
	var policyOK []bool
	if f.Policy != "" {
		policyOK = make([]bool, len(c.vals[cPolicies]))
		for i, s := range c.vals[cPolicies] {
			policyOK[i] = slices.Contains(decodeList(s), f.Policy)
		}
	}
	if f.Operation != "" {
		opOK = eq(cOperation, f.Operation)
	}
	if f.Mount != "" {
		mountOK = eq(cMount, f.Mount)
	}
	if f.Actor != "" {
		for j, col := range []int{cDisplay, cEntity, cAccessor, cActor, cEntityName} {
			match := m.MatchActorField
			if col == cEntity {
				match = m.MatchEntityField
			}
			actorOK[j] = make([]bool, len(c.vals[col]))
			for i, s := range c.vals[col] {
				actorOK[j][i] = match(s)
			}
		}
	}
	if f.Namespace != "" {
		nsOK = make([]bool, len(c.vals[cNamespace]))
		for i, s := range c.vals[cNamespace] {
			nsOK[i] = m.MatchNamespace(s)
		}
	}
	if f.Flag != "" {
		flagOK = make([]bool, len(c.vals[cFlags]))
		for i, s := range c.vals[cFlags] {
			flagOK[i] = s != "" && m.MatchFlags(decodeFlags(s))
		}
	}
	// Whole dictionaries that match nothing end the scan early.
	for _, ok := range [][]bool{pathOK, opOK, mountOK, flagOK, remoteOK, errCodeOK, entityOK, policyOK, nsOK} {
		if ok != nil && !slices.Contains(ok, true) {
			*scanned += int64(n)
			return nil
		}
	}
	var out []hit
	for i := 0; i < n; i++ {
		seq, t := c.seq[i], c.time[i]
		if seq > b.horizon || seq < b.lowSeq {
			continue
		}
		if b.hasSince && t < b.since || b.hasUntil && t >= b.until {
			continue
		}
		k := key{t: t, seq: seq}
		if b.after != nil && !b.after.less(k) {
			continue
		}
		if f.Allowed != nil && (c.bits[i]&bitAllowed != 0) != *f.Allowed {
			continue
		}
		if pathOK != nil && !pathOK[c.ids[cPath][i]] || opOK != nil && !opOK[c.ids[cOperation][i]] ||
			mountOK != nil && !mountOK[c.ids[cMount][i]] || flagOK != nil && !flagOK[c.ids[cFlags][i]] ||
			nsOK != nil && !nsOK[c.ids[cNamespace][i]] {
			continue
		}
		if f.Actor != "" && !actorOK[0][c.ids[cDisplay][i]] && !actorOK[1][c.ids[cEntity][i]] && !actorOK[2][c.ids[cAccessor][i]] &&
			!actorOK[3][c.ids[cActor][i]] && !actorOK[4][c.ids[cEntityName][i]] {
			continue
		}
		if remoteOK != nil && !remoteOK[c.ids[cRemote][i]] || errCodeOK != nil && !errCodeOK[c.ids[cErrorCode][i]] ||
			entityOK != nil && !entityOK[c.ids[cEntity][i]] || policyOK != nil && !policyOK[c.ids[cPolicies][i]] ||
			f.Status != 0 && int(c.status[i]) != f.Status {
			continue
		}
		if m.NeedsRecord() {
			if rec := v.record(i); !m.MatchExtra(&rec) {
				continue
			}
		}
		out = append(out, hit{k: k, v: v, row: i})
	}
	*scanned += int64(n)
	if !slices.IsSortedFunc(out, func(a, b hit) int { return cmpKey(a.k, b.k) }) {
		slices.SortFunc(out, func(a, b hit) int { return cmpKey(a.k, b.k) })
	}
	return out
}

func cmpKey(a, b key) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

// pendingMatches returns the requests still waiting for a response that
// match, as Incomplete records.
func (ix *Index) pendingMatches(s *snapshot, m *query.Matcher, b *bounds, scanned *int64) ([]hit, error) {
	var out []hit
	var p query.Parser
	for _, pr := range s.pend {
		if pr.Seq > b.horizon || pr.Seq < b.lowSeq {
			continue
		}
		*scanned++
		r, _, err := p.Parse([]byte(pr.Line))
		if err != nil {
			return nil, fmt.Errorf("audit query index: pending request %s: %w", pr.ID, err)
		}
		k := key{t: r.Time.UnixNano(), seq: r.Seq}
		if r.Time.IsZero() {
			k.t = noTime
		}
		if b.after != nil && !b.after.less(k) || !m.Match(&r) {
			continue
		}
		out = append(out, hit{k: k, rec: &r})
	}
	slices.SortFunc(out, func(a, b hit) int { return cmpKey(a.k, b.k) })
	return out, nil
}

// source yields sorted hits of one chunk, the tail, or the pending set.
type source struct {
	hits []hit
	i    int
}

type srcHeap []*source

func (h srcHeap) Len() int           { return len(h) }
func (h srcHeap) Less(i, j int) bool { return h[i].hits[h[i].i].k.less(h[j].hits[h[j].i].k) }
func (h srcHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *srcHeap) Push(x any)        { *h = append(*h, x.(*source)) }
func (h *srcHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// walk calls fn with every matching row in order until fn returns false.
// Chunks are opened in order of their earliest time and only once every
// row already opened that sorts before their earliest time has been
// delivered, so a query that stops early (a page) opens few chunks.
func (ix *Index) walk(ctx context.Context, s *snapshot, m *query.Matcher, b *bounds, scanned *int64, fn func(h *hit) (bool, error)) error {
	if m.F.NodeID != "" && m.F.NodeID != ix.cfg.NodeID {
		return nil // this index holds one node's chain
	}
	var cands []chunkMeta
	for _, c := range s.chunks {
		if c.MaxSeq < b.lowSeq || c.MinSeq > b.horizon || b.hasSince && c.MaxT < b.since || b.hasUntil && c.MinT >= b.until ||
			b.after != nil && c.MaxT < b.after.t {
			continue
		}
		cands = append(cands, c)
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].MinT < cands[j].MinT })
	h := &srcHeap{}
	push := func(hits []hit) {
		if len(hits) > 0 {
			heap.Push(h, &source{hits: hits})
		}
	}
	push(chunkMatches(s.tail, m, b, scanned))
	pend, err := ix.pendingMatches(s, m, b, scanned)
	if err != nil {
		return err
	}
	push(pend)
	next := 0
	for {
		// Open every chunk that may hold a row before the current head.
		for next < len(cands) && (h.Len() == 0 || cands[next].MinT <= (*h)[0].hits[(*h)[0].i].k.t) {
			if err := ctx.Err(); err != nil {
				return err
			}
			c, err := ix.load(cands[next])
			if err != nil {
				return err
			}
			push(chunkMatches(c.snapshot(ix.cfg.NodeID), m, b, scanned))
			next++
		}
		if h.Len() == 0 {
			return nil
		}
		src := (*h)[0]
		more, err := fn(&src.hits[src.i])
		if err != nil || !more {
			return err
		}
		src.i++
		if src.i == len(src.hits) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
}

func (ix *Index) materialize(h *hit) query.Record {
	if h.rec != nil {
		return *h.rec
	}
	return h.v.record(h.row)
}

// Query implements query.Backend.
func (ix *Index) Query(ctx context.Context, f query.Filter) (*query.Result, error) {
	m, warn, err := ix.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	s := ix.snapshot(m)
	b := ix.boundsOf(m, s)
	res := &query.Result{Backend: ix.Name(), Records: []query.Record{}, Checkpoint: s.cp, Verification: s.verify, Warnings: append(s.warn, warn...)}
	if s.cp != nil {
		res.Checkpoints = []query.CheckpointRef{*s.cp}
	}
	limit := m.F.Limit
	more := false
	err = ix.walk(ctx, s, m, &b, &res.Scanned, func(h *hit) (bool, error) {
		if len(res.Records) == limit {
			more = true
			return false, nil
		}
		res.Records = append(res.Records, ix.materialize(h))
		return true, nil
	})
	if err != nil {
		return nil, ix.loadFailed(err)
	}
	if more {
		res.Next = query.CursorAfter(&res.Records[len(res.Records)-1], map[string]uint64{ix.cfg.NodeID: s.horizon})
	}
	return res, nil
}

// Scan implements query.Backend.
func (ix *Index) Scan(ctx context.Context, f query.Filter, fn func(query.Record) error) (*query.CheckpointRef, error) {
	m, _, err := ix.compile(ctx, f)
	if err != nil {
		return nil, err
	}
	s := ix.snapshot(m)
	b := ix.boundsOf(m, s)
	var scanned int64
	var cbErr error
	err = ix.walk(ctx, s, m, &b, &scanned, func(h *hit) (bool, error) {
		if cbErr = fn(ix.materialize(h)); cbErr != nil {
			return false, nil
		}
		return true, nil
	})
	if cbErr != nil {
		return s.cp, cbErr
	}
	if err != nil {
		return nil, ix.loadFailed(err)
	}
	return s.cp, nil
}

// loadFailed turns a corrupt chunk into a rebuild of the index from the
// log (by the indexing goroutine; Open rebuilds too if it is not running).
func (ix *Index) loadFailed(err error) error {
	if errors.Is(err, errCorrupt) && ix.corrupt.CompareAndSwap(false, true) {
		ix.log.Error("audit query index: corrupt chunk; rebuilding the index from the log", "error", err)
		_ = writeFileAtomic(filepath.Join(ix.cfg.Dir, stateFile), []byte("{}")) // version 0: rebuilt on Open
	}
	return err
}

// load returns a chunk, decoded, from the cache or its file.
func (ix *Index) load(c chunkMeta) (*chunk, error) {
	if ch := ix.cache.get(c.File); ch != nil {
		return ch, nil
	}
	ch, err := readChunk(filepath.Join(ix.cfg.Dir, c.File))
	if err != nil {
		return nil, err
	}
	ix.cache.put(c.File, ch)
	return ch, nil
}

// --- cache ---

type chunkCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[string]*list.Element
}

type cacheItem struct {
	name string
	c    *chunk
	size int64
}

func newChunkCache(max int64) *chunkCache {
	return &chunkCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func memSize(c *chunk) int64 {
	n := int64(c.rows())
	size := n*(8+8+1+2+2+4*nCols) + int64(len(c.uuids)+len(c.reqs)+4*len(c.reqEnd))
	for _, vals := range c.vals {
		for _, s := range vals {
			size += int64(len(s)) + 16
		}
	}
	return size
}

func (cc *chunkCache) get(name string) *chunk {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.items[name]; ok {
		cc.ll.MoveToFront(e)
		return e.Value.(*cacheItem).c
	}
	return nil
}

func (cc *chunkCache) put(name string, c *chunk) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.items[name]; ok {
		return
	}
	it := &cacheItem{name: name, c: c, size: memSize(c)}
	cc.items[name] = cc.ll.PushFront(it)
	cc.size += it.size
	for cc.size > cc.max && cc.ll.Len() > 1 {
		e := cc.ll.Back()
		old := e.Value.(*cacheItem)
		cc.ll.Remove(e)
		delete(cc.items, old.name)
		cc.size -= old.size
	}
}

func (cc *chunkCache) remove(name string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.items[name]; ok {
		cc.size -= e.Value.(*cacheItem).size
		cc.ll.Remove(e)
		delete(cc.items, name)
	}
}

func (cc *chunkCache) clear() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.ll.Init()
	cc.items = map[string]*list.Element{}
	cc.size = 0
}

func sortPending(p []pendingReq) {
	slices.SortFunc(p, func(a, b pendingReq) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
}
