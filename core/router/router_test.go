package router

import (
	"context"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

type echo struct{ setups int }

func (e *echo) Setup(context.Context, framework.Env) error { e.setups++; return nil }
func (e *echo) Close(context.Context) error                { return nil }
func (e *echo) Routes() []framework.Route {
	return []framework.Route{{Pattern: `item/(?P<name>\w+)`, Fields: map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}, "n": {Type: framework.TypeInt}},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: func(_ context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
			return &core.Response{Data: map[string]any{"name": d.String("name"), "n": d.Int("n")}}, nil
		}, core.OpUpdate: func(context.Context, *core.Request, *framework.FieldData) (*core.Response, error) {
			panic("boom")
		}}}}
}

func newRouter() *Router {
	return New(Config{Storage: storage.NewMemory(), Factories: map[string]framework.Factory{"echo": func() framework.Engine { return &echo{} }}})
}

func TestMountResolveRoute(t *testing.T) {
	ctx := context.Background()
	r := newRouter()
	for _, p := range []string{"a", "a-b/deep"} {
		if err := r.Mount(ctx, &MountEntry{Path: p, Type: "echo"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"a", "a/sub", "a-b", "sys/x", "auth/x", "../x", "x*"} {
		if err := r.Mount(ctx, &MountEntry{Path: bad, Type: "echo"}); core.CodeOf(err) != core.CodeInvalid {
			t.Errorf("mount %q: %v", bad, err)
		}
	}
	if err := r.Mount(ctx, &MountEntry{Path: "z", Type: "nope"}); core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("unknown type: %v", err)
	}
	res, err := r.Resolve("a-b/deep/item/x")
	if err != nil || res.Mount.Path != "a-b/deep/" || res.Route == nil {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	resp, err := r.Route(ctx, res, &core.Request{Operation: core.OpRead, Data: map[string]any{"n": "7"}})
	if err != nil || resp.Data["name"] != "x" || resp.Data["n"] != 7 {
		t.Fatalf("route: %+v %v", resp, err)
	}
	if _, err := r.Route(ctx, res, &core.Request{Operation: core.OpUpdate}); core.CodeOf(err) != core.CodeInternal {
		t.Fatalf("handler panic not recovered into an internal error: %v", err)
	}
	if _, err := r.Route(ctx, res, &core.Request{Operation: core.OpDelete}); core.CodeOf(err) != core.CodeUnsupported {
		t.Fatalf("unsupported op: %v", err)
	}
	if _, err := r.Route(ctx, res, &core.Request{Operation: core.OpRead, Data: map[string]any{"n": "x"}}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("bad field: %v", err)
	}
	if _, err := r.Resolve("nothing/here"); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("unknown mount: %v", err)
	}
}

func TestMountTablePersistsAndTuneValidates(t *testing.T) {
	ctx := context.Background()
	st := storage.NewMemory()
	r := New(Config{Storage: st, Factories: map[string]framework.Factory{"echo": func() framework.Engine { return &echo{} }}, MaxLeaseTTL: 100})
	if err := r.Mount(ctx, &MountEntry{Path: "m", Type: "echo", Options: map[string]string{"phi": "true"}}); err != nil {
		t.Fatal(err)
	}
	r2 := New(Config{Storage: st, Factories: map[string]framework.Factory{"echo": func() framework.Engine { return &echo{} }}, MaxLeaseTTL: 100})
	if err := r2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e, ok := r2.Entry("m/")
	if !ok || e.Options["phi"] != "true" || e.Info().Tags["phi"] != "true" {
		t.Fatalf("reloaded entry: %+v", e)
	}
	d := int64(200)
	dd := timeDur(d)
	if err := r2.TuneMount(ctx, "m/", Tune{DefaultLeaseTTL: &dd}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("default above max accepted: %v", err)
	}
	if err := r2.Unmount(ctx, "m/", nil); err != nil {
		t.Fatal(err)
	}
	if keys, _ := storage.ListAll(ctx, st, "logical/"); len(keys) != 0 {
		t.Fatalf("unmount left storage: %v", keys)
	}
}

func timeDur(n int64) time.Duration { return time.Duration(n) }

// sysLike has a catch-all route declared before a more specific one, as
// sys/ has when one subsystem's audit/:path precedes another's audit/query.
type sysLike struct{}

func (sysLike) Setup(context.Context, framework.Env) error { return nil }
func (sysLike) Close(context.Context) error                { return nil }
func (sysLike) Routes() []framework.Route {
	op := func(name string) map[core.Operation]framework.HandlerFunc {
		return map[core.Operation]framework.HandlerFunc{core.OpRead: func(context.Context, *core.Request, *framework.FieldData) (*core.Response, error) {
			return &core.Response{Data: map[string]any{"route": name}}, nil
		}}
	}
	str := map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}, "name": {Type: framework.TypeString}}
	return []framework.Route{
		{Pattern: `audit/(?P<path>.+?)/?`, Fields: str, Operations: op("catch-all")},
		{Pattern: `audit/query/?`, Operations: op("query")},
		{Pattern: `audit/(?P<name>[^/]+)/(?P<path>.+)`, Fields: str, Operations: op("two-part")},
		{Pattern: `metadata/?`, Operations: op("list-first")},
		{Pattern: `metadata/(?P<path>.*)`, Fields: str, Operations: op("list-second")},
	}
}

func TestResolvePrefersTheMostSpecificRoute(t *testing.T) {
	r := New(Config{Storage: storage.NewMemory()})
	ctx := context.Background()
	if err := r.MountStatic(ctx, &MountEntry{Path: "sys/", Type: "system", Class: "secret"}, sysLike{}, "sys/"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"sys/audit/query":    "query",     // declared after the catch-all, more literal characters
		"sys/audit/query/":   "query",     // the optional slash is part of the pattern
		"sys/audit/file":     "catch-all", // only the catch-all matches
		"sys/audit/a/b":      "two-part",  // its literal second slash makes it more specific
		"sys/metadata/":      "list-first",
		"sys/metadata/x/y/z": "list-second",
	} {
		res, err := r.Resolve(path)
		if err != nil || res.Route == nil {
			t.Fatalf("%s: %v %v", path, res, err)
		}
		resp, err := r.Route(ctx, res, &core.Request{Operation: core.OpRead, Path: path})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := resp.Data["route"]; got != want {
			t.Errorf("%s: served by %v, want %s", path, got, want)
		}
	}
}

func TestResolveTieKeepsDeclarationOrder(t *testing.T) {
	r := New(Config{Storage: storage.NewMemory()})
	if err := r.MountStatic(context.Background(), &MountEntry{Path: "sys/", Type: "system", Class: "secret"}, sysLike{}, "sys/"); err != nil {
		t.Fatal(err)
	}
	// "sys/audit/x" matches only the catch-all; "sys/audit/query" is matched
	// by the catch-all (6 literal characters) and the query route (11).
	for path, want := range map[string]string{"sys/audit/x": `audit/(?P<path>.+?)/?`, "sys/audit/query": `audit/query/?`} {
		res, err := r.Resolve(path)
		if err != nil || res.Route == nil || res.Route.Pattern != want {
			t.Fatalf("%s: %+v %v, want route %s", path, res, err, want)
		}
	}
}
