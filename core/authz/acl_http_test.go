package authz_test

import (
	"reflect"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// Policies from Vault's documentation, docs/concepts/policies ("Policy
// syntax", "Priority matching", "Capabilities", "Parameter constraints",
// "Built-in policies"), plus Vault's acl.go behaviour where the page is
// silent (noted per case).
var docPolicies = map[string]string{
	// "Policy syntax": the detailed example, verbatim.
	"docs": `
# This section grants all access on "secret/*". Further restrictions can be
# applied to this broad policy, as shown below.
path "secret/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}

# Even though we allowed secret/*, this line explicitly denies
# secret/super-secret. This takes precedence.
path "secret/super-secret" {
  capabilities = ["deny"]
}

# Policies can also specify allowed, disallowed, and required parameters. Here
# the key "secret/restricted" can only contain "foo" (any value) and "bar" (one
# of "zip" or "zap").
path "secret/restricted" {
  capabilities = ["create"]
  allowed_parameters = {
    "foo" = []
    "bar" = ["zip", "zap"]
  }
}
`,
	// "Policy syntax": exact path, "/*" glob and prefix glob.
	"globs": `
path "secret/foo" { capabilities = ["read"] }
path "secret/bar/*" { capabilities = ["read"] }
path "secret/zip-*" { capabilities = ["read"] }
`,
	// "Policy syntax": "+" matches one segment.
	"plus": `
path "secret/+/teamb" { capabilities = ["read"] }
path "secret/+/+/teamb" { capabilities = ["read"] }
`,
	// "Priority matching", the worked example: secret/* beats secret/+/+/foo/*.
	"priority": `
path "secret/*" { capabilities = ["read"] }
path "secret/+/+/foo/*" { capabilities = ["deny"] }
`,
	// "Capabilities": list is separate from read; sudo for root-protected paths.
	"reader":     `path "secret/*" { capabilities = ["read"] }`,
	"lister":     `path "secret/*" { capabilities = ["list"] }`,
	"nosudo":     `path "auth/token/accessors" { capabilities = ["list"] }`,
	"withsudo":   `path "auth/token/accessors" { capabilities = ["list", "sudo"] }`,
	"createonly": `path "secret/c/*" { capabilities = ["create"] }`,
	"patcher":    `path "secret/p/*" { capabilities = ["patch"] }`,
	// "Parameter constraints".
	"params": `
path "secret/req" {
  capabilities = ["create", "update"]
  required_parameters = ["bar", "baz"]
}
path "secret/den" {
  capabilities = ["create", "update"]
  denied_parameters = { "bar" = ["zip", "zap"] }
}
path "secret/denall" {
  capabilities = ["create", "update"]
  denied_parameters = { "*" = [] }
}
path "secret/glob" {
  capabilities = ["create", "update"]
  allowed_parameters = { "bar" = ["foo-*"] }
}
path "secret/star" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "bar" = ["zip", "zap"]
    "*"   = []
  }
}
`,
	// Note in "Policy syntax": the same pattern in several policies: union.
	"u1": `path "secret/u/*" { capabilities = ["read"] }`,
	"u2": `path "secret/u/*" { capabilities = ["update"] }`,
	// Different patterns: only the highest-priority one applies.
	"broad":    `path "secret/*" { capabilities = ["update"] }`,
	"specific": `path "secret/x" { capabilities = ["read"] }`,
	// Old-style policy = "..." (vault/policy.go maps read to read+list).
	"oldstyle": `path "secret/old/*" { policy = "read" }`,
}

func TestACLCasesThroughHTTP(t *testing.T) {
	e := mustServer(t)
	for n, src := range docPolicies {
		e.putPolicy(t, n, src)
	}
	// Seed objects so that some writes are updates rather than creates.
	for _, p := range []string{"secret/exists", "secret/c/old", "secret/p/k", "secret/x", "secret/u/k"} {
		if _, err := e.Client.Logical().Write(p, map[string]any{"v": "seed"}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name     string
		policies []string
		op, path string
		data     map[string]any
		allowed  bool
	}{
		{"glob grants read", []string{"docs"}, "read", "secret/foo", nil, true},
		{"glob grants write", []string{"docs"}, "write", "secret/new", nil, true},
		{"explicit deny wins", []string{"docs"}, "read", "secret/super-secret", nil, false},
		{"allowed params ok", []string{"docs"}, "write", "secret/restricted", map[string]any{"foo": "any", "bar": "zip"}, true},
		{"allowed params bad value", []string{"docs"}, "write", "secret/restricted", map[string]any{"bar": "zop"}, false},
		{"allowed params unknown key", []string{"docs"}, "write", "secret/restricted", map[string]any{"other": "x"}, false},
		{"exact path", []string{"globs"}, "read", "secret/foo", nil, true},
		{"exact is not prefix", []string{"globs"}, "read", "secret/food", nil, false},
		{"exact is not parent", []string{"globs"}, "read", "secret/foo/bar", nil, false},
		{"dir glob deep", []string{"globs"}, "read", "secret/bar/zip/zap", nil, true},
		{"dir glob sibling", []string{"globs"}, "read", "secret/bars/zip", nil, false},
		{"prefix glob", []string{"globs"}, "read", "secret/zip-zap/zong", nil, true},
		{"prefix glob miss", []string{"globs"}, "read", "secret/zip/zap", nil, false},
		{"plus one segment", []string{"plus"}, "read", "secret/foo/teamb", nil, true},
		{"plus two segments", []string{"plus"}, "read", "secret/foo/bar/teamb", nil, true},
		{"plus needs a segment", []string{"plus"}, "read", "secret/teamb", nil, false},
		{"priority rule 3", []string{"priority"}, "read", "secret/a/b/foo/c", nil, true},
		{"read is not list", []string{"reader"}, "list", "secret/", nil, false},
		{"list is not read", []string{"lister"}, "read", "secret/foo", nil, false},
		{"list", []string{"lister"}, "list", "secret/", nil, true},
		{"sudo path without sudo", []string{"nosudo"}, "list", "auth/token/accessors", nil, false},
		{"sudo path with sudo", []string{"withsudo"}, "list", "auth/token/accessors", nil, true},
		{"create new", []string{"createonly"}, "write", "secret/c/new", nil, true},
		{"create is not update", []string{"createonly"}, "write", "secret/c/old", nil, false},
		{"patch", []string{"patcher"}, "patch", "secret/p/k", map[string]any{"v": "2"}, true},
		{"patch is not update", []string{"patcher"}, "write", "secret/p/k", nil, false},
		{"required present", []string{"params"}, "write", "secret/req", map[string]any{"bar": 1, "baz": 2}, true},
		{"required missing", []string{"params"}, "write", "secret/req", map[string]any{"bar": 1}, false},
		{"denied value", []string{"params"}, "write", "secret/den", map[string]any{"bar": "zip"}, false},
		{"denied other value", []string{"params"}, "write", "secret/den", map[string]any{"bar": "zop"}, true},
		{"denied star", []string{"params"}, "write", "secret/denall", map[string]any{"x": "1"}, false},
		{"globbed value", []string{"params"}, "write", "secret/glob", map[string]any{"bar": "foo-1"}, true},
		{"globbed value miss", []string{"params"}, "write", "secret/glob", map[string]any{"bar": "bar-1"}, false},
		{"star allows others", []string{"params"}, "write", "secret/star", map[string]any{"bar": "zip", "other": "y"}, true},
		{"star keeps value limits", []string{"params"}, "write", "secret/star", map[string]any{"bar": "zop", "other": "y"}, false},
		{"union read", []string{"u1", "u2"}, "read", "secret/u/k", nil, true},
		{"union update", []string{"u1", "u2"}, "write", "secret/u/k", nil, true},
		{"union not delete", []string{"u1", "u2"}, "delete", "secret/u/k", nil, false},
		{"most specific only", []string{"broad", "specific"}, "write", "secret/x", nil, false},
		{"most specific read", []string{"broad", "specific"}, "read", "secret/x", nil, true},
		{"old style read", []string{"oldstyle"}, "read", "secret/old/a", nil, true},
		{"old style list", []string{"oldstyle"}, "list", "secret/old/", nil, true},
		{"old style no write", []string{"oldstyle"}, "write", "secret/old/a", nil, false},
		{"default lookup-self", []string{"default"}, "read", "auth/token/lookup-self", nil, true},
		{"default no secrets", []string{"default"}, "read", "secret/foo", nil, false},
	}
	clients := map[string]*vaultapi.Client{}
	for _, c := range cases {
		key := ""
		for _, p := range c.policies {
			key += p + ","
		}
		cl, ok := clients[key]
		if !ok {
			cl = e.token(t, nil, c.policies...)
			clients[key] = cl
		}
		if got := do(t, cl, c.op, c.path, c.data, nil); got != c.allowed {
			t.Errorf("%s: %s %s with %v: allowed=%v, want %v; audit decision %+v", c.name, c.op, c.path, c.policies, got, c.allowed, e.tap.last(c.path))
		}
	}
	// The audit entry carries Vault's policy_results: granting policies.
	do(t, clients["u1,u2,"], "read", "secret/u/k", nil, nil)
	d := e.tap.last("secret/u/k")
	if d == nil || !d.Allowed || len(d.GrantingPolicies) != 1 || d.GrantingPolicies[0].Name != "u1" || d.GrantingPolicies[0].Type != "acl" {
		t.Errorf("granting policies of a read with u1 (read) and u2 (update): %+v", d)
	}
}

func TestCapabilitiesAPI(t *testing.T) {
	e := mustServer(t)
	for n, src := range docPolicies {
		e.putPolicy(t, n, src)
	}
	c := e.token(t, nil, "docs")
	tok := c.Token()
	cases := map[string][]string{
		// Vault lists capabilities sorted by name.
		"secret/foo":          {"create", "delete", "list", "patch", "read", "update"},
		"secret/super-secret": {"deny"},
		"secret/restricted":   {"create"},
		"sys/mounts":          {"deny"},
		// From the default policy.
		"auth/token/lookup-self": {"read"},
	}
	for path, want := range cases {
		got, err := c.Sys().CapabilitiesSelf(path)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("capabilities-self %s = %v, %v; want %v", path, got, err, want)
		}
		got, err = e.Client.Sys().Capabilities(tok, path)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("capabilities %s = %v, %v; want %v", path, got, err, want)
		}
	}
	info, err := e.Client.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	lk, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := lk.Data["accessor"].(string)
	got, err := e.Client.Sys().CapabilitiesAccessor(acc, "secret/foo")
	if err != nil || !reflect.DeepEqual(got, cases["secret/foo"]) {
		t.Errorf("capabilities-accessor = %v, %v", got, err)
	}
	rootCaps, err := e.Client.Sys().CapabilitiesSelf("anything/at/all")
	if err != nil || !reflect.DeepEqual(rootCaps, []string{"root"}) {
		t.Errorf("root capabilities = %v, %v (token %v)", rootCaps, err, info.Data["policies"])
	}
	// Several paths at once: one key per path, no "capabilities" key.
	sec, err := c.Logical().Write("sys/capabilities-self", map[string]any{"paths": []string{"secret/foo", "secret/super-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sec.Data["capabilities"]; ok || len(sec.Data) != 2 {
		t.Errorf("multi-path answer: %v", sec.Data)
	}
	// Without the default policy a token cannot call capabilities-self.
	sec2, err := e.Client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"docs"}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.NewClient(sec2.Auth.ClientToken).Sys().CapabilitiesSelf("secret/foo")
	if !denied(t, "capabilities-self without default", err) {
		t.Errorf("capabilities-self without the default policy was allowed")
	}
}

func TestPolicyCRUDThroughAPI(t *testing.T) {
	e := mustServer(t)
	sys := e.Client.Sys()
	if err := sys.PutPolicy("dev", `path "secret/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	got, err := sys.GetPolicy("dev")
	if err != nil || got != `path "secret/*" { capabilities = ["read"] }` {
		t.Fatalf("GetPolicy = %q, %v", got, err)
	}
	names, err := sys.ListPolicies()
	if err != nil || !reflect.DeepEqual(names, []string{"default", "dev", "root"}) {
		t.Fatalf("ListPolicies = %v, %v", names, err)
	}
	// The legacy endpoints.
	sec, err := e.Client.Logical().Read("sys/policy/dev")
	if err != nil || sec.Data["rules"] != got || sec.Data["name"] != "dev" {
		t.Fatalf("sys/policy/dev = %v, %v", sec, err)
	}
	sec, err = e.Client.Logical().Read("sys/policy")
	if err != nil || len(sec.Data["policies"].([]any)) != 3 {
		t.Fatalf("sys/policy = %v, %v", sec, err)
	}
	if def, err := sys.GetPolicy("default"); err != nil || !contains([]string{def}, `path "auth/token/lookup-self"`) {
		t.Fatalf("default policy = %q, %v", def, err)
	}
	// Names are lower-cased; a parse error is a 400 naming the line.
	err = sys.PutPolicy("Bad", "path \"x\" {\n  capabilities = [\"read\"\n}\n")
	if err == nil || !contains([]string{err.Error()}, "bad.hcl:") {
		t.Fatalf("bad policy accepted or without position: %v", err)
	}
	err = sys.PutPolicy("bad", `path "x" { capabilities = ["fly"] }`)
	if err == nil || !contains([]string{err.Error()}, `invalid capability "fly"`) {
		t.Fatalf("invalid capability: %v", err)
	}
	// root cannot be written or deleted; default can be written, not deleted.
	if err := sys.PutPolicy("root", `path "x" { capabilities = ["read"] }`); err == nil {
		t.Error("root policy was overwritten")
	}
	if err := sys.DeletePolicy("root"); err == nil {
		t.Error("root policy was deleted")
	}
	if err := sys.DeletePolicy("default"); err == nil {
		t.Error("default policy was deleted")
	}
	if err := sys.PutPolicy("default", `path "secret/d" { capabilities = ["read"] }`); err != nil {
		t.Errorf("default policy could not be updated: %v", err)
	}
	if err := sys.DeletePolicy("dev"); err != nil {
		t.Fatal(err)
	}
	if got, err := sys.GetPolicy("dev"); err != nil || got != "" {
		t.Fatalf("deleted policy still readable: %q, %v", got, err)
	}
	if err := sys.DeletePolicy("never-existed"); err != nil {
		t.Errorf("deleting a missing policy: %v", err)
	}
	// Policies survive a restart (they live in the barrier).
	if err := sys.PutPolicy("kept", `path "secret/k" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	e.Restart()
	if got, err := e.Client.Sys().GetPolicy("kept"); err != nil || got == "" {
		t.Fatalf("policy lost across restart: %q, %v", got, err)
	}
}
