// Package framework is the small toolkit engines use to declare their HTTP
// routes: path patterns, typed fields, per-operation handlers and the Env an
// engine receives at setup. It mirrors the parts of Vault's logical framework
// that engines need, and nothing of the router.
package framework

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// HandlerFunc handles one operation on one route. d holds the request's
// fields, typed by the route's schema (path captures included).
type HandlerFunc func(ctx context.Context, req *core.Request, d *FieldData) (*core.Response, error)

// ExistenceFunc reports whether the target of a write exists. Authorization
// uses it to check "create" instead of "update" for writes to new objects.
type ExistenceFunc func(ctx context.Context, req *core.Request, d *FieldData) (bool, error)

// Route is one path pattern of an engine.
type Route struct {
	// Pattern is a regular expression matched against the whole path
	// relative to the mount (anchors are added). Named groups become fields.
	Pattern    string
	Fields     map[string]*FieldSchema
	Operations map[core.Operation]HandlerFunc
	// ExistenceCheck, when set, makes writes to missing objects "create".
	ExistenceCheck ExistenceFunc
	// Unauthenticated routes need no token (logins, public CA certs).
	Unauthenticated bool
	// Unaudited routes skip the audit log. Only the system mount may set it,
	// for Vault's list of unaudited paths (health, seal status, init, unseal).
	Unaudited bool
	// SealedOK routes are served while the barrier is sealed. System only.
	SealedOK bool
	// Sudo routes require the sudo capability (root-protected in Vault terms).
	Sudo bool
	// Internal routes serve only requests Vigil makes itself (scheduled
	// jobs, compliance scoping): to a client they do not exist, and path
	// matching skips them. Such requests still go through the Dispatcher
	// and are audited with the internal principal that made them.
	Internal bool
	// FailSafe routes only take access away (sys/seal). They run even when
	// their request entry cannot be recorded. System only.
	FailSafe bool
	// SideEffectFree lists the operations of this route that change
	// nothing: no storage write, no lease, no token, no counter, no call
	// out with effects — for every request, whatever its fields. Their
	// request entry need not be durable before the handler runs: the
	// request and response entries become durable together, with one
	// wait, before the answer (docs/audit-format.md). Every operation not
	// listed has side effects (the default): its request entry is durable
	// before its handler runs. List an operation only when its handler and
	// everything it calls are read-only.
	SideEffectFree []core.Operation
	// Raw routes receive the unparsed body in Request.RawBody.
	Raw bool
	// MaxBody overrides the default request body limit for Raw routes.
	MaxBody int64
	// AnyData routes take arbitrary request data (sys/wrapping/wrap): the
	// router does not warn about parameters outside Fields.
	AnyData bool
	// DefersTokenUse routes spend the caller's response-wrapping token
	// themselves (sys/wrapping/unwrap, rewrap): authenticating it does not
	// consume its single use (core.Request.DeferTokenUse). System only.
	DefersTokenUse bool
	// Help is a one-line description.
	Help string

	re *regexp.Regexp
}

// Compile prepares the route's pattern. It is called by the router once.
func (r *Route) Compile() error {
	re, err := regexp.Compile("^" + r.Pattern + "$")
	if err != nil {
		return fmt.Errorf("framework: route %q: %w", r.Pattern, err)
	}
	r.re = re
	return nil
}

// Match reports whether path matches and returns the named captures.
func (r *Route) Match(path string) (map[string]any, bool) {
	caps, _, ok := r.MatchSpecific(path)
	return caps, ok
}

// MatchSpecific is Match that also reports how specific the match is: the
// number of path characters matched by the pattern itself rather than by a
// named capture. "audit/query" matches "audit/query" with 11, and
// "audit/(?P<path>.+)" the same path with 6. The router serves a path with
// the most specific of the routes that match it, the first declared on a
// tie.
func (r *Route) MatchSpecific(path string) (caps map[string]any, specificity int, ok bool) {
	if r.re == nil {
		if err := r.Compile(); err != nil {
			return nil, 0, false
		}
	}
	idx := r.re.FindStringSubmatchIndex(path)
	if idx == nil {
		return nil, 0, false
	}
	caps = map[string]any{}
	// Captured spans may nest: count each captured character once.
	captured, end := 0, 0
	for i, name := range r.re.SubexpNames() {
		lo, hi := idx[2*i], idx[2*i+1]
		if name == "" || lo < 0 {
			continue
		}
		if hi > lo {
			caps[name] = path[lo:hi]
		}
		if lo < end { // nested in (or overlapping) the previous named group
			lo = end
		}
		if hi > lo {
			captured += hi - lo
			end = hi
		}
	}
	return caps, len(path) - captured, true
}

// Part is a set of routes another package contributes to a built-in
// mount: policies, audit, leases and reports add their routes to sys/.
type Part interface {
	Routes() []Route
}

// Env is what an engine receives at Setup. It never exposes the router, the
// root key or the audit broker.
type Env struct {
	// Storage is the mount's private, encrypted view of storage.
	Storage storage.Storage
	// Now is the clock; never nil.
	Now func() time.Time
	// Logger is scoped to the mount.
	Logger *slog.Logger
	// Mount describes the mount the engine serves.
	Mount core.MountInfo
	// System exposes read-only facts about the server (lease TTL defaults).
	System SystemView
}

// SystemView gives engines the effective lease TTLs of their mount (which
// can change with tuning) and other server-wide facts.
type SystemView interface {
	// DefaultLeaseTTL and MaxLeaseTTL are the mount's effective values
	// (mount tuning, else the server defaults).
	DefaultLeaseTTL() time.Duration
	MaxLeaseTTL() time.Duration
	// MountOptions returns the mount's current options.
	MountOptions() map[string]string
}

// StaticSystem is a SystemView with fixed values, for tests.
type StaticSystem struct {
	Default, Max time.Duration
	Options      map[string]string
}

func (s StaticSystem) DefaultLeaseTTL() time.Duration  { return s.Default }
func (s StaticSystem) MaxLeaseTTL() time.Duration      { return s.Max }
func (s StaticSystem) MountOptions() map[string]string { return s.Options }

// GenericNameRegex returns a named group matching one path segment name
// (letters, digits, '-', '_', '.'), as Vault's framework does.
func GenericNameRegex(name string) string {
	return fmt.Sprintf(`(?P<%s>\w(([\w.@-]+)?\w)?)`, name)
}

// MatchAllRegex returns a named group matching the rest of the path.
func MatchAllRegex(name string) string { return fmt.Sprintf(`(?P<%s>.*)`, name) }

// OptionalTrailingSlash matches an optional "/" at the end of a list path.
const OptionalTrailingSlash = `/?`

// TTLs computes a lease's TTL from a requested TTL and the mount's limits,
// as Vault does: 0 means the default; the result is capped by max (when set)
// and by a role maximum (when set). It returns a warning when capped.
func TTLs(requested, roleDefault, roleMax time.Duration, sys SystemView) (ttl time.Duration, warning string) {
	ttl = requested
	if ttl == 0 {
		ttl = roleDefault
	}
	if ttl == 0 && sys != nil {
		ttl = sys.DefaultLeaseTTL()
	}
	max := time.Duration(0)
	if sys != nil {
		max = sys.MaxLeaseTTL()
	}
	if roleMax > 0 && (max == 0 || roleMax < max) {
		max = roleMax
	}
	if max > 0 && ttl > max {
		return max, fmt.Sprintf("TTL of %s exceeded the effective max_ttl of %s; TTL value is capped accordingly", ttl, max)
	}
	return ttl, ""
}

var nameRe = regexp.MustCompile(`^\w(([\w.@-]+)?\w)?$`)
