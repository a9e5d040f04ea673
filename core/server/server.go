// Package server assembles a Vigil node: raft storage, the barrier and its
// Shamir seal, the router with the sys/ and auth/token/ mounts, the token
// store, authorization, audit, leases, the Dispatcher and the HTTP listener.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/httpapi"
	"github.com/vigilsec/vigil/core/identity"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/system"
	"github.com/vigilsec/vigil/core/token"
)

// Version is the server version reported by sys/health and sys/seal-status.
var Version = "0.1.0"

// Options configure a Server.
type Options struct {
	Config *config.Config
	// Engines and AuthMethods are the mountable types (cmd/vigil lists them).
	Engines     map[string]router.Factory
	AuthMethods map[string]router.Factory
	// Dev mode: initialise, unseal and mount secret/ automatically.
	Dev            bool
	DevRootTokenID string
	Logger         *slog.Logger
	Now            func() time.Time
	// Subsystems plug in audit, authorization, leases and more (see Subsystem).
	Subsystems []Subsystem
	// UI, when set, is served under /ui/ (config "ui = true").
	UI http.Handler
}

// Subsystem is a pluggable part of the server (audit broker, authorization,
// lease manager). Attach is called once the core pieces exist; Unsealed and
// Sealing bracket each unsealed period.
type Subsystem interface {
	Name() string
	Attach(s *Server) error
	Unsealed(ctx context.Context) error
	Sealing(ctx context.Context)
}

// Server is one Vigil node.
type Server struct {
	opts    Options
	cfg     *config.Config
	log     *slog.Logger
	now     func() time.Time
	raft    *raftstore.Store
	barrier *barrier.Barrier
	seal    *seal.Seal
	router  *router.Router
	tokens  *token.Store
	ident   *identity.Store
	sys     *system.Backend

	dispatcher  *core.Dispatcher
	authz       core.Authorizer
	auditor     core.Auditor
	postHooks   []core.PostHook
	parts       []system.Part
	health      []func(ctx context.Context, hi *system.HealthInfo)
	revokers    []func(ctx context.Context, prefix string) error
	metrics     *prometheus.Registry
	applyMu     sync.RWMutex
	applyHooks  []func(keys []string)
	headerFuncs []func(h http.Header)

	stateMu     sync.Mutex // serialises seal/unseal transitions
	unsealed    bool
	activeSince time.Time

	httpSrv   *http.Server
	listener  net.Listener
	handler   http.Handler
	stopBG    context.CancelFunc
	bgDone    sync.WaitGroup
	closeOnce sync.Once
}

// New builds a server from options; it opens storage but does not listen.
func New(opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("server: config is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg := opts.Config
	if cfg.Storage == nil {
		return nil, errors.New("server: a storage \"raft\" block is required")
	}
	if cfg.Storage.Path == "" {
		return nil, errors.New("server: storage \"raft\": path is required")
	}
	if cfg.Storage.NodeID == "" {
		cfg.Storage.NodeID = "node1"
	}
	if cfg.DefaultLeaseTTL == 0 {
		cfg.DefaultLeaseTTL = 768 * time.Hour
	}
	if cfg.MaxLeaseTTL == 0 {
		cfg.MaxLeaseTTL = 768 * time.Hour
	}
	s := &Server{opts: opts, cfg: cfg, log: opts.Logger, now: opts.Now, metrics: newRegistry()}
	if err := os.MkdirAll(cfg.Storage.Path, 0o700); err != nil {
		return nil, fmt.Errorf("server: storage path: %w", err)
	}
	bind, advertise := "127.0.0.1:0", ""
	if cfg.ClusterAddr != "" {
		bind = hostPort(cfg.ClusterAddr)
	}
	// As in Vault, a listener's cluster_address is where cluster traffic is
	// accepted and cluster_addr is the address other nodes dial.
	for _, l := range cfg.Listeners {
		if l.ClusterAddress != "" {
			bind = l.ClusterAddress
			if cfg.ClusterAddr != "" {
				advertise = hostPort(cfg.ClusterAddr)
			}
			break
		}
	}
	if v, ok := cfg.Storage.Options["raft_bind_addr"]; ok {
		bind, advertise = v.Value, ""
	}
	rcfg := raftstore.Config{
		Dir: cfg.Storage.Path, NodeID: cfg.Storage.NodeID, BindAddr: bind, AdvertiseAddr: advertise, Bootstrap: true,
		Logger: opts.Logger.With("component", "raft"), OnApply: s.onApply,
		TrailingLogs: cfg.Storage.TrailingLogs, SnapshotThreshold: cfg.Storage.SnapshotThreshold,
		SnapshotInterval: cfg.Storage.SnapshotInterval, MaxEntrySize: cfg.Storage.MaxEntrySize,
	}
	if m := cfg.Storage.PerformanceMultiplier; m > 0 {
		// Vault's scaling: raft's base timings times the multiplier.
		rcfg.HeartbeatTimeout = time.Duration(m) * time.Second
		rcfg.ElectionTimeout = time.Duration(m) * time.Second
		rcfg.LeaderLeaseTimeout = time.Duration(m) * 500 * time.Millisecond
	}
	rs, err := raftstore.Open(rcfg)
	if err != nil {
		return nil, fmt.Errorf("server: open raft storage: %w", err)
	}
	s.raft = rs
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rs.WaitLeader(ctx); err != nil {
		_ = rs.Close()
		return nil, fmt.Errorf("server: raft: no leader: %w", err)
	}
	s.barrier = barrier.New(rs, barrier.WithNow(opts.Now))
	rs.SetSnapshotSealer(snapshotSealer{s})
	s.seal = seal.New(rs, s.barrier, seal.WithNow(opts.Now))
	s.router = router.New(router.Config{
		Storage: s.barrier, Factories: opts.Engines, AuthFactories: opts.AuthMethods,
		DefaultLeaseTTL: cfg.DefaultLeaseTTL, MaxLeaseTTL: cfg.MaxLeaseTTL, Now: opts.Now,
		Logger: opts.Logger,
	})
	s.tokens = token.NewStore(s.barrier, token.Config{DefaultTTL: cfg.TokenDefaultTTL, MaxTTL: cfg.TokenMaxTTL, Now: opts.Now, Logger: opts.Logger})
	s.ident = identity.New(identity.Config{Storage: s.barrier, Mounts: s.router, Now: opts.Now, Logger: opts.Logger.With("component", "identity")})
	s.applyHooks = append(s.applyHooks, s.ident.Invalidate)
	s.authz = rootOnly{}
	s.auditor = noAudit{}
	s.postHooks = []core.PostHook{s.issueLoginToken}
	s.parts = []system.Part{metricsPart{s}}
	for _, sub := range opts.Subsystems {
		if err := sub.Attach(s); err != nil {
			_ = rs.Close()
			return nil, fmt.Errorf("server: attach %s: %w", sub.Name(), err)
		}
	}
	s.sys = system.New(system.Deps{Core: s, Router: s.router, Snapshots: snapshotter{s}, Version: Version, Now: opts.Now, Parts: s.parts})
	bg := context.Background()
	if err := s.router.MountStatic(bg, &router.MountEntry{Path: "sys/", Type: "system", Class: "secret", Description: "system endpoints used for control, policy and debugging"}, s.sys, "sys/"); err != nil {
		return nil, err
	}
	if err := s.router.MountStatic(bg, &router.MountEntry{Path: "auth/token/", Type: "token", Class: "auth", Description: "token based credentials"}, token.NewBackend(s.tokens), "sys/token-backend/"); err != nil {
		return nil, err
	}
	if err := s.router.MountStatic(bg, &router.MountEntry{Path: "identity/", Type: "identity", Class: "secret", Description: "identity store"}, identity.NewBackend(s.ident), "sys/identity-backend/"); err != nil {
		return nil, err
	}
	d, err := core.NewDispatcher(core.DispatcherConfig{
		Resolver: resolver{s}, Authenticator: authenticator{s}, Authorizer: authorizerFunc(s.authorize), Auditor: auditorProxy{s},
		Seal: s.barrier, PostHooks: s.postHooks, Now: opts.Now, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.dispatcher = d
	maxReq := int64(0)
	if len(cfg.Listeners) > 0 {
		maxReq = cfg.Listeners[0].MaxRequestSize
	}
	s.handler = httpapi.New(d, httpapi.Options{MaxRequestSize: maxReq, Now: opts.Now, Logger: opts.Logger, ResponseHeaders: s.responseHeaders, UI: opts.UI})
	return s, nil
}

func hostPort(addr string) string {
	if u, err := parseURLHost(addr); err == nil {
		return u
	}
	return addr
}

// Dispatcher returns the request dispatcher (the one way in).
func (s *Server) Dispatcher() *core.Dispatcher { return s.dispatcher }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Router, Tokens, Barrier, Raft, Config and Logger give subsystems access to
// the core pieces at Attach time.
func (s *Server) Router() *router.Router    { return s.router }
func (s *Server) Tokens() *token.Store      { return s.tokens }
func (s *Server) Identity() *identity.Store { return s.ident }
func (s *Server) Barrier() *barrier.Barrier { return s.barrier }
func (s *Server) Raft() *raftstore.Store    { return s.raft }
func (s *Server) SealManager() *seal.Seal   { return s.seal }
func (s *Server) Config() *config.Config    { return s.cfg }
func (s *Server) Logger() *slog.Logger      { return s.log }
func (s *Server) Now() time.Time            { return s.now() }
func (s *Server) NodeID() string            { return s.cfg.Storage.NodeID }
func (s *Server) DataDir() string           { return s.cfg.Storage.Path }
func (s *Server) Dev() bool                 { return s.opts.Dev }

// AddApplyHook registers a function called (on raft's goroutine: it must not
// block or write) with the storage keys changed by each applied batch on this
// node, or nil after a snapshot restore. Caches use it to stay coherent
// across cluster nodes.
func (s *Server) AddApplyHook(f func(keys []string)) {
	s.applyMu.Lock()
	s.applyHooks = append(s.applyHooks, f)
	s.applyMu.Unlock()
}

func (s *Server) onApply(keys []string) {
	s.applyMu.RLock()
	hooks := s.applyHooks
	s.applyMu.RUnlock()
	for _, h := range hooks {
		h(keys)
	}
}

// SetAuthorizer replaces the authorizer (default: root token only).
func (s *Server) SetAuthorizer(a core.Authorizer) { s.authz = a }

// SetAuditor replaces the auditor (default: records nothing).
func (s *Server) SetAuditor(a core.Auditor) { s.auditor = a }

// AddPostHook adds a hook run after successful handlers (e.g. lease registration).
func (s *Server) AddPostHook(h core.PostHook) { s.postHooks = append(s.postHooks, h) }

// AddSysPart adds routes to the sys/ mount (only during Attach).
func (s *Server) AddSysPart(p system.Part) { s.parts = append(s.parts, p) }

// AddHealth adds a contributor to sys/health.
func (s *Server) AddHealth(f func(ctx context.Context, hi *system.HealthInfo)) {
	s.health = append(s.health, f)
}

// AddPrefixRevoker registers a function revoking leases under a path prefix.
func (s *Server) AddPrefixRevoker(f func(ctx context.Context, prefix string) error) {
	s.revokers = append(s.revokers, f)
}

func (s *Server) authorize(ctx context.Context, req *core.Request) (*core.Decision, error) {
	return s.authz.Authorize(ctx, req)
}

type authorizerFunc func(ctx context.Context, req *core.Request) (*core.Decision, error)

func (f authorizerFunc) Authorize(ctx context.Context, req *core.Request) (*core.Decision, error) {
	return f(ctx, req)
}

type auditorProxy struct{ s *Server }

func (a auditorProxy) LogRequest(ctx context.Context, ev *core.AuditEvent) error {
	return a.s.auditor.LogRequest(ctx, ev)
}
func (a auditorProxy) LogResponse(ctx context.Context, ev *core.AuditEvent) error {
	return a.s.auditor.LogResponse(ctx, ev)
}

func (s *Server) responseHeaders(h http.Header) {
	for _, f := range s.headerFuncs {
		f(h)
	}
}

// Listen starts serving HTTP on the configured listener (or addr when set).
func (s *Server) Listen(addr string) error {
	var l Listener
	if len(s.cfg.Listeners) > 0 {
		l = Listener(s.cfg.Listeners[0])
	} else {
		l = Listener{Address: "127.0.0.1:8200", TLSDisable: true}
	}
	if addr != "" {
		l.Address = addr
	}
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", l.Address, err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	if !l.TLSDisable {
		tc, err := config.Listener(l).TLSConfig()
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("server: tls: %w", err)
		}
		srv.TLSConfig = tc
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.httpSrv, s.listener = srv, ln
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

// Listener mirrors config.Listener.
type Listener config.Listener

// Addr returns the address the server listens on ("" before Listen).
func (s *Server) Addr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Close stops HTTP, seals (closing engines and subsystems) and closes storage.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		if s.httpSrv != nil {
			_ = s.httpSrv.Shutdown(ctx)
		}
		s.stateMu.Lock()
		if s.unsealed {
			s.sealingLocked(ctx)
		}
		s.stateMu.Unlock()
		err = s.raft.Close()
	})
	return err
}

// DevDataDir is the default dev-mode data folder, under the working directory.
func DevDataDir() string {
	wd, err := os.Getwd()
	if err != nil {
		wd = "."
	}
	return filepath.Join(wd, "vigil-dev-data")
}

// Reloader is implemented by subsystems that reopen files on SIGHUP.
type Reloader interface{ Reload() }

// Reload handles SIGHUP: subsystems reopen their files.
func (s *Server) Reload() {
	for _, sub := range s.opts.Subsystems {
		if r, ok := sub.(Reloader); ok {
			r.Reload()
		}
	}
}
