package authz

import (
	"context"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/token"
)

// Subsystem plugs the authorizer into a server: it becomes the server's
// Authorizer, contributes the sys/ policy routes, loads the policies when the
// server unseals and drops them (and every cached decision) when it seals.
type Subsystem struct {
	// A is the authorizer, set by Attach.
	A *Authz

	cfg  Config
	poll time.Duration

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

var _ server.Subsystem = (*Subsystem)(nil)

// Option configures the subsystem.
type Option func(*Subsystem)

// WithEvalTimeout bounds one policy evaluation (default 500 ms).
func WithEvalTimeout(d time.Duration) Option { return func(s *Subsystem) { s.cfg.EvalTimeout = d } }

// WithCacheSize sets the decision cache size (default 100,000; negative disables).
func WithCacheSize(n int) Option { return func(s *Subsystem) { s.cfg.CacheSize = n } }

// WithHeaders adds request headers to input.request.headers besides X-Vigil-*.
func WithHeaders(names ...string) Option {
	return func(s *Subsystem) { s.cfg.Headers = append(s.cfg.Headers, names...) }
}

// WithPollInterval sets how often the stored policy revision is checked for
// changes made on other nodes (default 1 s; 0 disables polling, leaving
// Invalidate as the only cross-node signal).
func WithPollInterval(d time.Duration) Option { return func(s *Subsystem) { s.poll = d } }

// NewSubsystem returns the authorization subsystem.
func NewSubsystem(opts ...Option) *Subsystem {
	s := &Subsystem{poll: time.Second}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Name implements server.Subsystem.
func (s *Subsystem) Name() string { return "authz" }

// Attach creates the authorizer over the barrier and wires it in.
func (s *Subsystem) Attach(srv *server.Server) error {
	cfg := s.cfg
	cfg.Storage = srv.Barrier()
	cfg.Now = srv.Now
	cfg.Logger = srv.Logger().With("component", "authz")
	s.A = New(cfg)
	srv.SetAuthorizer(s.A)
	srv.AddApplyHook(s.OnApply)
	srv.AddSysPart(NewAPI(s.A, tokenSource{srv.Tokens(), srv.Identity()}, routerPaths{srv.Router()}))
	return nil
}

// Unsealed loads the policies and starts the revision poller.
func (s *Subsystem) Unsealed(ctx context.Context) error {
	if err := s.A.Load(ctx); err != nil {
		return err
	}
	if s.poll <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.pollLoop(pctx, s.done)
	return nil
}

func (s *Subsystem) pollLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.A.CheckRevision(ctx); err != nil && ctx.Err() == nil {
				s.A.cfg.Logger.Warn("policy revision check failed", "error", err)
			}
		}
	}
}

// Sealing stops the poller and drops the policies and cached decisions.
func (s *Subsystem) Sealing(context.Context) {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.A.Clear()
}

// Invalidate is the hook for storage change notifications (raft's apply
// callback on every node): keys under sys/policy/ make the authorizer reload.
func (s *Subsystem) Invalidate(key string) {
	if s.A != nil {
		s.A.Invalidate(key)
	}
}

// OnApply has the signature of raftstore.Config.OnApply: connect it so that
// every node reloads its policies as soon as a policy write is applied.
func (s *Subsystem) OnApply(keys []string) {
	if s.A != nil {
		s.A.InvalidateKeys(keys)
	}
}

// tokenSource adapts the token and identity stores to PrincipalSource:
// the principal is what the dispatcher would see (identity policies and
// input.identity included).
type tokenSource struct {
	s  *token.Store
	id IdentityResolver
}

// IdentityResolver attaches a token's entity to a principal;
// *identity.Store implements it.
type IdentityResolver interface {
	Resolve(p *core.Principal) error
}

func (t tokenSource) PrincipalByToken(ctx context.Context, raw string) (*core.Principal, error) {
	e, err := t.s.Lookup(ctx, raw)
	if err != nil || e == nil {
		return nil, err
	}
	return t.resolve(t.s.Principal(raw, e))
}

func (t tokenSource) PrincipalByAccessor(ctx context.Context, acc string) (*core.Principal, error) {
	e, err := t.s.LookupAccessor(ctx, acc)
	if err != nil || e == nil {
		return nil, err
	}
	return t.resolve(t.s.Principal("", e))
}

func (t tokenSource) resolve(p *core.Principal) (*core.Principal, error) {
	if t.id == nil {
		return p, nil
	}
	if err := t.id.Resolve(p); err != nil {
		return nil, err
	}
	return p, nil
}

// routerPaths adapts the router to PathResolver.
type routerPaths struct{ r *router.Router }

func (r routerPaths) ResolvePath(path string) (*core.MountInfo, bool, error) {
	res, err := r.r.Resolve(path)
	if err != nil {
		return nil, false, err
	}
	m := res.Mount
	return &m, res.Route != nil && res.Route.Sudo, nil
}
