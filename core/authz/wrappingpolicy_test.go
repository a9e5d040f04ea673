package authz

import (
	"context"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestResponseWrappingPolicy(t *testing.T) {
	// A stored policy of the reserved name is ignored: the built-in wins.
	a := MustAuthz(t, map[string]string{ResponseWrappingPolicy: `path "*" { capabilities = ["sudo", "read", "update"] }`})
	for _, c := range []struct {
		path string
		op   core.Operation
		want bool
	}{
		{"sys/wrapping/unwrap", core.OpUpdate, true},
		{"sys/wrapping/lookup", core.OpUpdate, true},
		{"sys/wrapping/rewrap", core.OpUpdate, false},
		{"cubbyhole/response", core.OpRead, false},
		{"secret/data/app", core.OpRead, false},
		{"auth/token/lookup-self", core.OpRead, false},
	} {
		if d := mustDecide(t, a, treq(c.path, c.op, ResponseWrappingPolicy)); d.Allowed != c.want {
			t.Errorf("%s %s: allowed=%v, want %v", c.op, c.path, d.Allowed, c.want)
		}
	}
	ctx := context.Background()
	if err := a.PutACL(ctx, "Response-Wrapping", `path "x" { capabilities = ["read"] }`); core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("writing the response-wrapping policy: %v", err)
	}
	if err := a.DeleteACL(ctx, ResponseWrappingPolicy); core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("deleting the response-wrapping policy: %v", err)
	}
}
