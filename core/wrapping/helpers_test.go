package wrapping

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/token"
)

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a Service over a real token store and cubbyhole on memory
// storage. dispatched records the requests the service executed.
type env struct {
	t          *testing.T
	svc        *Service
	tokens     *token.Store
	cubby      *cubbyhole.Backend
	mem        *storage.Memory
	clk        *clock
	dispatched []*core.Request
}

func mustEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, mem: storage.NewMemory(), clk: &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}
	e.cubby = cubbyhole.New()
	if err := e.cubby.Setup(context.Background(), framework.Env{Storage: storage.NewView(e.mem, "sys/cubbyhole/")}); err != nil {
		t.Fatal(err)
	}
	e.tokens = token.NewStore(e.mem, token.Config{Now: e.clk.Now})
	e.tokens.SetCubbyholes(e.cubby)
	e.svc = New(Config{Tokens: e.tokens, Cubbyholes: e.cubby, Now: e.clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.svc.SetDispatch(func(ctx context.Context, req *core.Request) (*core.Response, error) {
		if _, err := e.authenticate(req); err != nil {
			return nil, err
		}
		e.dispatched = append(e.dispatched, req)
		return &core.Response{Data: map[string]any{"executed": req.Path}}, nil
	})
	return e
}

// holder is a token holder with an optional entity in groups.
type holder struct {
	token    string
	entityID string
	groups   []string
}

// newPerson creates a service token for a person.
func (e *env) newPerson(name string, groups ...string) holder {
	e.t.Helper()
	raw, _, err := e.tokens.Create(context.Background(), token.CreateParams{Policies: []string{"default"}, DisplayName: name,
		EntityID: "entity-" + name, Path: "auth/userpass/login/" + name, TTL: 12 * time.Hour})
	if err != nil {
		e.t.Fatal(err)
	}
	return holder{token: raw, entityID: "entity-" + name, groups: groups}
}

// authenticate fills req.Principal from its client token as the
// dispatcher's authenticator does (spending a use unless deferred).
func (e *env) authenticate(req *core.Request) (*core.Principal, error) {
	p, err := e.tokens.Authenticate(context.Background(), req)
	if err != nil {
		return nil, err
	}
	req.Principal = p
	return p, nil
}

// req builds a request by p (nil: none) on a sys/ route path.
func (e *env) req(p *holder, op core.Operation, path string, data map[string]any) *core.Request {
	r := &core.Request{ID: uuid.NewString(), Operation: op, Path: path, Data: data, Headers: http.Header{}, Time: e.clk.Now(), RemoteAddr: "127.0.0.1"}
	if p != nil {
		r.ClientToken = p.token
	}
	return r
}

// serve runs a sys/ route of the service for req, authenticating first
// unless the route is unauthenticated; groups sets the caller's identity.
func (e *env) serve(req *core.Request, groups ...string) (*core.Response, error) {
	e.t.Helper()
	rel := strings.TrimPrefix(req.Path, "sys/")
	for _, r := range e.svc.Routes() {
		if err := r.Compile(); err != nil {
			e.t.Fatal(err)
		}
		caps, ok := r.Match(rel)
		if !ok {
			continue
		}
		req.DeferTokenUse = r.DefersTokenUse
		if !r.Unauthenticated {
			p, err := e.authenticate(req)
			if err != nil {
				return nil, err
			}
			if p.EntityID != "" {
				p.Identity = &core.Identity{EntityID: p.EntityID, EntityName: p.DisplayName, Actor: p.DisplayName, Groups: groups}
			}
		}
		raw := map[string]any{}
		for k, v := range req.Data {
			raw[k] = v
		}
		for k, v := range caps {
			raw[k] = v
		}
		d := framework.NewFieldData(raw, r.Fields)
		if err := d.Validate(); err != nil {
			return nil, err
		}
		h := r.Operations[req.Operation]
		if h == nil {
			return nil, core.ErrUnsupportedOp
		}
		return h(context.Background(), req, d)
	}
	return nil, core.ErrUnsupportedPath
}

func wantCode(t *testing.T, err error, code core.Code, msg string) {
	t.Helper()
	if core.CodeOf(err) != code || (msg != "" && !strings.Contains(err.Error(), msg)) {
		t.Fatalf("error %v (%s), want %s containing %q", err, core.CodeOf(err), code, msg)
	}
}
