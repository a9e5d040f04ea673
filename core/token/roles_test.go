package token_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// Token roles: auth/token/roles/:name and auth/token/create/:name with
// allowed/disallowed policies, orphan, period, path suffix and bound CIDRs.
func TestTokenRoles(t *testing.T) {
	s := devServer(t)
	root := s.Client
	if _, err := root.Logical().Write("auth/token/roles/app", map[string]any{
		"allowed_policies": "app-read,app-write", "disallowed_policies": "admin", "orphan": true,
		"token_period": "1h", "path_suffix": "rel-1", "token_bound_cidrs": "127.0.0.1",
	}); err != nil {
		t.Fatal(err)
	}
	r, err := root.Logical().Read("auth/token/roles/app")
	if err != nil {
		t.Fatal(err)
	}
	if r.Data["name"] != "app" || r.Data["orphan"] != true || r.Data["token_period"] != json.Number("3600") ||
		r.Data["path_suffix"] != "rel-1" || r.Data["token_type"] != "default-service" || r.Data["renewable"] != true {
		t.Fatalf("role read: %v", r.Data)
	}
	if !reflect.DeepEqual(r.Data["allowed_policies"], []any{"app-read", "app-write"}) ||
		!reflect.DeepEqual(r.Data["token_bound_cidrs"], []any{"127.0.0.1/32"}) {
		t.Fatalf("role read lists: %v", r.Data)
	}
	list, err := root.Logical().List("auth/token/roles")
	if err != nil || list == nil || !reflect.DeepEqual(list.Data["keys"], []any{"app"}) {
		t.Fatalf("role list: %v %v", list, err)
	}

	// A token that may only use the role: the role vouches for policies the
	// creating token does not hold.
	if err := root.Sys().PutPolicy("role-user", `path "auth/token/create/app" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	user, err := root.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"role-user"}})
	if err != nil {
		t.Fatal(err)
	}
	uc := s.NewClient(user.Auth.ClientToken)
	sec, err := uc.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{}, "app")
	if err != nil {
		t.Fatal(err)
	}
	a := sec.Auth
	if !reflect.DeepEqual(a.Policies, []string{"app-read", "app-write", "default"}) || !a.Orphan || a.LeaseDuration != 3600 {
		t.Fatalf("role token: %+v", a)
	}
	look, err := root.Auth().Token().Lookup(a.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	if look.Data["path"] != "auth/token/create/app/rel-1" || look.Data["role"] != "app" || look.Data["period"] != json.Number("3600") {
		t.Fatalf("role token lookup: %v", look.Data)
	}
	// Narrower policies are fine; others and disallowed ones are not.
	sec, err = uc.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{Policies: []string{"app-read"}}, "app")
	if err != nil || !reflect.DeepEqual(sec.Auth.Policies, []string{"app-read", "default"}) {
		t.Fatalf("narrower role token: %v %v", sec, err)
	}
	for _, bad := range [][]string{{"app-read", "other"}, {"admin"}} {
		_, err := uc.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{Policies: bad}, "app")
		if statusOf(err) != 400 {
			t.Fatalf("role token with %v: %v", bad, err)
		}
	}
	// Without the role the same caller cannot create such a token.
	if _, err := uc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"app-read"}}); statusOf(err) != 403 {
		t.Fatalf("plain create: %v", err)
	}
	_, err = root.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{}, "nope")
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "unknown role") {
		t.Fatalf("unknown role: %v", err)
	}

	// The role's bound CIDRs hold for its tokens: 127.0.0.2 is refused.
	if _, err := s.NewClient(a.ClientToken).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("role token from its address: %v", err)
	}
	if _, err := s.NewClientFrom(a.ClientToken, "127.0.0.2").Auth().Token().LookupSelf(); statusOf(err) != 403 {
		t.Fatalf("role token from outside its CIDRs: %v", err)
	}

	// A role with only disallowed policies: the parent's policies, minus
	// the disallowed ones, and the subset rule of the parent holds.
	if _, err := root.Logical().Write("auth/token/roles/limited", map[string]any{"disallowed_policies": "secret-admin", "renewable": false,
		"token_type": "service", "token_explicit_max_ttl": "2h"}); err != nil {
		t.Fatal(err)
	}
	sec, err = root.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{Policies: []string{"ops"}, TTL: "5h"}, "limited")
	if err != nil {
		t.Fatal(err)
	}
	if sec.Auth.Renewable || sec.Auth.Orphan || sec.Auth.LeaseDuration != 7200 {
		t.Fatalf("limited role token: %+v", sec.Auth)
	}
	_, err = root.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{Policies: []string{"secret-admin"}}, "limited")
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "disallowed") {
		t.Fatalf("disallowed policy: %v", err)
	}
	_, err = root.Auth().Token().CreateWithRole(&vaultapi.TokenCreateRequest{Type: "batch"}, "limited")
	if statusOf(err) != 400 {
		t.Fatalf("batch token from a service-only role: %v", err)
	}

	if _, err := root.Logical().Write("auth/token/roles/bad", map[string]any{"path_suffix": "no/slashes"}); statusOf(err) != 400 {
		t.Fatalf("bad path suffix: %v", err)
	}
	if _, err := root.Logical().Delete("auth/token/roles/limited"); err != nil {
		t.Fatal(err)
	}
	if r, err := root.Logical().Read("auth/token/roles/limited"); err != nil || r != nil {
		t.Fatalf("deleted role: %v %v", r, err)
	}
}

// entity_alias is refused rather than ignored: the token would lack the
// identity the caller asked for.
func TestTokenCreateRefusesEntityAlias(t *testing.T) {
	s := devServer(t)
	_, err := s.Client.Auth().Token().Create(&vaultapi.TokenCreateRequest{EntityAlias: "alice"})
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "entity_alias") {
		t.Fatalf("entity_alias: %v", err)
	}
}
