package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Defaults.
const (
	DefaultEvalTimeout = 500 * time.Millisecond
	DefaultCacheSize   = 100_000
)

// Config configures an Authz.
type Config struct {
	// Storage is where policies live (the barrier). Required.
	Storage storage.Storage
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
	// EvalTimeout bounds one Rego evaluation (default 500 ms). A timeout
	// denies the request.
	EvalTimeout time.Duration
	// CacheSize is the maximum number of cached decisions (default
	// 100,000); negative disables the cache.
	CacheSize int
	// Headers are request headers added to input.request.headers besides
	// every X-Vigil-* header (canonical names, e.g. "User-Agent").
	Headers []string
}

// Authz is Vigil's authorizer: Vault ACL policies and custom Rego modules,
// evaluated by the Rego bundle of package rego, with an indexed policy set
// and a decision cache in front. It implements core.Authorizer.
//
// All methods are safe for concurrent use. Policy writes and reloads are
// serialised; readers always see one complete policy revision.
type Authz struct {
	cfg          Config
	extraHeaders map[string]bool
	mu           sync.Mutex // serialises writes and reloads
	cur          atomic.Pointer[state]
	hits, misses atomic.Uint64
	dirty        atomic.Bool
	reloading    atomic.Bool
}

var _ core.Authorizer = (*Authz)(nil)

// New returns an Authz with no policies loaded: until Load succeeds every
// request is denied.
func New(cfg Config) *Authz {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.EvalTimeout <= 0 {
		cfg.EvalTimeout = DefaultEvalTimeout
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	a := &Authz{cfg: cfg, extraHeaders: map[string]bool{}}
	for _, h := range cfg.Headers {
		a.extraHeaders[http.CanonicalHeaderKey(h)] = true
	}
	return a
}

// errNotLoaded is the deny reason before Load (or after Clear).
var errNotLoaded = errors.New("authorization policies are not loaded")

// Authorize decides req (Principal, Mount, SudoRequired and the effective
// Operation set by the dispatcher). It never returns an error: when the
// decision cannot be made (policies not loaded, evaluation error, timeout)
// it returns a deny with Decision.Error set — it never allows because
// evaluation broke. The returned Decision is shared with the cache and must
// be treated as read-only (its top-level struct is a private copy).
func (a *Authz) Authorize(ctx context.Context, req *core.Request) (*core.Decision, error) {
	st := a.cur.Load()
	if st == nil {
		return failClosed(req.Operation, errNotLoaded), nil
	}
	p := req.Principal
	if p == nil {
		return failClosed(req.Operation, errors.New("request has no authenticated principal")), nil
	}
	tokNS := p.NamespaceOf()
	r, pols, inside := forPrincipal(req)
	if !inside {
		return &core.Decision{Allowed: false, Operation: req.Operation, DenyReasons: []string{
			fmt.Sprintf("a token of namespace %q cannot act in namespace %q", nsName(tokNS), nsName(req.NS()))}}, nil
	}
	req = r
	if st.broken != "" {
		if p.Root && tokNS.IsRoot() {
			return rootDecision(req.Operation), nil
		}
		return failClosed(req.Operation, errors.New(st.broken)), nil
	}
	v, err := st.view(pols)
	if err != nil {
		return failClosed(req.Operation, err), nil
	}
	now := a.cfg.Now()
	key, cacheable := a.cacheKey(st, v, req, now)
	if cacheable && st.cache != nil {
		if d := st.cache.get(key); d != nil {
			a.hits.Add(1)
			c := *d
			c.Operation = req.Operation
			return &c, nil
		}
	}
	a.misses.Add(1)
	d, _, _, err := a.decide(ctx, st, v, req, now, false)
	if err != nil {
		a.cfg.Logger.Error("policy evaluation failed; request denied", "path", req.Path, "operation", req.Operation, "error", err)
		return failClosed(req.Operation, err), nil
	}
	annotate(d, tokNS)
	if cacheable && st.cache != nil {
		st.cache.put(key, d)
		c := *d
		return &c, nil
	}
	return d, nil
}

func rootDecision(op core.Operation) *core.Decision {
	return &core.Decision{Allowed: true, Operation: op, GrantingPolicies: []core.PolicyRef{{Name: RootPolicy, Type: "acl"}},
		Explanation: []string{"root: the token carries the root policy; every request is allowed"}}
}

// decide evaluates the decision query for req without the cache. It returns
// the decision, the decoded decision document and the input document.
func (a *Authz) decide(ctx context.Context, st *state, v *setView, req *core.Request, now time.Time, full bool) (*core.Decision, *decisionDoc, ast.Object, error) {
	cands := v.candidates(req.Path, req.Operation == core.OpList)
	in := a.buildInputFor(req, now, cands, constrainedValues(v, req.Data), full || len(st.modules) > 0)
	t := req.Time
	if t.IsZero() {
		t = now
	}
	doc, err := a.eval(ctx, st.decision, in, t)
	if err != nil {
		return nil, nil, in, err
	}
	dd, err := parseDecision(doc, cands)
	if err != nil {
		return nil, nil, in, fmt.Errorf("malformed decision: %w", err)
	}
	return dd.toDecision(req.Path, req.Operation, req.Principal.Policies), dd, in, nil
}

// Capabilities answers sys/capabilities for a token with the given policies:
// Vault's capability list for path, sorted by name as Vault answers it
// ("root" for root tokens, "deny" when nothing is granted). Custom modules
// do not take part, as in Vault.
func (a *Authz) Capabilities(ctx context.Context, policies []string, path string) ([]string, error) {
	return a.CapabilitiesNS(ctx, core.RootNamespace, policies, path)
}

// CapabilitiesNS is Capabilities for a token of namespace ns: policies are
// that namespace's, and path is a full path (the namespace's path of the
// request in front). A token has no capability outside its namespace.
func (a *Authz) CapabilitiesNS(ctx context.Context, ns core.Namespace, policies []string, path string) ([]string, error) {
	st := a.cur.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "%v", errNotLoaded)
	}
	if !strings.HasPrefix(strings.TrimPrefix(path, "/"), ns.Path) {
		return []string{CapDeny}, nil
	}
	policies = qualifyAll(ns, policies)
	v, err := st.view(policies)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "capabilities: %v", err)
	}
	if v.root {
		return []string{RootPolicy}, nil
	}
	if st.broken != "" {
		return nil, core.Errorf(core.CodeInternal, "%s", st.broken)
	}
	path = strings.TrimPrefix(path, "/")
	req := &core.Request{Path: path, Operation: core.OpList, Principal: &core.Principal{Policies: policies}}
	now := a.cfg.Now()
	in := a.buildInputFor(req, now, v.candidates(path, true), nil, false)
	res, err := a.eval(ctx, st.caps, in, now)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "capabilities: %v", err)
	}
	caps, err := docStrings(res)
	if err != nil || len(caps) == 0 {
		return nil, core.Errorf(core.CodeInternal, "capabilities: malformed result")
	}
	caps = slices.Clone(caps)
	slices.Sort(caps)
	return caps, nil
}

// Stats reports decision-cache hits and misses since start.
func (a *Authz) Stats() (hits, misses uint64) { return a.hits.Load(), a.misses.Load() }

// Revision returns the loaded policy revision (0 before Load).
func (a *Authz) Revision() uint64 {
	if st := a.cur.Load(); st != nil {
		return st.revision
	}
	return 0
}

// Clear drops the loaded policies and caches (on seal): requests are denied
// until the next Load.
func (a *Authz) Clear() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur.Store(nil)
}

// Invalidate tells the authorizer that the storage key changed, e.g. from
// raft's apply callback on a follower. Keys under sys/policy/ trigger an
// asynchronous reload from storage; other keys are ignored. Bursts are
// coalesced. It never blocks.
func (a *Authz) Invalidate(key string) {
	if !strings.HasPrefix(key, policyPrefix) && !strings.Contains(key, "/"+policyPrefix) {
		return
	}
	a.reloadAsync()
}

// InvalidateKeys is Invalidate for a batch of changed keys, with the
// signature of raftstore.Config.OnApply: nil keys (a snapshot restore
// replaced everything) always reload. It never blocks and never writes to
// storage on the caller's goroutine.
func (a *Authz) InvalidateKeys(keys []string) {
	if keys == nil {
		a.reloadAsync()
		return
	}
	for _, k := range keys {
		if strings.HasPrefix(k, policyPrefix) || strings.Contains(k, "/"+policyPrefix) {
			a.reloadAsync()
			return
		}
	}
}

// reloadAsync reloads the policies from storage on another goroutine,
// coalescing bursts.
func (a *Authz) reloadAsync() {
	if a.cur.Load() == nil {
		return
	}
	a.dirty.Store(true)
	if !a.reloading.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			for a.dirty.Swap(false) {
				if err := a.Load(context.Background()); err != nil {
					a.cfg.Logger.Error("policy reload after invalidation failed", "error", err)
				}
			}
			a.reloading.Store(false)
			if !a.dirty.Load() || !a.reloading.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// CheckRevision reloads the policies when the revision in storage differs
// from the loaded one (policies changed on another node). It costs one
// storage read when nothing changed.
func (a *Authz) CheckRevision(ctx context.Context) error {
	st := a.cur.Load()
	if st == nil {
		return nil
	}
	rev, err := readRevision(ctx, a.cfg.Storage)
	if err != nil {
		return err
	}
	if rev == st.revision {
		return nil
	}
	return a.Load(ctx)
}
