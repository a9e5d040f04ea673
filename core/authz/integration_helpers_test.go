package authz_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/storage"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// auditTap records the decision of every audited request, so tests can see
// what the audit entry would carry.
type auditTap struct {
	mu  sync.Mutex
	evs []*core.AuditEvent
}

func (a *auditTap) LogRequest(_ context.Context, ev *core.AuditEvent) error {
	a.mu.Lock()
	a.evs = append(a.evs, ev)
	a.mu.Unlock()
	return nil
}
func (a *auditTap) LogResponse(context.Context, *core.AuditEvent) error { return nil }

// last returns the decision of the last audited request entry for path.
func (a *auditTap) last(path string) *core.Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.evs) - 1; i >= 0; i-- {
		if a.evs[i].Request.Path == path {
			return a.evs[i].Request.Decision
		}
	}
	return nil
}

type tapSubsystem struct{ tap *auditTap }

func (t tapSubsystem) Name() string                   { return "audit-tap" }
func (t tapSubsystem) Unsealed(context.Context) error { return nil }
func (t tapSubsystem) Sealing(context.Context)        {}

// memkv is a tiny test-only secrets engine: any path holds a JSON object;
// writes to a missing path are "create" (it has an existence check).
type memkv struct{ s storage.Storage }

func (m *memkv) Setup(_ context.Context, env framework.Env) error { m.s = env.Storage; return nil }
func (m *memkv) Close(context.Context) error                      { return nil }
func (m *memkv) Routes() []framework.Route {
	fields := map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}}
	put := func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		return nil, storage.PutJSON(ctx, m.s, "d/"+d.String("path"), req.Data)
	}
	return []framework.Route{{
		Pattern: `(?P<path>.*)`,
		Fields:  fields,
		ExistenceCheck: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
			b, err := m.s.Get(ctx, "d/"+d.String("path"))
			return b != nil, err
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				var v map[string]any
				ok, err := storage.GetJSON(ctx, m.s, "d/"+d.String("path"), &v)
				if err != nil || !ok {
					return nil, err
				}
				return &core.Response{Data: v}, nil
			},
			core.OpCreate: put,
			core.OpUpdate: put,
			core.OpPatch:  put,
			core.OpDelete: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				return nil, m.s.Delete(ctx, "d/"+d.String("path"))
			},
			core.OpList: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				keys, err := m.s.List(ctx, "d/"+d.String("path"))
				return &core.Response{Data: map[string]any{"keys": keys}}, err
			},
		},
	}}
}

// env is a running server with the authz subsystem, a memkv mount at
// secret/ and an audit tap.
type env struct {
	*servertest.Server
	tap   *auditTap
	clock *clock
	sub   *authz.Subsystem
}

// mustServer starts an in-process server built like cmd/vigil/wire does,
// with the authz subsystem (and the test engine and audit tap) added.
func mustServer(t *testing.T, opts ...authz.Option) *env {
	t.Helper()
	e := &env{tap: &auditTap{}, clock: &clock{t: time.Date(2024, 6, 5, 10, 0, 0, 0, time.UTC)}}
	// A generous evaluation deadline: these tests run under -race on loaded
	// machines and are not about the deadline.
	e.sub = authz.NewSubsystem(append([]authz.Option{authz.WithPollInterval(0), authz.WithEvalTimeout(5 * time.Second)}, opts...)...)
	build := func(cfg *config.Config) (server.Options, error) {
		return server.Options{
			Config:      cfg,
			Engines:     map[string]framework.Factory{"memkv": func() framework.Engine { return &memkv{} }},
			AuthMethods: map[string]framework.Factory{},
			Subsystems: []server.Plug{
				{Subsystem: tapSubsystem{e.tap}, Provision: func(h *server.Host) error { h.SetAuditor(e.tap); return nil }},
				{Subsystem: e.sub, Provision: func(h *server.Host) error { return e.sub.Provision(h) }},
			},
		}, nil
	}
	e.Server = servertest.MustStart(t, build, servertest.Options{Now: e.clock.Now})
	if err := e.Client.Sys().Mount("secret", &vaultapi.MountInput{Type: "memkv"}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	return e
}

// token creates a token with the given policies (and metadata) and returns
// a client using it.
func (e *env) token(t *testing.T, meta map[string]string, policies ...string) *vaultapi.Client {
	t.Helper()
	sec, err := e.Client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies, Metadata: meta, TTL: "24h"})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return e.NewClient(sec.Auth.ClientToken)
}

func (e *env) putPolicy(t *testing.T, name, src string) {
	t.Helper()
	if err := e.Client.Sys().PutPolicy(name, src); err != nil {
		t.Fatalf("put policy %s: %v", name, err)
	}
}

func (e *env) putRego(t *testing.T, name, src, level string) error {
	t.Helper()
	_, err := e.Client.Logical().Write("sys/policies/rego/"+name, map[string]any{"policy": src, "enforcement_level": level})
	return err
}

// denied reports whether err is Vault's 403 permission denied; any other
// error fails the test.
func denied(t *testing.T, what string, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		return true
	}
	t.Fatalf("%s: unexpected error %v", what, err)
	return false
}

// do performs op on path with c and reports whether it was allowed.
func do(t *testing.T, c *vaultapi.Client, op, path string, data map[string]any, headers map[string]string) bool {
	t.Helper()
	c = c.WithNamespace("")
	for k, v := range headers {
		c.AddHeader(k, v)
	}
	var err error
	switch op {
	case "read":
		_, err = c.Logical().Read(path)
	case "list":
		_, err = c.Logical().List(path)
	case "write":
		if data == nil {
			data = map[string]any{"v": "1"}
		}
		_, err = c.Logical().Write(path, data)
	case "patch":
		_, err = c.Logical().JSONMergePatch(context.Background(), path, data)
	case "delete":
		_, err = c.Logical().Delete(path)
	default:
		t.Fatalf("bad op %s", op)
	}
	return !denied(t, op+" "+path, err)
}

func contains(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
