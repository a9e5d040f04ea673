package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/token"
)

// Subsystem is a pluggable part of the server (audit, authorization,
// leases, streams, queries, compliance, reports). Unsealed and Sealing
// bracket each unsealed period: Unsealed runs in the order of
// Options.Subsystems, Sealing in the reverse order. Sealing runs after
// sys/seal has dropped the keys (it must not rely on the barrier, whose
// writes then fail with core.ErrSealed), or before the keys go in an
// orderly shutdown (Close); the server waits for it at most
// Options.TeardownTimeout.
type Subsystem interface {
	Name() string
	Unsealed(ctx context.Context) error
	Sealing(ctx context.Context)
}

// Plug is a subsystem and the call that provisions it. New calls Provision
// once, in list order, after the core pieces exist and before the sys/
// mount and the Dispatcher are built.
//
// A subsystem declares the few capabilities it uses as its own small
// interface (lease.Host, authz.Host, auditsvc.Host, ...) and takes it in its
// Provision method; *Host implements all of them. The wiring (cmd/vigil/wire)
// writes the closure, which is where the compiler checks that the server
// provides what the subsystem asks for:
//
//	server.Plug{Subsystem: sub, Provision: func(h *server.Host) error { return sub.Provision(h) }}
type Plug struct {
	Subsystem
	Provision func(h *Host) error
}

// Host is what a subsystem may use of the server. It gives capabilities,
// not the server's parts: encrypted storage but not the barrier's keyring
// or seal, dispatching a request but not the router, reading mounts and
// tokens but not changing them. Registration methods (Set*, Add*) take
// effect only during Provision.
//
// Host is safe for concurrent use once New returns.
type Host struct{ s *Server }

// --- facts ---

// Now is the server's clock.
func (h *Host) Now() time.Time { return h.s.now() }

// Logger is the server's logger.
func (h *Host) Logger() *slog.Logger { return h.s.log }

// NodeID is this node's id in the cluster.
func (h *Host) NodeID() string { return h.s.cfg.Storage.NodeID }

// Dev reports whether the server runs in -dev mode.
func (h *Host) Dev() bool { return h.s.opts.Dev }

// DataDir is the server's storage folder.
func (h *Host) DataDir() string { return h.s.cfg.Storage.Path }

// Version is the server version.
func (h *Host) Version() string { return Version }

// Config is the parsed server configuration. Subsystems read their own
// blocks from it; they must not change it.
func (h *Host) Config() *config.Config { return h.s.cfg }

// Metrics is where subsystems register their Prometheus collectors.
func (h *Host) Metrics() prometheus.Registerer { return h.s.metrics }

// --- storage ---

// Storage is the encrypted, replicated storage (the barrier's view of
// Raft). Reads and writes fail with core.ErrSealed while sealed.
func (h *Host) Storage() storage.Storage { return barrierStorage{h.s.barrier} }

// Sealed reports whether the barrier is sealed.
func (h *Host) Sealed() bool { return h.s.barrier.Sealed() }

// SealShares returns how the unseal key (or an auto seal's recovery key)
// is split (shares, threshold, key holders). It fails when the server is not initialised.
func (h *Host) SealShares(ctx context.Context) (core.SealShares, error) {
	c, err := h.s.seal.Config(ctx)
	if err != nil {
		return core.SealShares{}, err
	}
	return core.SealShares{Type: c.Type, SecretShares: c.SecretShares, SecretThreshold: c.SecretThreshold,
		RecoveryShares: c.RecoveryShares, RecoveryThreshold: c.RecoveryThreshold, KeyHolders: c.KeyHolders,
		Holders: append([]string(nil), c.Holders...)}, nil
}

// KeyCustody returns the key-drill evidence for the current unseal or
// recovery key: the share commitments, every drill and the latest proof
// of each share. It fails while sealed.
func (h *Host) KeyCustody(ctx context.Context) (*custody.Evidence, error) { return h.s.KeyCustody(ctx) }

// barrierStorage exposes the barrier's storage operations only, so that
// what a subsystem receives cannot be converted back into the barrier.
type barrierStorage struct{ b *barrier.Barrier }

func (s barrierStorage) Get(ctx context.Context, key string) ([]byte, error) {
	return s.b.Get(ctx, key)
}
func (s barrierStorage) Put(ctx context.Context, key string, v []byte) error {
	return s.b.Put(ctx, key, v)
}
func (s barrierStorage) Delete(ctx context.Context, key string) error { return s.b.Delete(ctx, key) }
func (s barrierStorage) List(ctx context.Context, prefix string) ([]string, error) {
	return s.b.List(ctx, prefix)
}

// --- requests ---

// Handle dispatches a request through the one way in (authentication,
// authorization, audit). It fails until New has returned.
func (h *Host) Handle(ctx context.Context, req *core.Request) (*core.Response, error) {
	d := h.s.dispatcher
	if d == nil {
		return nil, errors.New("server: not ready: the dispatcher is built after the subsystems are provisioned")
	}
	return d.Handle(ctx, req)
}

// --- mounts ---

// MountTTLs returns the effective default and maximum lease TTLs of the
// mount serving path (mount tuning, else the server defaults).
func (h *Host) MountTTLs(path string) (def, max time.Duration) { return h.s.router.Effective(path) }

// Mounts lists the mounts of a class ("secret" or "auth"), by path.
func (h *Host) Mounts(class string) []core.MountInfo {
	es := h.s.router.Mounts(class)
	out := make([]core.MountInfo, len(es))
	for i := range es {
		out[i] = es[i].Info()
	}
	return out
}

// ResolvePath tells which mount serves path and whether its route needs
// sudo, as the dispatcher would see it.
func (h *Host) ResolvePath(path string) (*core.MountInfo, bool, error) {
	e, rel, err := h.s.nss.Resolve("", path)
	if err != nil {
		return nil, false, err
	}
	ns := core.RootNamespace
	if e != nil {
		ns = e.Namespace()
	}
	res, err := h.s.router.ResolveIn(ns, rel, false)
	if err != nil {
		return nil, false, err
	}
	m := res.Mount
	return &m, res.Route != nil && res.Route.Sudo, nil
}

// Entities lists the identity store's entities with their effective
// identity policies and groups (access reviews; nil without an identity
// store).
func (h *Host) Entities() ([]core.EntitySummary, error) {
	if h.s.ident == nil {
		return nil, nil
	}
	return h.s.ident.Summaries()
}

// --- tokens ---

// PrincipalByToken returns the principal of a token as the dispatcher
// would see it, identity policies and entity included (nil when unknown).
func (h *Host) PrincipalByToken(ctx context.Context, raw string) (*core.Principal, error) {
	e, err := h.s.tokens.Lookup(ctx, raw)
	if err != nil || e == nil {
		return nil, err
	}
	return h.withIdentity(h.s.tokens.Principal(raw, e))
}

// PrincipalByAccessor returns the principal of the token with accessor acc
// as the dispatcher would see it (nil when unknown).
func (h *Host) PrincipalByAccessor(ctx context.Context, acc string) (*core.Principal, error) {
	e, err := h.s.tokens.LookupAccessor(ctx, acc)
	if err != nil || e == nil {
		return nil, err
	}
	return h.withIdentity(h.s.tokens.Principal("", e))
}

func (h *Host) withIdentity(p *core.Principal) (*core.Principal, error) {
	if h.s.ident == nil {
		return p, nil
	}
	if err := h.s.ident.Resolve(p); err != nil {
		return nil, err
	}
	return p, nil
}

// EntityIDs returns the entity ids an actor (an entity's name or id) may
// appear under in audit records: the entity's own and those merged into it.
func (h *Host) EntityIDs(actor string) []string {
	if h.s.ident == nil {
		return nil
	}
	return h.s.ident.EntityIDs(actor)
}

// TokenExpiry returns the current expiry of the token with this storage
// hash (zero: never), whether it is renewable, and ok=false when the token
// no longer exists.
func (h *Host) TokenExpiry(ctx context.Context, hash string) (expire time.Time, renewable, ok bool, err error) {
	return h.s.tokens.TokenExpiry(ctx, hash)
}

// Tokens lists every token entry (read-only copies).
func (h *Host) Tokens(ctx context.Context) ([]*token.Entry, error) { return h.s.tokens.All(ctx) }

// --- registration (during Provision) ---

// SetAuthorizer replaces the authorizer (default: root token only).
func (h *Host) SetAuthorizer(a core.Authorizer) { h.s.authz = a }

// SetAuditor replaces the auditor (default: records nothing).
func (h *Host) SetAuditor(a core.Auditor) { h.s.auditor = a }

// SetForwardAuditor sets what records, on a standby, the requests it
// forwards to the active node (default: nothing).
func (h *Host) SetForwardAuditor(a core.ForwardAuditor) { h.s.forwardAuditor = a }

// AddPostHook adds a hook run after successful handlers (e.g. lease
// registration).
func (h *Host) AddPostHook(f core.PostHook) { h.s.postHooks = append(h.s.postHooks, f) }

// AddSysPart adds routes to the sys/ mount.
func (h *Host) AddSysPart(p framework.Part) { h.s.parts = append(h.s.parts, p) }

// AddHealth adds a contributor to sys/health.
func (h *Host) AddHealth(f func(ctx context.Context, hi *core.HealthInfo)) {
	h.s.health = append(h.s.health, f)
}

// AddResponseHeaders adds a function that sets headers on every HTTP
// response (e.g. the audit health header). It runs on every request.
func (h *Host) AddResponseHeaders(f func(http.Header)) { h.s.headerFuncs = append(h.s.headerFuncs, f) }

// AddPrefixMover registers a function re-keying what it keeps under a
// mount path when sys/remount moves the mount (the lease manager's leases).
func (h *Host) AddPrefixMover(f func(ctx context.Context, from, to string) error) {
	h.s.movers = append(h.s.movers, f)
}

// AddPrefixRevoker registers a function revoking leases under a path
// prefix (used when a mount is disabled).
func (h *Host) AddPrefixRevoker(f func(ctx context.Context, prefix string) error) {
	h.s.revokers = append(h.s.revokers, f)
}

// OnTokenRevoke sets the function told of revoked tokens (by hash), so
// that their leases are revoked too.
func (h *Host) OnTokenRevoke(f func(ctx context.Context, hashes []string) error) {
	h.s.tokens.SetOnRevoke(f)
}

// AddApplyHook registers a function called (on raft's goroutine: it must
// not block or write) with the storage keys changed by each applied batch on
// this node, or nil after a snapshot restore. Caches use it to stay
// coherent across cluster nodes.
func (h *Host) AddApplyHook(f func(keys []string)) {
	h.s.applyMu.Lock()
	h.s.applyHooks = append(h.s.applyHooks, f)
	h.s.applyMu.Unlock()
}
