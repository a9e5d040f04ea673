package cubbyhole

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/token"
)

var mount = core.MountInfo{Path: "cubbyhole/", Type: "cubbyhole", Class: "secret", Accessor: "cubbyhole_1"}

// caller calls the mounted engine as the holder of one token.
type caller struct {
	t     *testing.T
	c     *enginetest.Client
	token string
	typ   string
}

func (k caller) call(op core.Operation, path string, data map[string]any) (*core.Response, error) {
	k.t.Helper()
	req, err := k.c.NewRequest(op, path, data)
	if err != nil {
		k.t.Fatal(err)
	}
	req.Principal = &core.Principal{ClientToken: k.token, TokenType: k.typ, Policies: []string{"default"}}
	if k.token == "" {
		req.Principal = nil
	}
	for _, r := range k.c.Routes() {
		if caps, ok := r.Match(path); ok {
			return enginetest.Invoke(context.Background(), &r, caps, req)
		}
	}
	return nil, core.ErrUnsupportedPath
}

func mustSetup(t *testing.T) (*Backend, *enginetest.Client) {
	t.Helper()
	e, c := enginetest.MustSetup(t, func() framework.Engine { return New() }, mount)
	return e.(*Backend), c
}

func TestPrivatePerToken(t *testing.T) {
	b, c := mustSetup(t)
	alice := caller{t, c, "hvs.alice", "service"}
	bob := caller{t, c, "hvs.bob", "service"}

	if _, err := alice.call(core.OpUpdate, "foo", map[string]any{"k": "v", "n": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.call(core.OpUpdate, "dir/bar", map[string]any{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	resp, err := alice.call(core.OpRead, "foo", nil)
	if err != nil || resp.Data["k"] != "v" || resp.Data["n"].(interface{ String() string }).String() != "1" {
		t.Fatalf("read own: %+v %v", resp, err)
	}
	for _, p := range []string{"", "/"} {
		resp, err = alice.call(core.OpList, p, nil)
		if err != nil || !reflect.DeepEqual(resp.Data["keys"], []string{"dir/", "foo"}) {
			t.Fatalf("list %q: %+v %v", p, resp, err)
		}
	}

	// Another token sees nothing, whatever the path.
	if _, err := bob.call(core.OpRead, "foo", nil); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("bob read alice's secret: %v", err)
	}
	if _, err := bob.call(core.OpList, "", nil); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("bob listed alice's cubbyhole: %v", err)
	}
	if exists, ok, err := c.Exists(context.Background(), "foo", nil); err != nil || !ok || exists {
		t.Fatalf("existence check without a token: exists=%v ok=%v %v", exists, ok, err)
	}
	// Bob deleting the same path leaves alice's data alone.
	if _, err := bob.call(core.OpDelete, "foo", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.call(core.OpRead, "foo", nil); err != nil {
		t.Fatalf("alice's secret gone after bob's delete: %v", err)
	}

	// Destroying alice's cubbyhole (her token is revoked) removes all of it.
	if _, err := bob.call(core.OpUpdate, "mine", map[string]any{"b": true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(context.Background(), token.Hash("hvs.alice")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"foo", "dir/bar"} {
		if _, err := alice.call(core.OpRead, p, nil); !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("%s survived destroy: %v", p, err)
		}
	}
	if _, err := bob.call(core.OpRead, "mine", nil); err != nil {
		t.Fatalf("destroying alice's cubbyhole touched bob's: %v", err)
	}
	if err := b.Destroy(context.Background(), token.Hash("hvs.alice")); err != nil {
		t.Fatalf("destroy twice: %v", err)
	}
	// No raw token in any storage key.
	keys, err := enginetestKeys(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "bob") || strings.Contains(k, token.Hash("hvs.bob")) {
			t.Fatalf("storage key %q names the token", k)
		}
	}
}

func enginetestKeys(c *enginetest.Client) ([]string, error) {
	return c.Storage.Keys(), nil
}

func TestRefusals(t *testing.T) {
	_, c := mustSetup(t)
	svc := caller{t, c, "hvs.s", "service"}
	cases := []struct {
		who  caller
		op   core.Operation
		path string
		data map[string]any
		code core.Code
		msg  string
	}{
		{svc, core.OpUpdate, "empty", nil, core.CodeInvalid, "missing data fields"},
		{svc, core.OpUpdate, "dir/", map[string]any{"a": 1}, core.CodeInvalid, "cannot end with"},
		{svc, core.OpRead, "", nil, core.CodeInvalid, "missing path"},
		{svc, core.OpRead, "nope", nil, core.CodeNotFound, ""},
		{caller{t, c, "hvb.batch", "batch"}, core.OpRead, "x", nil, core.CodeInvalid, "'service' type tokens"},
		{caller{t, c, "", ""}, core.OpRead, "x", nil, core.CodePermissionDenied, "has none"},
	}
	for _, tc := range cases {
		_, err := tc.who.call(tc.op, tc.path, tc.data)
		if core.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %q: %v, want %s %q", tc.op, tc.path, err, tc.code, tc.msg)
		}
	}
}

func TestGoAPI(t *testing.T) {
	b, c := mustSetup(t)
	ctx := context.Background()
	wrapping := caller{t, c, "hvs.wrapping", "service"}
	h := token.Hash("hvs.wrapping")
	if err := b.Put(ctx, h, ResponseKey, []byte(`{"response":"{}"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, h, ResponseKey)
	if err != nil || string(got) != `{"response":"{}"}` {
		t.Fatalf("get: %q %v", got, err)
	}
	// The route serves what the Go API stored, with Vault's deprecation warning.
	resp, err := wrapping.call(core.OpRead, "response", nil)
	if err != nil || resp.Data["response"] != "{}" || len(resp.Warnings) != 1 {
		t.Fatalf("read through the route: %+v %v", resp, err)
	}
	if got, err := b.Get(ctx, token.Hash("hvs.other"), ResponseKey); err != nil || got != nil {
		t.Fatalf("another token's key: %q %v", got, err)
	}
	if err := b.Put(ctx, h, "../x", []byte("{}")); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("relative key: %v", err)
	}
}
