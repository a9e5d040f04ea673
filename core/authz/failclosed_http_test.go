package authz_test

import (
	"strings"
	"testing"
)

func TestBrokenModuleRejectedWithLine(t *testing.T) {
	e := mustServer(t)
	cases := map[string]struct{ src, want string }{
		"syntax":  {"package vigil.custom.syntax\n\ndeny contains \"x\" if {\n\tinput.request.path ==\n}\n", "syntax.rego:5"},
		"undef":   {"package vigil.custom.undef\n\ndeny contains x if {\n\tx := no_such_function(input.request.path)\n}\n", "undef.rego:4"},
		"network": {"package vigil.custom.network\n\ndeny contains \"x\" if {\n\thttp.send({\"method\": \"get\", \"url\": \"http://example.invalid\"})\n}\n", "network.rego:4"},
		"pkg":     {"package vigil.custom.other\n\ndeny contains \"x\" if false\n", `package must be "vigil.custom.pkg"`},
		"norules": {"package vigil.custom.norules\n\nhelper := 1\n", "defines none of the rules"},
	}
	for name, c := range cases {
		err := e.putRego(t, name, c.src, "mandatory")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, c.want)
		}
	}
	if ls, err := e.Client.Logical().List("sys/policies/rego"); err != nil || ls != nil {
		t.Errorf("rejected modules were stored: %v, %v", ls, err)
	}
	if err := e.putRego(t, "lvl", "package vigil.custom.lvl\n\ndeny contains \"x\" if false\n", "sometimes"); err == nil {
		t.Error("invalid enforcement level accepted")
	}
}

func TestEvaluationErrorDenies(t *testing.T) {
	e := mustServer(t)
	e.putPolicy(t, "dev", `path "secret/*" { capabilities = ["read"] }`)
	c := e.token(t, nil, "dev")
	if !do(t, c, "read", "secret/a", nil, nil) {
		t.Fatal("denied before the broken module")
	}
	// Compiles, but two definitions of the same flag conflict at run time.
	conflict := "package vigil.custom.conflict\n\nflags[\"x\"] := \"a\" if input.request.path != \"\"\n\nflags[\"x\"] := \"b\" if input.request.path != \"\"\n"
	if err := e.putRego(t, "conflict", conflict, "advisory"); err != nil {
		t.Fatalf("module rejected: %v", err)
	}
	// Even an advisory module that fails to evaluate denies: never allow
	// because evaluation broke.
	if do(t, c, "read", "secret/a", nil, nil) {
		t.Fatal("allowed although policy evaluation failed")
	}
	d := e.tap.last("secret/a")
	if d == nil || d.Allowed || d.Error == "" || !contains(d.DenyReasons, "policy evaluation failed") {
		t.Errorf("audit decision: %+v", d)
	}
	// Root is still served (as in Vault, modules do not apply to root), so
	// the module can be removed.
	if _, err := e.Client.Logical().Delete("sys/policies/rego/conflict"); err != nil {
		t.Fatal(err)
	}
	if !do(t, c, "read", "secret/a", nil, nil) {
		t.Error("still denied after the broken module was removed")
	}
}

func TestCacheInvalidatedWhenPolicyTightened(t *testing.T) {
	e := mustServer(t)
	e.putPolicy(t, "app", `path "secret/app/*" { capabilities = ["read", "update"] }`)
	if _, err := e.Client.Logical().Write("secret/app/other", map[string]any{"v": "seed"}); err != nil {
		t.Fatal(err) // so that writes below are updates, not creates
	}
	c := e.token(t, nil, "app")
	for i := 0; i < 3; i++ { // the second and third are cache hits
		if !do(t, c, "read", "secret/app/db", nil, nil) {
			t.Fatal("denied before tightening")
		}
	}
	hits, _ := e.sub.A.Stats()
	if hits == 0 {
		t.Fatal("decision cache never hit")
	}
	e.putPolicy(t, "app", `
path "secret/app/*" { capabilities = ["update"] }
path "secret/app/db" { capabilities = ["deny"] }
`)
	if do(t, c, "read", "secret/app/db", nil, nil) {
		t.Fatal("stale cached allow after the policy was tightened")
	}
	if !do(t, c, "write", "secret/app/other", nil, nil) {
		t.Error("update still granted elsewhere was denied")
	}
	// Deleting the policy removes the rest.
	if err := e.Client.Sys().DeletePolicy("app"); err != nil {
		t.Fatal(err)
	}
	if do(t, c, "write", "secret/app/other", nil, nil) {
		t.Error("allowed after the policy was deleted")
	}
}

func TestExplainAPI(t *testing.T) {
	e := mustServer(t)
	e.putPolicy(t, "dev", `path "secret/*" { capabilities = ["read", "list"] }
path "secret/locked" { capabilities = ["deny"] }`)
	c := e.token(t, nil, "dev")
	lk, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	acc := lk.Data["accessor"].(string)
	sec, err := e.Client.Logical().Write("sys/policies/explain", map[string]any{"accessor": acc, "path": "secret/foo", "operation": "read"})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := sec.Data["matched_rule"].(map[string]any)
	if sec.Data["allowed"] != true || m["pattern"] != "secret/*" || m["kind"] != "prefix" || sec.Data["mount"] != "secret/" {
		t.Errorf("explain allow: %v", sec.Data)
	}
	sec, err = e.Client.Logical().Write("sys/policies/explain", map[string]any{"accessor": acc, "path": "secret/locked", "operation": "read"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["allowed"] != false || !strings.Contains(sec.Data["deny_reasons"].([]any)[0].(string), "explicitly denied") {
		t.Errorf("explain deny: %v", sec.Data)
	}
	// Root-protected routes are explained with sudo required.
	sec, err = e.Client.Logical().Write("sys/policies/explain", map[string]any{"accessor": acc, "path": "auth/token/accessors", "operation": "list"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["sudo_required"] != true || sec.Data["allowed"] != false {
		t.Errorf("explain sudo: %v", sec.Data)
	}
	// Explaining needs the capability on sys/policies/explain.
	if _, err := c.Logical().Write("sys/policies/explain", map[string]any{"accessor": acc, "path": "secret/foo"}); !denied(t, "explain by dev", err) {
		t.Error("dev token could explain")
	}
}
