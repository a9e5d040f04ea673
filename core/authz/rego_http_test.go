package authz_test

import (
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	vrego "github.com/vigilsec/vigil/rego"
)

func example(t *testing.T, name string) string {
	t.Helper()
	src, ok := vrego.Examples()[name]
	if !ok {
		t.Fatalf("no example %s", name)
	}
	return src
}

func TestExampleBusinessHours(t *testing.T) {
	e := mustServer(t)
	e.putPolicy(t, "prod", `path "secret/data/prod/*" { capabilities = ["read"] }`)
	if err := e.putRego(t, "business_hours", example(t, "business_hours"), "mandatory"); err != nil {
		t.Fatal(err)
	}
	// Friday 2024-06-07 16:00 UTC: allowed. (Tokens live 24 h at most, so
	// the clock stays within a day of the token's creation.)
	e.clock.Set(time.Date(2024, 6, 7, 16, 0, 0, 0, time.UTC))
	c := e.token(t, nil, "prod")
	if !do(t, c, "read", "secret/data/prod/db", nil, nil) {
		t.Errorf("denied during business hours: %+v", e.tap.last("secret/data/prod/db"))
	}
	// 17:30: denied at once (modules reading the time are never cached).
	e.clock.Set(time.Date(2024, 6, 7, 17, 30, 0, 0, time.UTC))
	if do(t, c, "read", "secret/data/prod/db", nil, nil) {
		t.Fatal("allowed at 17:30")
	}
	d := e.tap.last("secret/data/prod/db")
	if d == nil || !contains(d.DenyReasons, "rego business_hours: secret/data/prod/db is only accessible Monday-Friday") {
		t.Errorf("deny reason not recorded: %+v", d)
	}
	// Saturday 10:00: denied; other paths are not affected.
	e.clock.Set(time.Date(2024, 6, 8, 10, 0, 0, 0, time.UTC))
	if do(t, c, "read", "secret/data/prod/db", nil, nil) {
		t.Error("allowed on a Saturday")
	}
	if !do(t, c, "read", "auth/token/lookup-self", nil, nil) {
		t.Error("lookup-self denied on a Saturday")
	}
}

func TestExampleCIDRAllowlist(t *testing.T) {
	e := mustServer(t)
	e.putPolicy(t, "dev", `path "secret/*" { capabilities = ["read"] }`)
	c := e.token(t, nil, "dev")
	if err := e.putRego(t, "cidr_allowlist", example(t, "cidr_allowlist"), "mandatory"); err != nil {
		t.Fatal(err)
	}
	// The test client connects from 127.0.0.1, which the example allows.
	if !do(t, c, "read", "secret/a", nil, nil) {
		t.Fatalf("denied from loopback: %+v", e.tap.last("secret/a"))
	}
	// Narrow the list to 10.0.0.0/8: the cached allow must not survive.
	narrow := strings.Replace(example(t, "cidr_allowlist"),
		`["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "::1/128"]`, `["10.0.0.0/8"]`, 1)
	if narrow == example(t, "cidr_allowlist") {
		t.Fatal("example changed; update the test")
	}
	if err := e.putRego(t, "cidr_allowlist", narrow, "mandatory"); err != nil {
		t.Fatal(err)
	}
	if do(t, c, "read", "secret/a", nil, nil) {
		t.Fatal("allowed from 127.0.0.1 outside 10.0.0.0/8")
	}
	if d := e.tap.last("secret/a"); d == nil || !contains(d.DenyReasons, `client address "127.0.0.1" is not in the allowed networks`) {
		t.Errorf("deny reason: %+v", d)
	}
	// Advisory: recorded, not enforced.
	if err := e.putRego(t, "cidr_allowlist", narrow, "advisory"); err != nil {
		t.Fatal(err)
	}
	if !do(t, c, "read", "secret/a", nil, nil) {
		t.Fatal("advisory module denied")
	}
	if d := e.tap.last("secret/a"); d == nil || !contains(d.Advisories, "127.0.0.1") || len(d.DenyReasons) != 0 {
		t.Errorf("advisory not recorded: %+v", d)
	}
}

func TestExampleBreakGlass(t *testing.T) {
	e := mustServer(t)
	if err := e.putRego(t, "break_glass", example(t, "break_glass"), "mandatory"); err != nil {
		t.Fatal(err)
	}
	bg := e.token(t, map[string]string{"break_glass": "true"}, "default")
	const path = "secret/data/prod/db"
	if do(t, bg, "read", path, nil, nil) {
		t.Fatal("break-glass token allowed without a reason")
	}
	if d := e.tap.last(path); d == nil || !contains(d.DenyReasons, "X-Vigil-Reason") {
		t.Errorf("deny reason: %+v", d)
	}
	if !do(t, bg, "read", path, nil, map[string]string{"X-Vigil-Reason": "INC-42 db down", "X-Vigil-Ticket": "INC-42"}) {
		t.Fatalf("break-glass with a reason denied: %+v", e.tap.last(path))
	}
	d := e.tap.last(path)
	if d == nil || d.Flags["break_glass"] != "true" || d.Flags["break_glass_reason"] != "INC-42 db down" || d.Flags["break_glass_ticket"] != "INC-42" {
		t.Errorf("audit flags: %+v", d)
	}
	if d == nil || len(d.GrantingPolicies) != 1 || d.GrantingPolicies[0].Name != "break_glass" || d.GrantingPolicies[0].Type != "rego" {
		t.Errorf("granting policies: %+v", d)
	}
	// sys/ is out of reach even with a reason.
	if do(t, bg, "read", "sys/policies/acl/default", nil, map[string]string{"X-Vigil-Reason": "x"}) {
		t.Error("break-glass reached sys/")
	}
	// Ordinary tokens are unaffected: no grant, no flag.
	plain := e.token(t, nil, "default")
	if do(t, plain, "read", path, nil, map[string]string{"X-Vigil-Reason": "please"}) {
		t.Error("ordinary token granted by break_glass")
	}
}

func TestExamplePHITokenAge(t *testing.T) {
	e := mustServer(t)
	if err := e.Client.Sys().Mount("phi", &vaultapi.MountInput{Type: "memkv", Options: map[string]string{"phi": "true"}}); err != nil {
		t.Fatal(err)
	}
	e.putPolicy(t, "clin", `
path "phi/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/*" { capabilities = ["create", "read", "update", "delete"] }
`)
	if err := e.putRego(t, "phi_token_age", example(t, "phi_token_age"), "mandatory"); err != nil {
		t.Fatal(err)
	}
	c := e.token(t, nil, "clin")
	if !do(t, c, "write", "phi/patient", nil, nil) {
		t.Fatalf("young token denied: %+v", e.tap.last("phi/patient"))
	}
	e.clock.Add(2 * time.Hour)
	if do(t, c, "write", "phi/patient", nil, nil) {
		t.Fatal("2h-old token wrote to a PHI mount")
	}
	if d := e.tap.last("phi/patient"); d == nil || !contains(d.DenyReasons, "writes to PHI mount phi/") {
		t.Errorf("deny reason: %+v", d)
	}
	if !do(t, c, "read", "phi/patient", nil, nil) {
		t.Error("read denied for an old token")
	}
	if !do(t, c, "write", "secret/x", nil, nil) {
		t.Error("write to an untagged mount denied")
	}
	fresh := e.token(t, nil, "clin")
	if !do(t, fresh, "write", "phi/patient", nil, nil) {
		t.Error("fresh token denied")
	}
}

func TestRegoModuleCRUD(t *testing.T) {
	e := mustServer(t)
	src := example(t, "cidr_allowlist")
	if err := e.putRego(t, "cidr_allowlist", src, "advisory"); err != nil {
		t.Fatal(err)
	}
	sec, err := e.Client.Logical().Read("sys/policies/rego/cidr_allowlist")
	if err != nil || sec.Data["policy"] != src || sec.Data["enforcement_level"] != "advisory" {
		t.Fatalf("read = %v, %v", sec, err)
	}
	ls, err := e.Client.Logical().List("sys/policies/rego")
	if err != nil || len(ls.Data["keys"].([]any)) != 1 {
		t.Fatalf("list = %v, %v", ls, err)
	}
	if _, err := e.Client.Logical().Delete("sys/policies/rego/cidr_allowlist"); err != nil {
		t.Fatal(err)
	}
	if sec, err := e.Client.Logical().Read("sys/policies/rego/cidr_allowlist"); err != nil || sec != nil {
		t.Fatalf("deleted module readable: %v, %v", sec, err)
	}
}
