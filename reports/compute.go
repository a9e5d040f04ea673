package reports

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/reports/query"
)

// maxListed caps the event lists (break-glass, privileged operations)
// a report keeps; the counts are always complete, and the lists'
// aggregate rows say how many events are not listed.
const maxListed = 1000

// DefaultRows is how many rows a table prints in the HTML and PDF.
const DefaultRows = 25

// NRBTimeZone is the NRB report's default time zone (Nepal Time,
// UTC+05:45).
const NRBTimeZone = "Asia/Kathmandu"

// ErrInvalid wraps parameter errors.
var ErrInvalid = errors.New("reports: invalid parameters")

type counts struct{ total, denied, errors, off int64 }

// secretScope is one tagged secret: its scope name and path matcher.
type secretScope struct {
	name string
	m    *query.Matcher
}

type pathStat struct {
	counts
	buckets []int64
}

type loginStat struct {
	fails int64
	other map[string]bool // sources (per user) or users (per source)
}

// gen holds one report's aggregation state.
type gen struct {
	p     Params
	src   Source
	env   *compliance.Env
	scope []string
	inSc  map[string]bool
	// secrets are the tagged KV v2 secrets in scope: mount -> key.
	secrets     map[string]map[string]secretScope
	secretNames []string
	// scopeQ is the query parameter selecting each scope entry's records.
	scopeQ map[string][2]string

	loc      *time.Location
	cov      *Coverage
	buckets  []time.Time // bucket starts
	bucketW  string      // "day" or "week"
	cp       *query.CheckpointRef
	backend  string
	oldest   *query.Record
	all      counts
	incompl  int64
	withAddr int64
	withAct  int64
	byMount  map[string]*counts
	byActor  map[string]*counts // by actorKey
	// actorNames is the latest Actor of each actorKey (records come in
	// time order): the name a person's row is shown under.
	actorNames map[string]string
	byPath     map[string]*pathStat
	dayAllow   []int64
	dayDeny    []int64
	dayBG      []int64
	dayDenyA   []int64 // denials on every path

	breakGlass []query.Record
	bgCount    int64
	// approved are executions of requests that waited for approval
	// (control groups), with their requester, approvers and reason.
	approved      []query.Record
	approvedCount int64
	priv          map[string]int64
	privList      []query.Record
	privActor     map[string]int64
	rootCount     int64
	rootList      []query.Record
	rootPaths     map[string]int64
	// drillSubs counts key-custody drill share submissions.
	drillSubs  int64
	loginOK    int64
	loginFail  int64
	failByUser map[string]*loginStat
	failByAddr map[string]*loginStat
	// drillRuns counts the requests that ran a restore drill.
	drillRuns int64
	// usedScope counts in-scope requests by actorKey + "\x00" + scope
	// entry; revokes are the times each actor revoked a token.
	usedScope map[string]int64
	revokes   map[string][]time.Time
	// lastPolicies are the token policies each actorKey's latest record
	// carried (the policies its auth method last issued).
	lastPolicies map[string][]string
}

func (p *Params) defaults() error {
	switch p.Kind {
	case KindHIPAA, KindNRB:
	default:
		return fmt.Errorf("%w: unknown report %q (want hipaa or nrb)", ErrInvalid, p.Kind)
	}
	if p.From.IsZero() || p.To.IsZero() || !p.From.Before(p.To) {
		return fmt.Errorf("%w: from must be before to", ErrInvalid)
	}
	if p.To.Sub(p.From) > 3*366*24*time.Hour {
		return fmt.Errorf("%w: the period may not exceed 3 years", ErrInvalid)
	}
	if p.TimeZone == "" {
		p.TimeZone = "UTC"
		if p.Kind == KindNRB {
			p.TimeZone = NRBTimeZone
		}
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil {
		return fmt.Errorf("%w: time zone: %v", ErrInvalid, err)
	}
	if p.BusinessHours == (BusinessHours{}) {
		p.BusinessHours = BusinessHours{Start: 8, End: 18}
	}
	if p.BusinessHours.Location == "" {
		p.BusinessHours.Location = p.TimeZone
	}
	if _, err := time.LoadLocation(p.BusinessHours.Location); err != nil {
		return fmt.Errorf("%w: business hours location: %v", ErrInvalid, err)
	}
	if p.BusinessHours.Start < 0 || p.BusinessHours.End > 24 || p.BusinessHours.Start >= p.BusinessHours.End {
		return fmt.Errorf("%w: business hours %d-%d", ErrInvalid, p.BusinessHours.Start, p.BusinessHours.End)
	}
	if p.Top <= 0 {
		p.Top = 10
	}
	if p.Rows <= 0 {
		p.Rows = DefaultRows
	}
	if p.GeneratedAt.IsZero() {
		p.GeneratedAt = time.Now()
	}
	p.From, p.To, p.GeneratedAt = p.From.UTC(), p.To.UTC(), p.GeneratedAt.UTC()
	return nil
}

// tagged reports whether a mount's options put it in a report's scope
// (core.ScopeTags).
func tagged(opts map[string]string) bool { return core.TrueTag(opts, core.ScopeTags()) }

// secretGlob is the query path glob matching every request on a KV v2
// secret: <mount><one segment>/<key>, glob characters in the key escaped.
func secretGlob(mount, key string) string {
	var b strings.Builder
	b.WriteString(mount)
	b.WriteString("*/")
	for _, c := range key {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Generate computes a report. Every record-derived figure comes from
// src.Backend; server facts come from src.Env. It reads only.
func Generate(ctx context.Context, src Source, p Params) (*Report, error) {
	if src.Backend == nil {
		return nil, errors.New("reports: no query backend")
	}
	if src.Env == nil {
		src.Env = &compliance.Env{}
	}
	if err := p.defaults(); err != nil {
		return nil, err
	}
	loc, _ := time.LoadLocation(p.TimeZone)
	g := &gen{p: p, loc: loc, src: src, env: src.Env, inSc: map[string]bool{}, byMount: map[string]*counts{}, byActor: map[string]*counts{}, actorNames: map[string]string{},
		byPath: map[string]*pathStat{}, priv: map[string]int64{}, privActor: map[string]int64{}, rootPaths: map[string]int64{},
		failByUser: map[string]*loginStat{}, failByAddr: map[string]*loginStat{},
		scopeQ: map[string][2]string{}, secrets: map[string]map[string]secretScope{}, usedScope: map[string]int64{}, revokes: map[string][]time.Time{}, lastPolicies: map[string][]string{}}
	for _, m := range src.Env.Mounts {
		if tagged(m.Options) {
			g.inSc[m.Path] = true
		}
	}
	for _, m := range p.ScopeMounts {
		m = strings.Trim(strings.TrimSpace(m), "/")
		if m != "" {
			g.inSc[p.Namespace.Path+m+"/"] = true
		}
	}
	for m := range g.inSc {
		g.scope = append(g.scope, m)
		g.byMount[m] = &counts{}
		g.scopeQ[m] = [2]string{"mount", m}
	}
	for _, ts := range src.Tagged {
		if g.inSc[ts.Mount] {
			continue
		}
		name := ts.Mount + ts.Key
		if _, dup := g.byMount[name]; dup {
			continue
		}
		glob := secretGlob(ts.Mount, ts.Key)
		m, err := query.Filter{Path: glob}.Compile()
		if err != nil {
			return nil, fmt.Errorf("reports: scope %s: %w", name, err)
		}
		if g.secrets[ts.Mount] == nil {
			g.secrets[ts.Mount] = map[string]secretScope{}
		}
		g.secrets[ts.Mount][ts.Key] = secretScope{name: name, m: m}
		g.scope = append(g.scope, name)
		g.secretNames = append(g.secretNames, name)
		g.byMount[name] = &counts{}
		g.scopeQ[name] = [2]string{"path", glob}
	}
	sort.Strings(g.scope)
	sort.Strings(g.secretNames)
	g.makeBuckets()
	if err := g.scan(ctx); err != nil {
		return nil, err
	}
	cov, err := coverage(ctx, src.Backend, p.From, p.To, loc)
	if err != nil {
		return nil, err
	}
	g.cov = cov
	return g.build(), nil
}

func (g *gen) makeBuckets() {
	lf := g.p.From.In(g.loc)
	start := time.Date(lf.Year(), lf.Month(), lf.Day(), 0, 0, 0, 0, g.loc)
	days := 1
	g.bucketW = "day"
	if g.p.To.Sub(start) > 92*24*time.Hour {
		days, g.bucketW = 7, "week"
	}
	for t := start; t.Before(g.p.To); t = t.AddDate(0, 0, days) {
		g.buckets = append(g.buckets, t)
	}
	n := len(g.buckets)
	g.dayAllow, g.dayDeny, g.dayBG, g.dayDenyA = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
}

func (g *gen) bucket(t time.Time) int {
	i := sort.Search(len(g.buckets), func(i int) bool { return g.buckets[i].After(t) }) - 1
	return max(0, min(i, len(g.buckets)-1))
}

func (g *gen) bucketLabel(i int) string {
	if g.bucketW == "week" {
		return "wk " + g.buckets[i].In(g.loc).Format("01-02")
	}
	return g.buckets[i].In(g.loc).Format("01-02")
}

func (g *gen) scan(ctx context.Context) error {
	f := query.Filter{Since: g.p.From, Until: g.p.To, Namespace: g.p.Namespace.Path}
	cp, err := g.src.Backend.Scan(ctx, f, g.add)
	if err != nil {
		return fmt.Errorf("reports: scan audit records: %w", err)
	}
	g.cp, g.backend = cp, g.src.Backend.Name()
	res, err := g.src.Backend.Query(ctx, query.Filter{Limit: 1, Namespace: g.p.Namespace.Path})
	if err != nil {
		return fmt.Errorf("reports: oldest record: %w", err)
	}
	if len(res.Records) > 0 {
		g.oldest = &res.Records[0]
	}
	return nil
}

// add folds one record into the aggregates (called by Scan, in order).
func (g *gen) add(r query.Record) error {
	if r.Incomplete && g.src.Exclude != "" && r.RequestID == g.src.Exclude {
		return nil
	}
	bh := g.p.BusinessHours
	b := g.bucket(r.Time)
	g.all.total++
	if !r.Allowed {
		g.all.denied++
		g.dayDenyA[b]++
	}
	if r.Incomplete {
		g.incompl++
	}
	if r.RemoteAddr != "" {
		g.withAddr++
	}
	if Match("has_actor", r, bh) {
		g.withAct++
	}
	if _, ok := r.Flags["break_glass"]; ok {
		g.bgCount++
		g.dayBG[b]++
		if len(g.breakGlass) < maxListed {
			g.breakGlass = append(g.breakGlass, r)
		}
	}
	if ApprovedExecution(r) {
		g.approvedCount++
		if len(g.approved) < maxListed {
			g.approved = append(g.approved, r)
		}
	}
	if c := PrivilegedCategory(r); c != "" {
		g.priv[c]++
		g.privActor[g.actorKey(r)]++
		if len(g.privList) < maxListed {
			g.privList = append(g.privList, r)
		}
	}
	if HasRoot(r) {
		g.rootCount++
		g.rootPaths[r.Path]++
		if len(g.rootList) < maxListed {
			g.rootList = append(g.rootList, r)
		}
	}
	if isDrillRun(r) {
		g.drillRuns++
	}
	if r.Path == drillSubmitPath {
		g.drillSubs++
	}
	if IsLogin(r.Path) {
		if LoginFailed(r) {
			g.loginFail++
			u, a := LoginUser(r.Path), r.RemoteAddr
			if g.failByUser[u] == nil {
				g.failByUser[u] = &loginStat{other: map[string]bool{}}
			}
			if g.failByAddr[a] == nil {
				g.failByAddr[a] = &loginStat{other: map[string]bool{}}
			}
			g.failByUser[u].fails++
			g.failByUser[u].other[a] = true
			g.failByAddr[a].fails++
			g.failByAddr[a].other[u] = true
		} else {
			g.loginOK++
		}
	}
	if isRevoke(r) {
		g.revokes[Actor(r)] = append(g.revokes[Actor(r)], r.Time)
	}
	if len(r.Policies) > 0 && r.EntityID != "" && !r.Internal {
		g.lastPolicies["entity\x00"+r.EntityID] = r.Policies
	}
	entry := g.scopeOf(r)
	if entry == "" {
		return nil
	}
	g.usedScope[g.actorKey(r)+"\x00"+entry]++
	off := bh.OffHours(r.Time)
	for _, c := range []*counts{g.byMount[entry], g.actor(g.actorKey(r)), &g.path(r.Path).counts} {
		c.total++
		if !r.Allowed {
			c.denied++
		}
		if r.Allowed && r.Error != "" {
			c.errors++
		}
		if off {
			c.off++
		}
	}
	g.path(r.Path).buckets[b]++
	if r.Allowed {
		g.dayAllow[b]++
	} else {
		g.dayDeny[b]++
	}
	return nil
}

// scopeOf returns the scope entry a record falls in ("" when none): its
// mount, or the tagged secret its path names.
func (g *gen) scopeOf(r query.Record) string {
	if g.inSc[r.MountPoint] {
		return r.MountPoint
	}
	keys := g.secrets[r.MountPoint]
	if keys == nil || !strings.HasPrefix(r.Path, r.MountPoint) {
		return ""
	}
	_, key, ok := strings.Cut(r.Path[len(r.MountPoint):], "/")
	if !ok {
		return ""
	}
	if s, ok := keys[key]; ok && s.m.MatchPath(r.Path) {
		return s.name
	}
	return ""
}

// actorKey groups records by the person behind them: their entity when
// they have one (one row per person, whichever auth method and token they
// used; merged entities count as the one they were merged into when the
// server resolved them), else the actor name. It records the actor name
// the group is shown under.
func (g *gen) actorKey(r query.Record) string {
	k := "actor\x00" + Actor(r)
	if r.EntityID != "" {
		k = "entity\x00" + r.EntityID
	}
	g.actorNames[k] = Actor(r)
	return k
}

// actorRowCheck selects the in-scope records of an actorKey: by entity id
// (a query parameter), else by the shown actor name.
func (g *gen) actorRowCheck(key string) *Check {
	if id, ok := strings.CutPrefix(key, "entity\x00"); ok {
		return g.scopeCheck("", "entity", id)
	}
	name := strings.TrimPrefix(key, "actor\x00")
	if name == "(unauthenticated)" {
		return g.scopeCheck("actor_is:" + name)
	}
	return g.scopeCheck("actor_is:"+name, "actor", name)
}

// topActors sorts actor groups by count (descending, then shown name) and
// keeps n (all when n is 0).
func (g *gen) topActors(m map[string]int64, n int) []kc {
	out := make([]kc, 0, len(m))
	for k, v := range m {
		out = append(out, kc{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		if a, b := g.actorNames[out[i].k], g.actorNames[out[j].k]; a != b {
			return a < b
		}
		return out[i].k < out[j].k
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func (g *gen) actor(a string) *counts {
	c := g.byActor[a]
	if c == nil {
		c = &counts{}
		g.byActor[a] = c
	}
	return c
}

func (g *gen) path(p string) *pathStat {
	s := g.byPath[p]
	if s == nil {
		s = &pathStat{buckets: make([]int64, len(g.buckets))}
		g.byPath[p] = s
	}
	return s
}

// scoped sums a counts field over the scoped mounts.
func (g *gen) scoped(field func(*counts) int64) int64 {
	var n int64
	for _, m := range g.scope {
		n += field(g.byMount[m])
	}
	return n
}

// scopeQueries returns one query per scoped mount, with extra kv pairs.
func (g *gen) scopeQueries(kv ...string) []string {
	out := make([]string, 0, len(g.scope))
	for _, m := range g.scope {
		q := g.scopeQ[m]
		out = append(out, g.queryString(append([]string{q[0], q[1]}, kv...)...))
	}
	return out
}

func (g *gen) scopeCheck(match string, kv ...string) *Check {
	return &Check{Queries: g.scopeQueries(kv...), Match: match}
}

func (g *gen) allCheck(match string, kv ...string) *Check {
	return &Check{Queries: []string{g.queryString(kv...)}, Match: match}
}

type kc struct {
	k string
	n int64
}

// topN sorts a map by count (descending, then key) and keeps n.
func topN(m map[string]int64, n int) []kc {
	out := make([]kc, 0, len(m))
	for k, v := range m {
		out = append(out, kc{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].k < out[j].k
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ts prints a time in the report's zone.
func (g *gen) ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(g.loc).Format("2006-01-02 15:04:05")
}

// tzName is the zone as table headers print it ("UTC", "Asia/Kathmandu").
func (g *gen) tzName() string { return g.p.TimeZone }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}

func ref(id string) ControlRef {
	c := compliance.MustLookup(id)
	return ControlRef{ID: c.ID, Citation: c.Citation, Title: c.Title, Confidence: c.Confidence}
}

func refs(ids ...string) []ControlRef {
	out := make([]ControlRef, len(ids))
	for i, id := range ids {
		out[i] = ref(id)
	}
	return out
}
