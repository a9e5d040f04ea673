package authz

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Host is what the authorization subsystem uses of the server: storage
// for the policies, the token and path lookups sys/capabilities needs, and
// the registration of the authorizer, its routes and its cache hook.
type Host interface {
	Storage() storage.Storage
	Now() time.Time
	Logger() *slog.Logger
	PrincipalSource
	PathResolver
	SetAuthorizer(core.Authorizer)
	AddApplyHook(f func(keys []string))
	AddSysPart(framework.Part)
	// OnNamespace registers what to do when a namespace is created (store
	// its default policy) and deleted (delete its policies).
	OnNamespace(created, deleting func(ctx context.Context, ns core.Namespace) error)
}

// Subsystem plugs the authorizer into a server: it becomes the server's
// Authorizer, contributes the sys/ policy routes, loads the policies when the
// server unseals and drops them (and every cached decision) when it seals.
type Subsystem struct {
	// A is the authorizer, set by Provision.
	A *Authz

	cfg  Config
	poll time.Duration

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

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

// Name names the subsystem in logs and errors.
func (s *Subsystem) Name() string { return "authz" }

// Provision creates the authorizer over the server's storage and wires it
// in.
func (s *Subsystem) Provision(h Host) error {
	cfg := s.cfg
	cfg.Storage = h.Storage()
	cfg.Now = h.Now
	cfg.Logger = h.Logger().With("component", "authz")
	s.A = New(cfg)
	h.SetAuthorizer(s.A)
	h.AddApplyHook(s.OnApply)
	h.AddSysPart(NewAPI(s.A, h, h))
	h.OnNamespace(s.A.CreateNamespace, s.A.DeleteNamespace)
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
