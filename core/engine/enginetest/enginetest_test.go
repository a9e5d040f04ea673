package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/storage"
)

// itemsEngine is a minimal engine storing items/<name> objects. Its flaws
// are switchable so the suite's checks can be shown to fail.
type itemsEngine struct {
	flaws
	env framework.Env
	mem map[string]map[string]any
	mu  sync.Mutex
}

type flaws struct {
	inMemory bool // keep items in memory only (breaks persistence)
	panics   bool // read panics when no "value" is given
	internal bool // write fails with a plain error
	noOps    bool // declare a route without operations
}

func (e *itemsEngine) Setup(_ context.Context, env framework.Env) error {
	e.env = env
	if e.mem == nil {
		e.mem = map[string]map[string]any{}
	}
	return nil
}

func (e *itemsEngine) Close(context.Context) error { return nil }

func (e *itemsEngine) Routes() []framework.Route {
	routes := []framework.Route{{
		Pattern: "items/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":  {Type: framework.TypeString},
			"value": {Type: framework.TypeString},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   e.read,
			core.OpUpdate: e.write,
		},
		ExistenceCheck: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
			v, err := e.env.Storage.Get(ctx, "items/"+d.String("name"))
			return v != nil, err
		},
	}, {
		Pattern:    "items/?",
		Operations: map[core.Operation]framework.HandlerFunc{core.OpList: e.list},
	}}
	if e.noOps {
		routes = append(routes, framework.Route{Pattern: "broken"})
	}
	return routes
}

func (e *itemsEngine) read(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if e.panics && !d.Has("value") {
		panic("items engine: read without a value")
	}
	if e.inMemory {
		e.mu.Lock()
		defer e.mu.Unlock()
		if v, ok := e.mem[d.String("name")]; ok {
			return &core.Response{Data: v}, nil
		}
		return nil, core.ErrNotFound
	}
	var v map[string]any
	ok, err := storage.GetJSON(ctx, e.env.Storage, "items/"+d.String("name"), &v)
	if err != nil || !ok {
		return nil, errors.Join(err, core.ErrNotFound)
	}
	return &core.Response{Data: v}, nil
}

func (e *itemsEngine) write(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if e.internal {
		return nil, fmt.Errorf("database exploded")
	}
	if !d.Has("value") {
		return nil, core.Invalid("missing value")
	}
	v := map[string]any{"value": d.String("value"), "at": e.env.Now().Format(time.RFC3339)}
	if e.inMemory {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.mem[d.String("name")] = v
		return nil, nil
	}
	return nil, storage.PutJSON(ctx, e.env.Storage, "items/"+d.String("name"), v)
}

func (e *itemsEngine) list(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	keys, err := e.env.Storage.List(ctx, "items/")
	if err != nil || len(keys) == 0 {
		return nil, errors.Join(err, core.ErrNotFound)
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

func factoryOf(f flaws) router.Factory {
	return func() router.Engine { return &itemsEngine{flaws: f} }
}

var itemsMount = core.MountInfo{Path: "items/", Type: "items"}

func seedItems(tb testing.TB, c *Client) {
	tb.Helper()
	c.MustCall(tb, core.OpUpdate, "items/a", map[string]any{"value": "one"})
}

var itemsProbe = Probe{Op: core.OpRead, Path: "items/a"}

// recorder is a testing.TB that records failures instead of failing, so a
// test can assert that a check fails. Fatal ends the calling goroutine.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Log(...any)                {}
func (r *recorder) Error(a ...any)            { r.add(fmt.Sprint(a...)) }
func (r *recorder) Errorf(f string, a ...any) { r.add(fmt.Sprintf(f, a...)) }
func (r *recorder) Fatal(a ...any)            { r.add(fmt.Sprint(a...)); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) {
	r.add(fmt.Sprintf(f, a...))
	runtime.Goexit()
}
func (r *recorder) Failed() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.errs) > 0 }
func (r *recorder) add(s string) { r.mu.Lock(); defer r.mu.Unlock(); r.errs = append(r.errs, s) }

// failures runs check against a recorder and returns what it reported.
func failures(t *testing.T, check func(testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return strings.Join(r.errs, "\n")
}

func TestConformanceGoodEngine(t *testing.T) {
	RunConformance(t, factoryOf(flaws{}), itemsMount, WithPersistence(seedItems, itemsProbe))
}

func TestConformanceDetectsFlaws(t *testing.T) {
	tests := []struct {
		name   string
		engine flaws
		check  func(s *suite) func(testing.TB, router.Factory, core.MountInfo)
		want   string
	}{
		{"in-memory state", flaws{inMemory: true}, func(s *suite) func(testing.TB, router.Factory, core.MountInfo) { return s.persistence }, "differs on a fresh engine"},
		{"panic on empty data", flaws{panics: true}, func(s *suite) func(testing.TB, router.Factory, core.MountInfo) { return s.emptyData }, "panicked"},
		{"internal error on empty data", flaws{internal: true}, func(s *suite) func(testing.TB, router.Factory, core.MountInfo) { return s.emptyData }, "internal error"},
		{"route without operations", flaws{noOps: true}, func(s *suite) func(testing.TB, router.Factory, core.MountInfo) { return s.routes }, "has no operations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &suite{unknownPath: "nope", seed: seedItems, probes: []Probe{itemsProbe}}
			got := failures(t, func(tb testing.TB) { tc.check(s)(tb, factoryOf(tc.engine), itemsMount) })
			if !strings.Contains(got, tc.want) {
				t.Errorf("failures = %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestPersistenceNeedsASeedThatWrites(t *testing.T) {
	s := &suite{seed: func(testing.TB, *Client) {}, probes: []Probe{itemsProbe}}
	got := failures(t, func(tb testing.TB) { s.persistence(tb, factoryOf(flaws{}), itemsMount) })
	if !strings.Contains(got, "persistence was not exercised") {
		t.Errorf("failures = %q", got)
	}
	s = &suite{}
	got = failures(t, func(tb testing.TB) { s.persistence(tb, factoryOf(flaws{}), itemsMount) })
	if !strings.Contains(got, "needs WithPersistence") {
		t.Errorf("failures = %q", got)
	}
}

func TestCallMirrorsRouter(t *testing.T) {
	_, c := MustSetup(t, factoryOf(flaws{}), itemsMount)
	ctx := context.Background()

	if _, err := c.Read("nowhere/at/all", nil); !errors.Is(err, core.ErrUnsupportedPath) {
		t.Errorf("unmatched path: err = %v, want unsupported path", err)
	}
	if _, err := c.Delete("items/a", nil); !errors.Is(err, core.ErrUnsupportedOp) {
		t.Errorf("missing operation: err = %v, want unsupported operation", err)
	}
	// OpCreate falls back to the update handler.
	if _, err := c.Call(ctx, core.OpCreate, "items/a", map[string]any{"value": "v"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	resp, err := c.Read("items/a", nil)
	if err != nil || resp.Data["value"] != "v" {
		t.Fatalf("read = %+v, %v", resp, err)
	}
	if got := resp.Data["at"]; got != Epoch.Format(time.RFC3339) {
		t.Errorf("engine clock: at = %v, want %v", got, Epoch.Format(time.RFC3339))
	}
	// Schema validation happens before the handler.
	if _, err := c.Write("items/a", map[string]any{"value": map[string]any{"x": 1}}); core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("bad field type: err = %v, want invalid", err)
	}
	// Path captures override body fields of the same name.
	if _, err := c.Write("items/b", map[string]any{"name": "zzz", "value": "w"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read("items/zzz", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("capture did not win over body field: %v", err)
	}
	exists, ok, err := c.Exists(ctx, "items/b", nil)
	if !ok || !exists || err != nil {
		t.Errorf("Exists(items/b) = %v, %v, %v", exists, ok, err)
	}
	exists, ok, _ = c.Exists(ctx, "items/none", nil)
	if !ok || exists {
		t.Errorf("Exists(items/none) = %v, %v", exists, ok)
	}
}

func TestClock(t *testing.T) {
	c := NewClock(Epoch)
	c.Advance(time.Hour)
	if got := c.Now(); !got.Equal(Epoch.Add(time.Hour)) {
		t.Errorf("after Advance: %v", got)
	}
	c.Set(Epoch)
	if got := c.Now(); !got.Equal(Epoch) {
		t.Errorf("after Set: %v", got)
	}
}

func TestExamplePath(t *testing.T) {
	for _, pattern := range []string{
		"config",
		"data/(?P<path>.*[^/])",
		"metadata(?:/(?P<path>.*))?",
		"items/" + framework.GenericNameRegex("name"),
		"keys/?",
		"roles/(?P<name>[A-Z]+)/creds",
		"issue/(?P<role>\\w+)|sign/(?P<role2>\\w+)",
		"a{2,3}b",
	} {
		r := &framework.Route{Pattern: pattern}
		p, ok := ExamplePath(r)
		if !ok {
			t.Errorf("ExamplePath(%q) found none", pattern)
			continue
		}
		if _, match := r.Match(p); !match {
			t.Errorf("ExamplePath(%q) = %q, which does not match", pattern, p)
		}
	}
	if _, ok := ExamplePath(&framework.Route{Pattern: "(unclosed"}); ok {
		t.Error("ExamplePath of an invalid pattern reported a path")
	}
}

func TestJSONRoundTripUsesNumbers(t *testing.T) {
	got, err := JSONRoundTrip(map[string]any{"n": 1 << 60, "f": 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if got["n"] != any(json.Number("1152921504606846976")) || got["f"] != any(json.Number("1.5")) {
		t.Errorf("JSONRoundTrip = %#v", got)
	}
	if out, _ := JSONRoundTrip(nil); out != nil {
		t.Errorf("JSONRoundTrip(nil) = %#v", out)
	}
}
