// Package servertest starts real, in-process Vigil servers on random
// loopback ports for integration tests, and hands back a configured
// github.com/hashicorp/vault/api client.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
)

// Builder turns a config into server options (the binary's wiring).
type Builder func(cfg *config.Config) (server.Options, error)

// Options tune a test server.
type Options struct {
	// Dir is the data folder; a fresh t.TempDir() when empty.
	Dir string
	// Dev bootstraps like `vigil server -dev` (1 key share, secret/ KV v2).
	// Otherwise the server is initialised through the API with Shares and
	// Threshold (default 1/1) and unsealed, unless NoInit is set.
	Dev            bool
	Shares, Thresh int
	NoInit         bool
	RootTokenID    string
	// Configure edits the config before the server is built.
	Configure func(cfg *config.Config)
	// Now overrides the clock.
	Now func() time.Time
	// Logger; quiet by default (set VIGIL_TEST_LOG=1 for output).
	Logger *slog.Logger
	// ClientTLS, when set, makes URL https and configures every client
	// with it (trust for the server's certificate, optionally a client
	// certificate). The listener must serve TLS: set its files in
	// Configure.
	ClientTLS *vaultapi.TLSConfig
}

// Server is a running test server.
type Server struct {
	*server.Server
	tb        testing.TB
	build     Builder
	opts      Options
	Dir       string
	URL       string
	RootToken string
	Keys      []string // hex unseal key shares
	Client    *vaultapi.Client
}

// MustStart starts a server and registers its shutdown with tb.Cleanup.
func MustStart(tb testing.TB, build Builder, opts Options) *Server {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	s := &Server{tb: tb, build: build, opts: opts, Dir: opts.Dir}
	s.start()
	tb.Cleanup(func() { s.Stop() })
	ctx := context.Background()
	switch {
	case opts.Dev:
		info, err := s.DevBootstrap(ctx, opts.RootTokenID)
		if err != nil {
			tb.Fatalf("servertest: dev bootstrap: %v", err)
		}
		s.RootToken = info.RootToken
	case !opts.NoInit:
		shares, thresh := opts.Shares, opts.Thresh
		if shares == 0 {
			shares, thresh = 1, 1
		}
		res, err := s.Client.Sys().Init(&vaultapi.InitRequest{SecretShares: shares, SecretThreshold: thresh})
		if err != nil {
			tb.Fatalf("servertest: init: %v", err)
		}
		s.Keys, s.RootToken = res.Keys, res.RootToken
		s.MustUnseal()
	}
	s.Client.SetToken(s.RootToken)
	return s
}

func (s *Server) start() {
	tb := s.tb
	tb.Helper()
	cfg := &config.Config{
		Storage:   &config.Storage{Type: "raft", Path: filepath.Join(s.Dir, "storage"), NodeID: "test-node"},
		Listeners: []config.Listener{{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true}},
		LogLevel:  "info",
	}
	if s.opts.Configure != nil {
		s.opts.Configure(cfg)
	}
	o, err := s.build(cfg)
	if err != nil {
		tb.Fatalf("servertest: build options: %v", err)
	}
	o.Dev = s.opts.Dev
	o.Now = s.opts.Now
	o.Logger = s.opts.Logger
	if o.Logger == nil {
		if os.Getenv("VIGIL_TEST_LOG") != "" {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
	}
	srv, err := server.New(o)
	if err != nil {
		tb.Fatalf("servertest: new server: %v", err)
	}
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		_ = srv.Close(context.Background())
		tb.Fatalf("servertest: listen: %v", err)
	}
	s.Server = srv
	s.URL = "http://" + srv.Addr()
	if s.opts.ClientTLS != nil {
		s.URL = "https://" + srv.Addr()
	}
	s.Client = s.NewClient(s.RootToken)
}

// NewClient returns a vault/api client for this server with token.
func (s *Server) NewClient(token string) *vaultapi.Client {
	return s.NewClientTLS(token, s.opts.ClientTLS)
}

// NewClientTLS returns a client with its own TLS settings (for example a
// client certificate); nil tls means plain HTTP.
func (s *Server) NewClientTLS(token string, tls *vaultapi.TLSConfig) *vaultapi.Client {
	conf := &vaultapi.Config{Address: s.URL, MaxRetries: 0, Timeout: 60 * time.Second}
	if tls != nil {
		conf = vaultapi.DefaultConfig()
		conf.Address, conf.MaxRetries, conf.Timeout = s.URL, 0, 60*time.Second
		if err := conf.ConfigureTLS(tls); err != nil {
			s.tb.Fatalf("servertest: client TLS: %v", err)
		}
	}
	c, err := vaultapi.NewClient(conf)
	if err != nil {
		s.tb.Fatalf("servertest: client: %v", err)
	}
	c.SetToken(token)
	return c
}

// MustUnseal unseals with the recorded key shares.
func (s *Server) MustUnseal() {
	s.tb.Helper()
	for _, k := range s.Keys {
		st, err := s.Client.Sys().Unseal(k)
		if err != nil {
			s.tb.Fatalf("servertest: unseal: %v", err)
		}
		if !st.Sealed {
			return
		}
	}
	s.tb.Fatalf("servertest: still sealed after all keys")
}

// Stop shuts the server down (idempotent).
func (s *Server) Stop() {
	if s.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.Server.Close(ctx)
	s.Server = nil
}

// Restart stops the server and starts a new one on the same data folder
// (new port), unsealing it again unless it is a NoInit server.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
	s.Client.SetToken(s.RootToken)
	if s.opts.Dev {
		if _, err := s.DevBootstrap(context.Background(), s.opts.RootTokenID); err != nil {
			s.tb.Fatalf("servertest: dev restart: %v", err)
		}
		return
	}
	if len(s.Keys) > 0 {
		s.MustUnseal()
	}
}
