package authz

import (
	"context"
	"slices"
	"testing"

	"github.com/vigilsec/vigil/core"
)

var (
	nsA  = core.Namespace{ID: "AAAAAA", Path: "hospital-a/"}
	nsAB = core.Namespace{ID: "ABABAB", Path: "hospital-a/icu/"}
	nsB  = core.Namespace{ID: "BBBBBB", Path: "hospital-b/"}
)

// nsreq is treq for a token of namespace tok acting in namespace in.
func nsreq(tok, in core.Namespace, path string, op core.Operation, policies ...string) *core.Request {
	r := treq(path, op, policies...)
	r.Principal.Root = false
	r.Principal.Namespace, r.Namespace = &tok, &in
	return r
}

func TestNamespacePolicies(t *testing.T) {
	a := MustAuthz(t, map[string]string{
		"admin": `path "hospital-a/secret/*" { capabilities = ["read"] }`,
		"app":   `path "secret/*" { capabilities = ["read"] }`,
	})
	ctx := context.Background()
	for _, ns := range []core.Namespace{nsA, nsAB, nsB} {
		if err := a.CreateNamespace(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PutACLIn(ctx, nsA, "app", `path "secret/*" { capabilities = ["read", "update"] }
path "icu/secret/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := a.PutACLIn(ctx, nsA, "root", `path "*" { capabilities = ["read"] }`); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("a namespace wrote a root policy: %v", err)
	}
	cases := []struct {
		name    string
		tok, in core.Namespace
		path    string
		op      core.Operation
		pols    []string
		want    bool
	}{
		{"own namespace, own policy", nsA, nsA, "secret/x", core.OpUpdate, []string{"app"}, true},
		{"own default policy", nsA, nsA, "auth/token/lookup-self", core.OpRead, []string{"default"}, true},
		{"policy of the same name in the root does not apply", nsA, nsA, "secret/x", core.OpDelete, []string{"app"}, false},
		{"parent's policy reaches into the child by path", nsA, nsAB, "secret/x", core.OpRead, []string{"app"}, true},
		{"but grants nothing else there", nsA, nsAB, "secret/x", core.OpUpdate, []string{"app"}, false},
		{"child's token cannot act in the parent", nsAB, nsA, "secret/x", core.OpRead, []string{"app", "default"}, false},
		{"sibling's token cannot act", nsB, nsA, "secret/x", core.OpRead, []string{"app", "default"}, false},
		{"namespace token cannot act in the root", nsA, core.RootNamespace, "secret/x", core.OpRead, []string{"app"}, false},
		{"root policy by path", core.RootNamespace, nsA, "secret/x", core.OpRead, []string{"admin"}, true},
		{"root policy by path, nothing more", core.RootNamespace, nsA, "secret/x", core.OpUpdate, []string{"admin"}, false},
		{"root policy named like the namespace's does not apply there", core.RootNamespace, nsA, "secret/x", core.OpUpdate, []string{"app"}, false},
		{"a namespace's 'root' policy name is not root", nsA, nsA, "sys/mounts", core.OpRead, []string{"root"}, false},
	}
	for _, c := range cases {
		d := mustDecide(t, a, nsreq(c.tok, c.in, c.path, c.op, c.pols...))
		if d.Allowed != c.want {
			t.Errorf("%s: allowed=%v want %v; %v %v", c.name, d.Allowed, c.want, d.DenyReasons, d.Explanation)
		}
	}
	d := mustDecide(t, a, nsreq(nsA, nsA, "secret/x", core.OpRead, "app"))
	if len(d.GrantingPolicies) != 1 || d.GrantingPolicies[0] != (core.PolicyRef{Name: "app", Type: "acl", NamespaceID: nsA.ID, NamespacePath: nsA.Path}) {
		t.Fatalf("granting policies: %+v", d.GrantingPolicies)
	}
	root := treq("hospital-a/secret/x", core.OpDelete, "root")
	if d := mustDecide(t, a, root); !d.Allowed {
		t.Fatal("the root token is refused in a namespace")
	}
	if got := a.ListACLIn(nsA); !slices.Equal(got, []string{"app", "default"}) {
		t.Fatalf("policies of hospital-a: %v", got)
	}
	if got := a.ListACL(); !slices.Equal(got, []string{"admin", "app", "default", "root"}) {
		t.Fatalf("policies of the root: %v", got)
	}
	if raw, ok := a.GetACLIn(nsB, "app"); ok {
		t.Fatalf("hospital-b reads hospital-a's policy: %q", raw)
	}
	caps, err := a.CapabilitiesNS(ctx, nsA, []string{"app"}, "hospital-a/icu/secret/x")
	if err != nil || !slices.Equal(caps, []string{"read"}) {
		t.Fatalf("capabilities: %v %v", caps, err)
	}
	if caps, _ := a.CapabilitiesNS(ctx, nsA, []string{"app"}, "hospital-b/secret/x"); !slices.Equal(caps, []string{"deny"}) {
		t.Fatalf("capabilities outside the namespace: %v", caps)
	}
	// Reload from storage: the same policies, scoped the same way.
	b := New(a.cfg)
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if d := mustDecide(t, b, nsreq(nsA, nsAB, "secret/x", core.OpRead, "app")); !d.Allowed {
		t.Fatalf("after reload: %v", d.DenyReasons)
	}
	if err := b.DeleteNamespace(ctx, nsA); err != nil {
		t.Fatal(err)
	}
	if got := b.ListACLIn(nsA); len(got) != 0 {
		t.Fatalf("policies left after deleting the namespace: %v", got)
	}
	if got := b.ListACLIn(nsAB); len(got) != 1 {
		t.Fatalf("another namespace's policies went too: %v", got)
	}
	c := New(a.cfg)
	if err := c.Load(ctx); err != nil || len(c.ListACLIn(nsA)) != 0 {
		t.Fatalf("deleted policies stored: %v %v", c.ListACLIn(nsA), err)
	}
}
