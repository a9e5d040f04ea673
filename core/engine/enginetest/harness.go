// Package enginetest is the harness and conformance suite every Vigil engine
// (secrets engine or auth method) is tested with.
//
// MustSetup mounts an engine on an in-memory storage view with a manual
// clock, and returns a Client that calls the engine's routes in process the
// way the router does: the first route whose pattern matches the path wins,
// path captures are merged into the request data, the route's schema
// validates the fields, OpCreate falls back to the OpUpdate handler, and
// unknown parameters on writes produce the router's warning. The harness
// deliberately does not recover handler panics: a panic fails the test.
//
// RunConformance checks the properties every engine must have, whatever it
// does; see its doc comment.
package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/storage"
)

// Epoch is the time a fresh harness clock starts at.
var Epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// DefaultLeaseTTL and MaxLeaseTTL are the lease TTLs the harness's
// SystemView reports (Vault's server defaults).
const (
	DefaultLeaseTTL = 768 * time.Hour
	MaxLeaseTTL     = 768 * time.Hour
)

// Clock is a manual clock for tests. It is safe for concurrent use and only
// moves when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Client calls one mounted engine in process. Its methods are safe for
// concurrent use as long as the engine's handlers are.
type Client struct {
	Engine framework.Engine
	// Storage is the root store; the engine sees View, a prefix of it.
	Storage *storage.Memory
	View    *storage.View
	Clock   *Clock
	Mount   core.MountInfo

	mu     sync.RWMutex
	routes []framework.Route
}

// MustSetup makes an engine with factory and sets it up for mount on a fresh
// storage.Memory, with a Clock at Epoch. Empty mount fields get defaults
// (Path "mnt/", Class "secret", a UUID). The engine is closed when the test
// ends.
func MustSetup(tb testing.TB, factory framework.Factory, mount core.MountInfo) (framework.Engine, *Client) {
	tb.Helper()
	if mount.Path == "" {
		mount.Path = "mnt/"
	}
	if mount.Class == "" {
		mount.Class = "secret"
	}
	if mount.UUID == "" {
		mount.UUID = uuid.NewString()
	}
	if mount.Accessor == "" {
		mount.Accessor = mount.Type + "_enginetest"
	}
	mem := storage.NewMemory()
	c := &Client{
		Storage: mem,
		View:    storage.NewView(mem, "logical/"+mount.UUID+"/"),
		Clock:   NewClock(Epoch),
		Mount:   mount,
	}
	c.mustStart(tb, factory)
	return c.Engine, c
}

// Reopen makes a second engine with factory over the same storage, clock and
// mount, as a restart or another node would. The old engine is left open.
func (c *Client) Reopen(tb testing.TB, factory framework.Factory) (framework.Engine, *Client) {
	tb.Helper()
	n := &Client{Storage: c.Storage, View: c.View, Clock: c.Clock, Mount: c.Mount}
	n.mustStart(tb, factory)
	return n.Engine, n
}

func (c *Client) mustStart(tb testing.TB, factory framework.Factory) {
	tb.Helper()
	c.Engine = factory()
	if c.Engine == nil {
		tb.Fatal("enginetest: factory returned nil")
	}
	if err := c.setup(context.Background()); err != nil {
		tb.Fatalf("enginetest: setup: %v", err)
	}
	e := c.Engine
	tb.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			tb.Errorf("enginetest: close: %v", err)
		}
	})
}

// Env returns the environment the harness hands to Setup.
func (c *Client) Env() framework.Env {
	return framework.Env{
		Storage: c.View,
		Now:     c.Clock.Now,
		Logger:  slog.New(slog.DiscardHandler),
		Mount:   c.Mount,
		System:  framework.StaticSystem{Default: DefaultLeaseTTL, Max: MaxLeaseTTL, Options: c.Mount.Options},
	}
}

// Resetup calls Setup again on the same engine with mount (as the router
// does after tuning a mount's options) and reloads its routes. It must not
// run concurrently with calls.
func (c *Client) Resetup(tb testing.TB, mount core.MountInfo) {
	tb.Helper()
	c.Mount = mount
	if err := c.setup(context.Background()); err != nil {
		tb.Fatalf("enginetest: resetup: %v", err)
	}
}

func (c *Client) setup(ctx context.Context) error {
	if err := c.Engine.Setup(ctx, c.Env()); err != nil {
		return err
	}
	routes := c.Engine.Routes()
	for i := range routes {
		if err := routes[i].Compile(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.routes = routes
	c.mu.Unlock()
	return nil
}

// Routes returns the engine's compiled routes.
func (c *Client) Routes() []framework.Route {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.routes
}

// resolve finds the route for path as the router does: Internal routes
// match only internal requests.
func (c *Client) resolve(path string, internal bool) (*framework.Route, map[string]any) {
	routes := c.Routes()
	for i := range routes {
		if routes[i].Internal && !internal {
			continue
		}
		if caps, ok := routes[i].Match(path); ok {
			return &routes[i], caps
		}
	}
	return nil, nil
}

// NewRequest builds the request the dispatcher would hand the router for op
// on path (relative to the mount). data goes through a JSON round trip (with
// numbers as json.Number), so handlers see what the HTTP layer gives them.
func (c *Client) NewRequest(op core.Operation, path string, data map[string]any) (*core.Request, error) {
	body, err := JSONRoundTrip(data)
	if err != nil {
		return nil, err
	}
	mount := c.Mount
	return &core.Request{
		ID:        uuid.NewString(),
		Operation: op,
		Path:      mount.Path + path,
		Data:      body,
		Time:      c.Clock.Now(),
		Mount:     &mount,
		MountPath: path,
		Principal: &core.Principal{DisplayName: "enginetest", Policies: []string{"root"}, Root: true},
	}, nil
}

// Call runs op on path (relative to the mount) with data, as the router
// would. A path no route matches gives core.ErrUnsupportedPath; a route
// without the operation gives core.ErrUnsupportedOp.
func (c *Client) Call(ctx context.Context, op core.Operation, path string, data map[string]any) (*core.Response, error) {
	req, err := c.NewRequest(op, path, data)
	if err != nil {
		return nil, err
	}
	route, caps := c.resolve(path, false)
	if route == nil {
		return nil, core.ErrUnsupportedPath
	}
	return Invoke(ctx, route, caps, req)
}

// CallInternal is Call for a request Vigil makes itself, as the principal
// actor (a scheduled job, compliance scoping): Internal routes match, and
// the request carries no token.
func (c *Client) CallInternal(ctx context.Context, actor string, op core.Operation, path string, data map[string]any) (*core.Response, error) {
	req, err := c.NewRequest(op, path, data)
	if err != nil {
		return nil, err
	}
	req.Principal, req.Internal, req.InternalActor = nil, true, actor
	route, caps := c.resolve(path, true)
	if route == nil {
		return nil, core.ErrUnsupportedPath
	}
	return Invoke(ctx, route, caps, req)
}

// RunScheduled runs every scheduled job of the engine once, as the server
// does (see framework.Scheduler): an internal read of each job's Scan path,
// then an internal update of every path in its "due" list. It returns the
// errors joined, and fails the test if the engine is not a Scheduler or a
// scan answers something other than a list of paths.
func (c *Client) RunScheduled(tb testing.TB, ctx context.Context) error {
	tb.Helper()
	s, ok := c.Engine.(framework.Scheduler)
	if !ok {
		tb.Fatalf("enginetest: %T has no scheduled jobs", c.Engine)
	}
	var errs []error
	for _, j := range s.ScheduledJobs() {
		resp, err := c.CallInternal(ctx, j.Name, core.OpRead, j.Scan, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var due []string
		if resp != nil && resp.Data != nil {
			d, ok := resp.Data["due"].([]string)
			if !ok {
				tb.Fatalf("enginetest: scan %s answered due=%T, want []string", j.Scan, resp.Data["due"])
			}
			due = d
		}
		for _, p := range due {
			if _, err := c.CallInternal(ctx, j.Name, core.OpUpdate, p, nil); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Invoke runs req's operation on route with the given path captures, exactly
// as router.Route does once a route is resolved (field validation, the
// create→update fallback and the unknown-parameters warning), but without
// recovering panics.
func Invoke(ctx context.Context, route *framework.Route, caps map[string]any, req *core.Request) (*core.Response, error) {
	h := route.Operations[req.Operation]
	if h == nil && req.Operation == core.OpCreate {
		h = route.Operations[core.OpUpdate]
	}
	if h == nil {
		return nil, core.ErrUnsupportedOp
	}
	d, err := router.FieldData(&router.Resolved{Route: route, Captures: caps}, req)
	if err != nil {
		return nil, err
	}
	resp, err := h(ctx, req, d)
	if err == nil && resp != nil && !route.Raw {
		if unk := d.Unknown(); len(unk) > 0 && req.Operation != core.OpRead && req.Operation != core.OpList {
			resp.AddWarning(fmt.Sprintf("Endpoint ignored these unrecognized parameters: %v", unk))
		}
	}
	return resp, err
}

// Exists runs the existence check of the route path resolves to. ok is false
// when the route has none (or no route matches).
func (c *Client) Exists(ctx context.Context, path string, data map[string]any) (exists, ok bool, err error) {
	req, err := c.NewRequest(core.OpUpdate, path, data)
	if err != nil {
		return false, false, err
	}
	route, caps := c.resolve(path, false)
	if route == nil || route.ExistenceCheck == nil {
		return false, false, nil
	}
	d, err := router.FieldData(&router.Resolved{Route: route, Captures: caps}, req)
	if err != nil {
		return false, true, err
	}
	exists, err = route.ExistenceCheck(ctx, req, d)
	return exists, true, err
}

// Read is Call with core.OpRead; data plays the query parameters.
func (c *Client) Read(path string, data map[string]any) (*core.Response, error) {
	return c.Call(context.Background(), core.OpRead, path, data)
}

// Write is Call with core.OpUpdate (POST or PUT).
func (c *Client) Write(path string, data map[string]any) (*core.Response, error) {
	return c.Call(context.Background(), core.OpUpdate, path, data)
}

// Patch is Call with core.OpPatch (a JSON merge patch body).
func (c *Client) Patch(path string, data map[string]any) (*core.Response, error) {
	return c.Call(context.Background(), core.OpPatch, path, data)
}

// Delete is Call with core.OpDelete.
func (c *Client) Delete(path string, data map[string]any) (*core.Response, error) {
	return c.Call(context.Background(), core.OpDelete, path, data)
}

// List is Call with core.OpList on path (typically ending in "/").
func (c *Client) List(path string) (*core.Response, error) {
	return c.Call(context.Background(), core.OpList, path, nil)
}

// MustCall is Call that fails the test on error.
func (c *Client) MustCall(tb testing.TB, op core.Operation, path string, data map[string]any) *core.Response {
	tb.Helper()
	resp, err := c.Call(context.Background(), op, path, data)
	if err != nil {
		tb.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// JSONRoundTrip encodes v as JSON and decodes it back with numbers as
// json.Number, the way the HTTP layer and the vault/api client decode bodies.
// nil stays nil.
func JSONRoundTrip(v map[string]any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("enginetest: encode: %w", err)
	}
	var out map[string]any
	if err := UnmarshalJSON(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// UnmarshalJSON decodes b into v with numbers as json.Number.
func UnmarshalJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("enginetest: decode: %w", err)
	}
	return nil
}
