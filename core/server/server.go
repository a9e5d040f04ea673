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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/httpapi"
	"github.com/vigilsec/vigil/core/identity"
	"github.com/vigilsec/vigil/core/namespace"
	"github.com/vigilsec/vigil/core/raftstore"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/system"
	"github.com/vigilsec/vigil/core/token"
	"github.com/vigilsec/vigil/core/wrapping"
)

// Version is the server version reported by sys/health and sys/seal-status.
var Version = "0.1.0"

// Options configure a Server.
type Options struct {
	Config *config.Config
	// Engines and AuthMethods are the mountable types (cmd/vigil lists them).
	Engines     map[string]framework.Factory
	AuthMethods map[string]framework.Factory
	// Dev mode: initialise, unseal and mount secret/ automatically.
	Dev            bool
	DevRootTokenID string
	Logger         *slog.Logger
	Now            func() time.Time
	// Subsystems plug in audit, authorization, leases and more (see Plug),
	// in start order.
	Subsystems []Plug
	// UI, when set, is served under /ui/ (config "ui = true").
	UI http.Handler
	// JobInterval is how often the scheduled jobs run (default 1m).
	JobInterval time.Duration
	// TeardownTimeout bounds each step of sealing after the keys are gone
	// (stopping jobs, each subsystem, the engines) and of shutdown
	// (default 15s).
	TeardownTimeout time.Duration
	// MaxRequestDuration bounds each request (default: the configuration's
	// default_max_request_duration, else 90s; see core.DispatcherConfig).
	MaxRequestDuration time.Duration
	// Seals are the auto-unseal seal types config `seal "type"` blocks may
	// name (cmd/vigil lists them); Shamir needs no entry.
	Seals map[string]seal.Factory
}

// Server is one Vigil node.
type Server struct {
	opts    Options
	cfg     *config.Config
	log     *slog.Logger
	now     func() time.Time
	raft    *raftstore.Store
	barrier *barrier.Barrier
	seal    *seal.Manager
	seals   []seal.Seal // built from the config's seal blocks
	ops     sealOps
	router  *router.Router
	tokens  *token.Store
	ident   *identity.Store
	nss     *namespace.Store
	// cubby is the cubbyhole engine, wrapping the response-wrapping and
	// control-group service (see wrapping.go).
	cubby    *cubbyhole.Backend
	wrapping *wrapping.Service
	sys      *system.Backend
	// nsCreated and nsDeleting are the subsystems' namespace hooks.
	nsCreated, nsDeleting []func(ctx context.Context, ns core.Namespace) error

	dispatcher  *core.Dispatcher
	authz       core.Authorizer
	auditor     core.Auditor
	postHooks   []core.PostHook
	parts       []framework.Part
	health      []func(ctx context.Context, hi *core.HealthInfo)
	revokers    []func(ctx context.Context, prefix string) error
	movers      []func(ctx context.Context, from, to string) error
	metrics     *prometheus.Registry
	applyMu     sync.RWMutex
	applyHooks  []func(keys []string)
	headerFuncs []func(h http.Header)

	join joinState // join.go

	// High availability (ha.go, forward.go).
	active         atomic.Bool // this node is the active node
	unsealedFlag   atomic.Bool // unsealed (readable without stateMu)
	haStop         func()
	haDone         chan struct{}
	forwardAuditor core.ForwardAuditor
	apiHandler     http.Handler // the API itself; handler adds forwarding
	retryStop      context.CancelFunc
	retryDone      chan struct{}
	sealOpts       []seal.Option // the configured seal, for a join's scratch seal

	stateMu      sync.Mutex // serialises seal/unseal transitions
	unsealed     bool
	autoUnsealed bool // the server has been unsealed once: auto-unseal stops
	activeSince  atomic.Pointer[time.Time]
	stopAuto     context.CancelFunc
	autoDone     sync.WaitGroup

	httpSrvs       []*http.Server
	listeners      []net.Listener
	handler        http.Handler
	maxRequestSize int64
	stopBG         context.CancelFunc
	bgDone         sync.WaitGroup // helper goroutines (join, publishing)
	jobsDone       sync.WaitGroup // the scheduled jobs (background)
	closeOnce      sync.Once
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
	if opts.JobInterval <= 0 {
		opts.JobInterval = time.Minute
	}
	if opts.TeardownTimeout <= 0 {
		opts.TeardownTimeout = 15 * time.Second
	}
	cfg := opts.Config
	if opts.MaxRequestDuration <= 0 {
		opts.MaxRequestDuration = cfg.DefaultMaxRequestDuration
	}
	if cfg.Storage == nil {
		return nil, errors.New("server: a storage \"raft\" block is required")
	}
	if cfg.Storage.Path == "" {
		return nil, errors.New("server: storage \"raft\": path is required")
	}
	clusterDefaults(cfg)
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
		Dir: cfg.Storage.Path, NodeID: cfg.Storage.NodeID, BindAddr: bind, AdvertiseAddr: advertise,
		Logger: opts.Logger.With("component", "raft"), OnApply: s.onApply, OnRemoved: s.onAutopilotRemoved,
		TrailingLogs: cfg.Storage.TrailingLogs, SnapshotThreshold: cfg.Storage.SnapshotThreshold,
		SnapshotInterval: cfg.Storage.SnapshotInterval, MaxEntrySize: cfg.Storage.MaxEntrySize,
	}
	if m := cfg.Storage.PerformanceMultiplier; m > 0 {
		// Vault's scaling: raft's base timings times the multiplier.
		rcfg.HeartbeatTimeout = time.Duration(m) * time.Second
		rcfg.ElectionTimeout = time.Duration(m) * time.Second
		rcfg.LeaderLeaseTimeout = time.Duration(m) * 500 * time.Millisecond
	}
	if err := raftTuning(cfg, &rcfg); err != nil {
		return nil, err
	}
	rs, err := raftstore.Open(rcfg)
	if err != nil {
		return nil, fmt.Errorf("server: open raft storage: %w", err)
	}
	s.raft = rs
	// A node that is the only voter of its cluster leads on its own: wait
	// for it, so that it serves as soon as it is unsealed. A member of a
	// larger cluster may have to wait for the others, which may all be
	// sealed (a sealed node has no cluster network): it starts without a
	// leader and finds one once enough nodes are unsealed. A node without
	// raft state bootstraps at initialisation or joins a cluster.
	if rs.SoleVoter() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rs.WaitLeader(ctx); err != nil {
			_ = rs.Close()
			return nil, fmt.Errorf("server: raft: no leader: %w", err)
		}
	}
	s.applyHooks = append(s.applyHooks, s.onReplicatedKeys)
	rs.HandleRPC(rpcForward+"/", http.HandlerFunc(s.serveForwarded))
	s.barrier = barrier.New(rs, barrier.WithNow(opts.Now))
	rs.SetSnapshotSealer(snapshotSealer{s})
	sealOpts, seals, err := buildSeals(context.Background(), cfg.Seals, opts.Seals)
	if err != nil {
		_ = rs.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	s.seals = seals
	s.sealOpts = sealOpts
	s.seal = seal.New(rs, s.barrier, append(sealOpts, seal.WithNow(opts.Now))...)
	s.router = router.New(router.Config{
		Storage: s.barrier, Factories: opts.Engines, AuthFactories: opts.AuthMethods,
		DefaultLeaseTTL: cfg.DefaultLeaseTTL, MaxLeaseTTL: cfg.MaxLeaseTTL, Now: opts.Now,
		Logger: opts.Logger,
	})
	s.tokens = token.NewStore(s.barrier, token.Config{DefaultTTL: cfg.TokenDefaultTTL, MaxTTL: cfg.TokenMaxTTL, Now: opts.Now, Logger: opts.Logger})
	s.ident = identity.New(identity.Config{Storage: s.barrier, Mounts: s.router, Now: opts.Now, Logger: opts.Logger.With("component", "identity")})
	s.nss = namespace.New(s.barrier, opts.Now, opts.Logger.With("component", "namespaces"))
	s.router.SetNamespaceConflict(s.nss.MountConflict)
	s.tokens.SetNamespaces(s.nss.Namespace)
	s.applyHooks = append(s.applyHooks, s.ident.Invalidate, s.nss.Invalidate)
	s.authz = rootOnly{}
	s.auditor = noAudit{}
	s.forwardAuditor = noAudit{}
	s.postHooks = []core.PostHook{s.issueLoginToken}
	s.parts = []framework.Part{metricsPart{s}, sealPart{s}, namespace.NewRoutes(s.nss, nsHost{s})}
	s.initWrapping()
	host := &Host{s}
	for i, sub := range opts.Subsystems {
		if sub.Subsystem == nil || sub.Provision == nil {
			s.closeSubsystems(context.Background(), opts.Subsystems[:i])
			_ = rs.Close()
			return nil, errors.New("server: a subsystem plug needs a subsystem and its Provision")
		}
		if err := sub.Provision(host); err != nil {
			s.closeSubsystems(context.Background(), opts.Subsystems[:i])
			_ = rs.Close()
			return nil, fmt.Errorf("server: provision %s: %w", sub.Name(), err)
		}
	}
	s.sys = system.New(system.Deps{Core: s, Access: mountAccess{s}, Router: s.router, Snapshots: snapshotter{s}, Version: Version, Now: opts.Now, Parts: s.parts,
		Namespace: s.namespaceOfPath,
		Cluster:   s,
		Records:   barrierStorage{s.barrier},
		SnapshotTest: func(ctx context.Context) core.SnapshotTestRecord {
			return runSnapshotTest(ctx, snapshotter{s}, s.raft, s.cfg.Storage.Path, s.now)
		}})
	(&Host{s}).AddApplyHook(func(keys []string) {
		if keys == nil || slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "sys/config/cors") }) {
			s.sys.InvalidateCORS()
		}
	})
	bg := context.Background()
	if err := s.router.MountStatic(bg, &router.MountEntry{Path: "sys/", Type: "system", Class: "secret", Description: "system endpoints used for control, policy and debugging",
		Config: core.MountConfig{AuditNonHMACResponseKeys: AuditClearKeys}}, s.sys, "sys/"); err != nil {
		return nil, err
	}
	tokenBackend := token.NewBackend(s.tokens)
	s.nsDeleting = append(s.nsDeleting, tokenBackend.DeleteNamespace) // its token roles
	if err := s.router.MountStatic(bg, &router.MountEntry{Path: "auth/token/", Type: "token", Class: "auth", Description: "token based credentials"}, tokenBackend, "sys/token-backend/"); err != nil {
		return nil, err
	}
	if err := s.router.MountStatic(bg, &router.MountEntry{Path: "identity/", Type: "identity", Class: "secret", Description: "identity store"}, identity.NewBackend(s.ident), "sys/identity-backend/"); err != nil {
		return nil, err
	}
	if err := s.mountCubbyhole(bg); err != nil {
		return nil, err
	}
	d, err := core.NewDispatcher(core.DispatcherConfig{
		Resolver: resolver{s}, Authenticator: authenticator{s}, Authorizer: authorizerFunc(s.authorize), Auditor: auditorProxy{s},
		Seal: s.barrier, PostHooks: s.postHooks, Now: opts.Now, Logger: opts.Logger, MaxRequestDuration: opts.MaxRequestDuration,
		Wrapper: s.wrapping, Approvals: s.wrapping,
	})
	if err != nil {
		return nil, err
	}
	s.dispatcher = d
	s.wrapping.SetDispatch(d.Handle)
	if len(cfg.Listeners) > 0 {
		s.maxRequestSize = cfg.Listeners[0].MaxRequestSize
	}
	s.apiHandler = s.newAPIHandler(s.maxRequestSize)
	s.handler = s.clusterHandler(s.apiHandler)
	s.startAutoUnseal()
	s.startRetryJoin()
	return s, nil
}

// newHandler is the HTTP handler of a listener with a request size limit
// (0: default): the API, forwarded to the active node from a standby.
func (s *Server) newHandler(maxRequestSize int64) http.Handler {
	return s.clusterHandler(s.newAPIHandler(maxRequestSize))
}

// newAPIHandler is the API itself.
func (s *Server) newAPIHandler(maxRequestSize int64) http.Handler {
	return httpapi.New(s.dispatcher, httpapi.Options{MaxRequestSize: maxRequestSize, Now: s.opts.Now, Logger: s.opts.Logger,
		ResponseHeaders: s.responseHeaders, UI: s.opts.UI, CORS: s.cors})
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

// Config, Logger, Now, NodeID, DataDir and Dev describe the server.
func (s *Server) Config() *config.Config { return s.cfg }
func (s *Server) Logger() *slog.Logger   { return s.log }
func (s *Server) Now() time.Time         { return s.now() }
func (s *Server) NodeID() string         { return s.cfg.Storage.NodeID }
func (s *Server) DataDir() string        { return s.cfg.Storage.Path }
func (s *Server) Dev() bool              { return s.opts.Dev }

// AutoSeal reports whether the server is configured with an auto seal (a
// seal block other than Shamir), which unseals it without key shares.
func (s *Server) AutoSeal() bool { return s.seal.Auto() }

func (s *Server) onApply(keys []string) {
	s.applyMu.RLock()
	hooks := s.applyHooks
	s.applyMu.RUnlock()
	for _, h := range hooks {
		h(keys)
	}
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

// cors gives the HTTP layer the sys/config/cors configuration.
func (s *Server) cors(ctx context.Context) httpapi.CORS {
	c := s.sys.CORS(ctx)
	return httpapi.CORS{Enabled: c.Enabled, AllowedOrigins: c.AllowedOrigins, AllowedHeaders: c.AllowedHeaders}
}

func (s *Server) responseHeaders(h http.Header) {
	for _, f := range s.headerFuncs {
		f(h)
	}
}

// Default limits of a listener (Vault's defaults for the timeouts). They
// bound what a client can hold: a connection that sends no complete header
// within DefaultReadHeaderTimeout (slowloris), no complete request within
// DefaultReadTimeout, or stays idle for DefaultIdleTimeout is closed.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultIdleTimeout       = 5 * time.Minute
	// MaxHeaderBytes caps the request line and headers (Vault clients send
	// a few hundred bytes; a larger header is refused with 431).
	MaxHeaderBytes = 64 << 10
)

// Listen serves HTTP on every configured listener block (the default
// 127.0.0.1:8200 without TLS when there is none). addr, when set, replaces
// the first listener's address (tests listen on 127.0.0.1:0). Each listener
// has its own TLS settings, request size limit and timeouts. If one cannot
// be opened, none is left open and the error names it.
func (s *Server) Listen(addr string) error {
	ls := make([]config.Listener, len(s.cfg.Listeners))
	copy(ls, s.cfg.Listeners)
	if len(ls) == 0 {
		ls = []config.Listener{{Type: "tcp", Address: "127.0.0.1:8200", TLSDisable: true}}
	}
	if addr != "" {
		ls[0].Address = addr
	}
	var opened []*http.Server
	var lns []net.Listener
	for i, l := range ls {
		srv, ln, err := s.listen(l, i == 0)
		if err != nil {
			for _, ln := range lns {
				_ = ln.Close()
			}
			return err
		}
		opened, lns = append(opened, srv), append(lns, ln)
	}
	s.httpSrvs, s.listeners = opened, lns
	for i, srv := range opened {
		go func() {
			if err := srv.Serve(lns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server stopped", "address", lns[i].Addr().String(), "error", err)
			}
		}()
	}
	return nil
}

// listen opens one listener. The first uses s.handler; the others get a
// handler of their own when their max_request_size differs.
func (s *Server) listen(l config.Listener, first bool) (*http.Server, net.Listener, error) {
	h := s.handler
	if !first && l.MaxRequestSize != s.maxRequestSize {
		h = s.newHandler(l.MaxRequestSize)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: timeoutOr(l.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       timeoutOr(l.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      timeoutOr(l.WriteTimeout, 0),
		IdleTimeout:       timeoutOr(l.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if srv.IdleTimeout == 0 {
		// Without a limit Go would fall back to ReadTimeout; "no limit"
		// must not silently become another limit, nor forever.
		srv.IdleTimeout = DefaultIdleTimeout
	}
	var tlsCfg *tls.Config
	if !l.TLSDisable {
		tc, err := l.TLSConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("server: listener %s: tls: %w", l.Address, err)
		}
		tlsCfg = tc
		srv.TLSConfig = tlsCfg
	}
	ln, err := net.Listen("tcp", l.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("server: listen %s: %w", l.Address, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return srv, ln, nil
}

// timeoutOr maps a configured timeout to http.Server's: 0 (unset) is def,
// negative ("0" in the file) is no limit.
func timeoutOr(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Listener mirrors config.Listener.
type Listener config.Listener

// Addr returns the address of the first listener ("" before Listen).
func (s *Server) Addr() string {
	if len(s.listeners) == 0 {
		return ""
	}
	return s.listeners[0].Addr().String()
}

// Addrs returns the address of every listener, in configuration order.
func (s *Server) Addrs() []string {
	out := make([]string, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr().String()
	}
	return out
}

// Close stops HTTP, seals and closes storage. Unlike sys/seal it is an
// orderly shutdown: with no request left in flight, subsystems and engines
// stop (saving what they keep in storage, such as stream cursors and the
// last checkpoint) before the keys are dropped. Each step is bounded.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.stopRetryJoin()
		for _, srv := range s.httpSrvs {
			_ = srv.Shutdown(ctx)
		}
		s.stopAutoUnseal()
		s.stateMu.Lock()
		if s.unsealed {
			s.teardownLocked(ctx)
			s.seal.Seal()
			s.dropClusterTLS()
			s.unsealed = false
			s.unsealedFlag.Store(false)
			s.activeSince.Store(nil)
			s.log.Info("sealed")
		}
		s.closeSubsystems(ctx, s.opts.Subsystems)
		s.stateMu.Unlock()
		err = s.raft.Close()
		for _, sl := range s.seals {
			if c, ok := sl.(interface{ Close() error }); ok {
				_ = c.Close()
			}
		}
	})
	return err
}

// closeSubsystems closes, in reverse order, the subsystems that are Closers.
func (s *Server) closeSubsystems(ctx context.Context, subs []Plug) {
	for i := len(subs) - 1; i >= 0; i-- {
		if c, ok := subs[i].Subsystem.(Closer); ok {
			s.bounded("close "+subs[i].Name(), func() {
				if err := c.Close(ctx); err != nil {
					s.log.Error("close subsystem", "subsystem", subs[i].Name(), "error", err)
				}
			})
		}
	}
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

// Closer is implemented by subsystems that hold resources while sealed (the
// audit devices record sealed-state rejections): Close releases them when
// the server shuts down. It must return in bounded time.
type Closer interface {
	Close(ctx context.Context) error
}

// Reload handles SIGHUP: subsystems reopen their files.
func (s *Server) Reload() {
	for _, sub := range s.opts.Subsystems {
		if r, ok := sub.Subsystem.(Reloader); ok {
			r.Reload()
		}
	}
}
