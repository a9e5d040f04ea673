// Package router keeps the mount table and routes requests to the engine
// mounted at the longest matching path prefix.
//
// Engines implement framework.Engine (declared beside framework.Route and
// framework.Env); optional capabilities (lease revocation, renewal,
// periodic work) are separate small interfaces found by type assertion.
// Engines never see the router.
package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// MountJob is a scheduled job of one mount.
type MountJob struct {
	Mount string // mount path, e.g. "transit/"
	framework.Job
}

// MountEntry is one row of the mount table.
type MountEntry struct {
	Path        string            `json:"path"`
	Type        string            `json:"type"`
	Class       string            `json:"class"` // "secret" or "auth"
	Description string            `json:"description"`
	Accessor    string            `json:"accessor"`
	UUID        string            `json:"uuid"`
	Config      core.MountConfig  `json:"config"`
	Options     map[string]string `json:"options,omitempty"`
	Local       bool              `json:"local,omitempty"`
	SealWrap    bool              `json:"seal_wrap,omitempty"`
	Created     time.Time         `json:"created"`
	// NamespaceID and NamespacePath name the namespace the mount belongs
	// to (empty for the root namespace). Path is then the full path, the
	// namespace's path in front ("hospital-a/secret/").
	NamespaceID   string `json:"namespace_id,omitempty"`
	NamespacePath string `json:"namespace_path,omitempty"`
	// Static mounts (sys/, auth/token/) are built in and never persisted.
	Static bool `json:"-"`
}

// Info returns the entry as the core.MountInfo handed to the dispatcher.
func (e *MountEntry) Info() core.MountInfo {
	opts := map[string]string{}
	tags := map[string]string{}
	for k, v := range e.Options {
		opts[k] = v
		if k != "version" {
			tags[k] = v
		}
	}
	return core.MountInfo{Path: e.Path, Type: e.Type, Accessor: e.Accessor, UUID: e.UUID, Class: e.Class,
		Description: e.Description, Options: opts, Tags: tags, Local: e.Local, SealWrap: e.SealWrap, Config: e.Config,
		NamespaceID: e.NamespaceID}
}

type mount struct {
	entry  *MountEntry
	engine framework.Engine
	routes []framework.Route
}

// Config configures a Router.
type Config struct {
	// Storage is the barrier; the mount table and each mount's view live in it.
	Storage storage.Storage
	// Factories maps a mount type to its engine (explicit list in cmd/vigil).
	Factories map[string]framework.Factory
	// AuthFactories maps an auth method type to its engine.
	AuthFactories map[string]framework.Factory
	// DefaultLeaseTTL and MaxLeaseTTL are the server defaults.
	DefaultLeaseTTL, MaxLeaseTTL time.Duration
	Now                          func() time.Time
	Logger                       *slog.Logger
}

// Router routes requests to mounted engines. It is safe for concurrent use.
type Router struct {
	cfg Config
	// nsConflict names a namespace a new mount would collide with (see
	// SetNamespaceConflict).
	nsConflict func(ns core.Namespace, path string) string
	mu         sync.RWMutex
	mounts     map[string]*mount // by path
	order      []string          // paths, longest first
	static     map[string]*mount
}

const (
	secretTableKey = "core/mounts"
	authTableKey   = "core/auth"
)

// New returns a router with no mounts loaded.
func New(cfg Config) *Router {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Router{cfg: cfg, mounts: map[string]*mount{}, static: map[string]*mount{}}
}

// MountStatic registers a built-in mount (sys/, auth/token/) that is never
// persisted and stays mounted while sealed. setup runs immediately with a
// view of storage under viewPrefix.
func (r *Router) MountStatic(ctx context.Context, entry *MountEntry, e framework.Engine, viewPrefix string) error {
	entry.Static = true
	if entry.Accessor == "" {
		entry.Accessor = newAccessor(entry.Class, entry.Type)
	}
	if entry.UUID == "" {
		entry.UUID = entry.Type
	}
	m := &mount{entry: entry, engine: e}
	if err := r.setup(ctx, m, viewPrefix); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.static[entry.Path] = m
	r.mounts[entry.Path] = m
	r.reorder()
	return nil
}

func (r *Router) setup(ctx context.Context, m *mount, viewPrefix string) error {
	var view storage.Storage
	if r.cfg.Storage != nil {
		view = storage.NewView(r.cfg.Storage, viewPrefix)
	}
	env := framework.Env{
		Storage: view,
		Now:     r.cfg.Now,
		Logger:  r.cfg.Logger.With("mount", m.entry.Path, "type", m.entry.Type),
		Mount:   m.entry.Info(),
		System:  &sysView{r: r, path: m.entry.Path},
	}
	if err := m.engine.Setup(ctx, env); err != nil {
		return fmt.Errorf("mount %s: setup: %w", m.entry.Path, err)
	}
	routes := m.engine.Routes()
	for i := range routes {
		if err := routes[i].Compile(); err != nil {
			return err
		}
		if !m.entry.Static && (routes[i].Unaudited || routes[i].SealedOK || routes[i].FailSafe) {
			return fmt.Errorf("mount %s: only system routes may be unaudited, fail-safe or served sealed", m.entry.Path)
		}
	}
	// setup is never called with r.mu held.
	r.mu.Lock()
	m.routes = routes
	r.mu.Unlock()
	return nil
}

func viewPrefixFor(e *MountEntry) string {
	if e.Class == "auth" {
		return "auth/" + e.UUID + "/"
	}
	return "logical/" + e.UUID + "/"
}

func (r *Router) reorder() {
	r.order = r.order[:0]
	for p := range r.mounts {
		r.order = append(r.order, p)
	}
	sort.Slice(r.order, func(i, j int) bool {
		if len(r.order[i]) != len(r.order[j]) {
			return len(r.order[i]) > len(r.order[j])
		}
		return r.order[i] < r.order[j]
	})
}

// Load reads the mount tables from storage and sets up every engine. It is
// called after unseal. Mounts whose engine fails to set up are logged and
// left unmounted; the error of the first is returned after all were tried.
func (r *Router) Load(ctx context.Context) error {
	var firstErr error
	for _, key := range []string{secretTableKey, authTableKey} {
		var table []*MountEntry
		if _, err := storage.GetJSON(ctx, r.cfg.Storage, key, &table); err != nil {
			return fmt.Errorf("router: load %s: %w", key, err)
		}
		for _, e := range table {
			eng, err := r.factory(e.Class, e.Type)
			if err == nil {
				m := &mount{entry: e, engine: eng}
				err = r.setup(ctx, m, viewPrefixFor(e))
				if err == nil {
					r.mu.Lock()
					r.mounts[e.Path] = m
					r.reorder()
					r.mu.Unlock()
					continue
				}
			}
			r.cfg.Logger.Error("mount failed to load", "path", e.Path, "type", e.Type, "error", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// Unload closes every non-static engine (on seal).
func (r *Router) Unload(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, m := range r.mounts {
		if m.entry.Static {
			continue
		}
		if err := m.engine.Close(ctx); err != nil {
			r.cfg.Logger.Warn("engine close", "path", p, "error", err)
		}
		delete(r.mounts, p)
	}
	r.reorder()
}

func (r *Router) factory(class, typ string) (framework.Engine, error) {
	f := r.cfg.Factories
	if class == "auth" {
		f = r.cfg.AuthFactories
	}
	fac, ok := f[typ]
	if !ok {
		// Refuse outright and name what exists: a mount of a type this
		// server does not implement would answer nothing useful.
		supported := strings.Join(r.Types(class), ", ")
		if class == "auth" {
			return nil, core.Invalid("unknown auth method type: %s (this server supports: token, %s)", typ, supported)
		}
		return nil, core.Invalid("plugin not found in the catalog: %s (this server supports secrets engines: %s)", typ, supported)
	}
	return fac(), nil
}

// Types returns the known engine types for a class.
func (r *Router) Types(class string) []string {
	f := r.cfg.Factories
	if class == "auth" {
		f = r.cfg.AuthFactories
	}
	out := make([]string, 0, len(f))
	for k := range f {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// newAccessor returns a mount accessor in Vault's form: "<type>_<8 hex>"
// for secret engines (kv_1a2b3c4d, system_...), "auth_<type>_<8 hex>" for
// auth methods (auth_userpass_..., auth_token_...).
func newAccessor(class, typ string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := ""
	if class == "auth" {
		prefix = "auth_"
	}
	return prefix + strings.ReplaceAll(typ, "-", "_") + "_" + hex.EncodeToString(b)
}

// Resolved is the result of matching a path.
type Resolved struct {
	Mount     core.MountInfo
	MountPath string // path relative to the mount
	Route     *framework.Route
	Captures  map[string]any
	engine    framework.Engine
}

// Resolve finds the mount and route for a client's request to path: the
// mount with the longest matching prefix, and among its routes that match,
// the most specific one (framework.Route.MatchSpecific), the first declared
// on a tie. Route precedence thus never depends on the order in which
// subsystems contribute sys/ routes. Internal routes are skipped. It returns
// a CodeNotFound error naming the path when no mount matches, and a Resolved
// with a nil Route when the mount matches but no route does.
func (r *Router) Resolve(path string) (*Resolved, error) { return r.resolve(path, false) }

// ResolveInternal is Resolve for a request Vigil makes itself: Internal
// routes match too.
func (r *Router) ResolveInternal(path string) (*Resolved, error) { return r.resolve(path, true) }

func (r *Router) resolve(path string, internal bool) (*Resolved, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, rel := r.match(path)
	if m == nil || m.entry.NamespaceID != "" {
		// A mount of a namespace is reached through ResolveIn only.
		return nil, core.Errorf(core.CodeNotFound, "no handler for route %q. route entry not found.", path)
	}
	return r.resolved(m, rel, m.entry.Info(), internal), nil
}

// resolved picks m's route for rel (Internal routes only for internal
// requests). The caller holds r.mu (read).
func (r *Router) resolved(m *mount, rel string, info core.MountInfo, internal bool) *Resolved {
	res := &Resolved{Mount: info, MountPath: rel, engine: m.engine}
	best := -1
	for i := range m.routes {
		if m.routes[i].Internal && !internal {
			continue
		}
		if caps, spec, ok := m.routes[i].MatchSpecific(rel); ok && spec > best {
			res.Route, res.Captures, best = &m.routes[i], caps, spec
			if spec == len(rel) { // nothing captured: none can be more specific
				break
			}
		}
	}
	return res
}

func (r *Router) match(path string) (*mount, string) {
	for _, p := range r.order {
		if strings.HasPrefix(path, p) {
			return r.mounts[p], path[len(p):]
		}
		// "secret" (without slash) addresses the mount root, as in Vault.
		if path+"/" == p {
			return r.mounts[p], ""
		}
	}
	return nil, ""
}

// FieldData builds the validated field data for req on res.
func FieldData(res *Resolved, req *core.Request) (*framework.FieldData, error) {
	raw := make(map[string]any, len(req.Data)+len(res.Captures))
	for k, v := range req.Data {
		raw[k] = v
	}
	for k, v := range res.Captures {
		raw[k] = v
	}
	for k, v := range req.Withheld {
		raw[k] = v
	}
	d := framework.NewFieldData(raw, res.Route.Fields)
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Exists runs the route's existence check, if any. ok is false when the
// route has none.
func (r *Router) Exists(ctx context.Context, res *Resolved, req *core.Request) (exists, ok bool, err error) {
	if res.Route == nil || res.Route.ExistenceCheck == nil {
		return false, false, nil
	}
	d, err := FieldData(res, req)
	if err != nil {
		return false, true, err
	}
	exists, err = res.Route.ExistenceCheck(ctx, req, d)
	return exists, true, err
}

// Route runs the handler for req, which the dispatcher has resolved into res.
// Panics in handlers are recovered into internal errors.
func (r *Router) Route(ctx context.Context, res *Resolved, req *core.Request) (resp *core.Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.cfg.Logger.Error("handler panic", "path", req.Path, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, core.Errorf(core.CodeInternal, "internal error: handler panicked")
		}
	}()
	switch req.Operation {
	case core.OpRevoke:
		rv, ok := res.engine.(framework.SecretRevoker)
		if !ok || req.Secret == nil {
			return nil, core.Errorf(core.CodeInvalid, "mount %s cannot revoke leases", res.Mount.Path)
		}
		return nil, rv.RevokeSecret(ctx, req, req.Secret)
	case core.OpRenew:
		rn, ok := res.engine.(framework.SecretRenewer)
		if !ok || req.Secret == nil {
			return nil, core.Errorf(core.CodeInvalid, "lease is not renewable")
		}
		inc, _ := framework.ParseDuration(req.Data["increment"])
		ttl, err := rn.RenewSecret(ctx, req, req.Secret, inc)
		if err != nil {
			return nil, err
		}
		return &core.Response{Data: map[string]any{"ttl": int64(ttl / time.Second)}}, nil
	}
	if res.Route == nil {
		return nil, core.ErrUnsupportedPath
	}
	h := res.Route.Operations[req.Operation]
	if h == nil && req.Operation == core.OpCreate {
		h = res.Route.Operations[core.OpUpdate]
	}
	if h == nil {
		return nil, core.ErrUnsupportedOp
	}
	d, err := FieldData(res, req)
	if err != nil {
		return nil, err
	}
	resp, err = h(ctx, req, d)
	if err == nil && resp != nil && !res.Route.Raw && !res.Route.AnyData {
		if unk := d.Unknown(); len(unk) > 0 && req.Operation != core.OpRead && req.Operation != core.OpList {
			resp.AddWarning(fmt.Sprintf("Endpoint ignored these unrecognized parameters: %v", unk))
		}
	}
	return resp, err
}

// ScheduledJobs lists the scheduled jobs of every mounted engine, by mount
// path. The server runs them through the Dispatcher (see Scheduler).
func (r *Router) ScheduledJobs() []MountJob {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []MountJob
	for _, p := range r.order {
		if s, ok := r.mounts[p].engine.(framework.Scheduler); ok {
			for _, j := range s.ScheduledJobs() {
				out = append(out, MountJob{Mount: p, Job: j})
			}
		}
	}
	return out
}

// newUUID returns a random UUID string.
func newUUID() string { return uuid.NewString() }
