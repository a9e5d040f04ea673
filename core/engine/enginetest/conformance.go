package enginetest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/router"
)

// Probe is one call whose outcome a fresh engine over the same storage must
// reproduce exactly.
type Probe struct {
	Op   core.Operation
	Path string
	Data map[string]any
}

// Option configures RunConformance.
type Option func(*suite)

type suite struct {
	seed        func(tb testing.TB, c *Client)
	probes      []Probe
	unknownPath string
	skip        func(pattern string, op core.Operation) bool
	system      bool
}

// WithPersistence gives the engine-specific half of the persistence check:
// seed writes state through c, and each probe (typically a read of what seed
// wrote) must give the same outcome from a fresh engine over the same
// storage. At least one probe must succeed with a non-empty response.
func WithPersistence(seed func(tb testing.TB, c *Client), probes ...Probe) Option {
	return func(s *suite) { s.seed, s.probes = seed, probes }
}

// WithUnknownPath overrides the path (relative to the mount) that must read
// as not found.
func WithUnknownPath(path string) Option { return func(s *suite) { s.unknownPath = path } }

// WithInternalErrorsAllowed exempts route/operation pairs from the rule that
// empty input must not cause an internal error. Panics are never exempt.
func WithInternalErrorsAllowed(skip func(pattern string, op core.Operation) bool) Option {
	return func(s *suite) { s.skip = skip }
}

// System marks a built-in engine that may declare unaudited or sealed-OK
// routes.
func System() Option { return func(s *suite) { s.system = true } }

// RunConformance checks what every engine must do, whatever it implements:
//
//   - Routes: every pattern compiles and is unique, every route has at least
//     one operation and no nil handler, and only system engines mark routes
//     unaudited or served while sealed.
//   - SetupClose: Setup may be called again on a set-up engine (the router
//     does so after tuning) and Close may be called twice.
//   - UnknownPath: reading a path the engine knows nothing about is a 404.
//   - EmptyData: every operation of every route, and every existence check,
//     called with no data at an example path built from the pattern, neither
//     panics nor fails with an internal error.
//   - Persistence: after WithPersistence's seed, a fresh engine over the same
//     storage answers the probes, and every read or list at the example paths,
//     exactly as the first one did.
func RunConformance(t *testing.T, factory framework.Factory, mount core.MountInfo, opts ...Option) {
	t.Helper()
	s := &suite{unknownPath: "enginetest-no-such-path/x1/y2"}
	for _, o := range opts {
		o(s)
	}
	checks := []struct {
		name string
		run  func(testing.TB, framework.Factory, core.MountInfo)
	}{
		{"Routes", s.routes},
		{"SetupClose", s.setupClose},
		{"UnknownPath", s.unknown},
		{"EmptyData", s.emptyData},
		{"Persistence", s.persistence},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.run(t, factory, mount) })
	}
}

func (s *suite) routes(t testing.TB, factory framework.Factory, mount core.MountInfo) {
	_, c := MustSetup(t, factory, mount)
	routes := c.Routes()
	if len(routes) == 0 {
		t.Fatal("engine declares no routes")
	}
	seen := map[string]bool{}
	for _, r := range routes {
		if err := r.Compile(); err != nil {
			t.Errorf("route %q: %v", r.Pattern, err)
		}
		if seen[r.Pattern] {
			t.Errorf("route %q declared twice", r.Pattern)
		}
		seen[r.Pattern] = true
		if len(r.Operations) == 0 {
			t.Errorf("route %q has no operations", r.Pattern)
		}
		for op, h := range r.Operations {
			if h == nil {
				t.Errorf("route %q: nil handler for %s", r.Pattern, op)
			}
		}
		if !s.system && (r.Unaudited || r.SealedOK) {
			t.Errorf("route %q: only system engines may be unaudited or served sealed", r.Pattern)
		}
	}
}

func (s *suite) setupClose(t testing.TB, factory framework.Factory, mount core.MountInfo) {
	ctx := context.Background()
	e, c := MustSetup(t, factory, mount)
	n := len(c.Routes())
	if err := e.Setup(ctx, c.Env()); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	routes := e.Routes()
	if len(routes) != n {
		t.Errorf("second Setup changed the route count from %d to %d", n, len(routes))
	}
	for i := range routes {
		if err := routes[i].Compile(); err != nil {
			t.Errorf("after second Setup: %v", err)
		}
	}
	for i := range 2 {
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
}

func (s *suite) unknown(t testing.TB, factory framework.Factory, mount core.MountInfo) {
	_, c := MustSetup(t, factory, mount)
	resp, err := c.Read(s.unknownPath, nil)
	switch {
	case err != nil && core.CodeOf(err) != core.CodeNotFound:
		t.Errorf("read %q: got error %v (code %s), want a 404", s.unknownPath, err, core.CodeOf(err))
	case err == nil && (resp == nil || resp.StatusCode != 404):
		t.Errorf("read %q: got %+v, want a 404", s.unknownPath, resp)
	}
}

func (s *suite) emptyData(t testing.TB, factory framework.Factory, mount core.MountInfo) {
	ctx := context.Background()
	_, c := MustSetup(t, factory, mount)
	covered := 0
	for i, r := range c.Routes() {
		route := &c.Routes()[i]
		path, ok := ExamplePath(route)
		if !ok {
			t.Logf("route %q: no example path could be built; not exercised", r.Pattern)
			continue
		}
		covered++
		caps, _ := route.Match(path)
		ops := make([]core.Operation, 0, len(r.Operations))
		for op := range r.Operations {
			ops = append(ops, op)
		}
		slices.Sort(ops)
		for _, op := range ops {
			req, err := c.NewRequest(op, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = noPanic(t, fmt.Sprintf("%s %q (route %q)", op, path, r.Pattern), func() error {
				_, err := Invoke(ctx, route, caps, req)
				return err
			})
			if core.CodeOf(err) == core.CodeInternal && (s.skip == nil || !s.skip(r.Pattern, op)) {
				t.Errorf("%s %q (route %q) with no data: internal error %v; want a client error or success", op, path, r.Pattern, err)
			}
		}
		if route.ExistenceCheck != nil {
			req, err := c.NewRequest(core.OpUpdate, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = noPanic(t, fmt.Sprintf("existence check %q (route %q)", path, r.Pattern), func() error {
				d, err := router.FieldData(&router.Resolved{Route: route, Captures: caps}, req)
				if err != nil {
					return err
				}
				_, err = route.ExistenceCheck(ctx, req, d)
				return err
			})
		}
	}
	if covered == 0 {
		t.Error("no route could be exercised: no example path matched any pattern")
	}
}

// noPanic runs f and reports a panic as a test error (returning nil then).
func noPanic(t testing.TB, what string, f func() error) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%s panicked: %v\n%s", what, p, debug.Stack())
			err = nil
		}
	}()
	return f()
}

func (s *suite) persistence(t testing.TB, factory framework.Factory, mount core.MountInfo) {
	if s.seed == nil || len(s.probes) == 0 {
		t.Fatal("RunConformance needs WithPersistence(seed, probes...) to check persistence")
	}
	ctx := context.Background()
	_, a := MustSetup(t, factory, mount)
	s.seed(t, a)

	probes := slices.Clone(s.probes)
	explicit := len(probes)
	for i := range a.Routes() {
		route := &a.Routes()[i]
		path, ok := ExamplePath(route)
		if !ok {
			continue
		}
		for _, op := range []core.Operation{core.OpRead, core.OpList} {
			if route.Operations[op] != nil {
				probes = append(probes, Probe{Op: op, Path: path})
			}
		}
	}
	before := make([]string, len(probes))
	nonEmpty := 0
	for i, p := range probes {
		resp, err := a.Call(ctx, p.Op, p.Path, p.Data)
		before[i] = outcome(resp, err)
		if i < explicit && err == nil && !resp.IsEmpty() {
			nonEmpty++
		}
		// Reads that differ on the same engine are not deterministic and
		// cannot be compared across engines.
		if again := outcome(a.Call(ctx, p.Op, p.Path, p.Data)); again != before[i] {
			if i < explicit {
				t.Errorf("probe %s %q is not deterministic:\n first: %s\nsecond: %s", p.Op, p.Path, before[i], again)
			}
			before[i] = ""
		}
	}
	if nonEmpty == 0 {
		t.Error("no probe returned data after the seed: persistence was not exercised")
	}

	_, b := a.Reopen(t, factory)
	for i, p := range probes {
		if before[i] == "" {
			continue
		}
		if got := outcome(b.Call(ctx, p.Op, p.Path, p.Data)); got != before[i] {
			t.Errorf("%s %q differs on a fresh engine over the same storage:\n  first engine: %s\n  fresh engine: %s", p.Op, p.Path, before[i], got)
		}
	}
}

// outcome renders a call's result as comparable JSON.
func outcome(resp *core.Response, err error) string {
	m := map[string]any{}
	if err != nil {
		m["error_code"] = core.CodeOf(err)
		m["error"] = core.ClientMessage(err)
	}
	if resp != nil {
		m["status"] = resp.StatusCode
		m["data"] = resp.Data
		m["warnings"] = resp.Warnings
		if resp.Secret != nil {
			m["secret"] = map[string]any{"ttl": resp.Secret.TTL, "max_ttl": resp.Secret.MaxTTL, "renewable": resp.Secret.Renewable}
		}
		if resp.Auth != nil {
			m["auth"] = map[string]any{"policies": resp.Auth.Policies, "metadata": resp.Auth.Metadata, "ttl": resp.Auth.TTL}
		}
		if resp.Raw != nil {
			m["raw"] = resp.Raw
		}
	}
	b, jerr := json.Marshal(m)
	if jerr != nil {
		return fmt.Sprintf("unencodable outcome: %v", jerr)
	}
	return string(b)
}
