// Package servertest starts real, in-process Vigil servers on random
// loopback ports for integration tests, and hands back a configured
// github.com/hashicorp/vault/api client.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	// RecoveryShares and RecoveryThresh initialise a server whose config
	// has an auto seal (default 1/1); KeyHolders labels the held shares.
	RecoveryShares, RecoveryThresh int
	KeyHolders                     []string
	NoInit                         bool
	RootTokenID                    string
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
	// RecoveryKeys are the hex recovery key shares (auto seal).
	RecoveryKeys []string
	Client       *vaultapi.Client
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
		rs, rt := opts.RecoveryShares, opts.RecoveryThresh
		if rs == 0 {
			rs, rt = 1, 1
		}
		req := &vaultapi.InitRequest{SecretShares: shares, SecretThreshold: thresh}
		if s.AutoSeal() {
			req = &vaultapi.InitRequest{RecoveryShares: rs, RecoveryThreshold: rt}
		}
		body := map[string]any{"secret_shares": req.SecretShares, "secret_threshold": req.SecretThreshold,
			"recovery_shares": req.RecoveryShares, "recovery_threshold": req.RecoveryThreshold}
		if len(opts.KeyHolders) > 0 {
			body["key_holders"] = opts.KeyHolders
		}
		r := s.Client.NewRequest("PUT", "/v1/sys/init")
		if err := r.SetJSONBody(body); err != nil {
			tb.Fatal(err)
		}
		//lint:ignore SA1019 RawRequest: the Vigil-only key_holders field.
		resp, err := s.Client.RawRequest(r)
		if err != nil {
			tb.Fatalf("servertest: init: %v", err)
		}
		var res vaultapi.InitResponse
		err = resp.DecodeJSON(&res)
		resp.Body.Close()
		if err != nil {
			tb.Fatalf("servertest: init: %v", err)
		}
		s.Keys, s.RecoveryKeys, s.RootToken = res.Keys, res.RecoveryKeys, res.RootToken
		if s.AutoSeal() {
			s.MustWaitUnsealed(30 * time.Second)
		} else {
			s.MustUnseal()
		}
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

// MustWaitUnsealed waits until sys/seal-status reports unsealed (an auto
// seal unseals by itself), polling, and fails the test after timeout.
func (s *Server) MustWaitUnsealed(timeout time.Duration) {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		st, err := s.Client.Sys().SealStatus()
		if err == nil && !st.Sealed {
			return
		}
		if err != nil {
			last = err.Error()
		} else if len(st.Warnings) > 0 {
			last = st.Warnings[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.tb.Fatalf("servertest: still sealed after %s: %s", timeout, last)
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

// RestartSealed stops the server and starts a new one on the same data
// folder (new port), left sealed.
func (s *Server) RestartSealed() {
	s.tb.Helper()
	s.Stop()
	s.start()
	s.Client.SetToken(s.RootToken)
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
	switch {
	case s.AutoSeal() && !s.opts.NoInit:
		s.MustWaitUnsealed(30 * time.Second)
	case len(s.Keys) > 0:
		s.MustUnseal()
	}
}

// NewClientFrom returns a vault/api client whose connections come from the
// local address ip (any 127.0.0.0/8 address reaches a loopback server on
// Linux), for tests of address-bound tokens and logins.
func (s *Server) NewClientFrom(token, ip string) *vaultapi.Client {
	s.tb.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address, cfg.MaxRetries, cfg.Timeout = s.URL, 0, 60*time.Second
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	cfg.HttpClient.Transport = &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		s.tb.Fatalf("servertest: client: %v", err)
	}
	c.SetToken(token)
	return c
}

// MustEnableFileAudit enables a file audit device named "file" through the
// API (options added to file_path) and returns the log's path.
func (s *Server) MustEnableFileAudit(opts map[string]string) string {
	s.tb.Helper()
	path := filepath.Join(s.Dir, "audit", "audit.log")
	o := map[string]string{"file_path": path}
	for k, v := range opts {
		o[k] = v
	}
	if err := s.Client.Sys().EnableAuditWithOptions("file", &vaultapi.EnableAuditOptions{Type: "file", Options: o}); err != nil {
		s.tb.Fatalf("servertest: enable audit: %v", err)
	}
	return path
}

// ReadAudit returns the entries of an audit log file, oldest first.
func ReadAudit(tb testing.TB, path string) []map[string]any {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("servertest: read audit log: %v", err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			tb.Fatalf("servertest: audit line %q: %v", line, err)
		}
		if _, ok := m["request"]; ok {
			out = append(out, m)
		}
	}
	return out
}

// AuditEntries returns the entries of type typ ("request" or "response")
// whose request path is path.
func AuditEntries(entries []map[string]any, typ, path string) []map[string]any {
	var out []map[string]any
	for _, e := range entries {
		req, _ := e["request"].(map[string]any)
		if e["type"] == typ && req != nil && req["path"] == path {
			out = append(out, e)
		}
	}
	return out
}
