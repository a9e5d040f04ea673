package itest

import (
	"net/http"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

func TestUserpassLogin(t *testing.T) {
	s := devServer(t)
	c := s.Client
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	if auths["userpass/"] == nil || auths["token/"] == nil {
		t.Fatalf("auth list: %v", auths)
	}
	if _, err := c.Logical().Write("auth/userpass/users/alice", map[string]any{"password": "correct horse", "token_policies": "dev,ops", "token_ttl": "30m"}); err != nil {
		t.Fatal(err)
	}
	u, err := c.Logical().Read("auth/userpass/users/alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, leaked := u.Data["password"]; leaked {
		t.Fatal("user read returns the password")
	}
	anon := s.NewClient("")
	sec, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Auth == nil || sec.Auth.ClientToken == "" || sec.Auth.LeaseDuration != 1800 {
		t.Fatalf("login auth: %+v", sec.Auth)
	}
	want := map[string]bool{"default": true, "dev": true, "ops": true}
	for _, p := range sec.Auth.Policies {
		delete(want, p)
	}
	if len(want) != 0 {
		t.Fatalf("policies %v missing %v", sec.Auth.Policies, want)
	}
	look, err := c.Auth().Token().Lookup(sec.Auth.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	if look.Data["display_name"] != "userpass-alice" || look.Data["path"] != "auth/userpass/login/alice" {
		t.Fatalf("lookup-self: %v", look.Data)
	}
	// Wrong password and unknown user fail the same way.
	_, err = anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "wrong"})
	wantStatus(t, err, http.StatusBadRequest)
	_, err = anon.Logical().Write("auth/userpass/login/mallory", map[string]any{"password": "x"})
	wantStatus(t, err, http.StatusBadRequest)
	// A user's token is not root: until policies grant something it is denied.
	_, err = s.NewClient(sec.Auth.ClientToken).Logical().Read("sys/mounts")
	wantStatus(t, err, http.StatusForbidden)
}

func TestAppRoleLogin(t *testing.T) {
	s := devServer(t)
	c := s.Client
	if err := c.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/approle/role/web", map[string]any{"token_policies": "web", "secret_id_num_uses": 2, "token_ttl": "10m"}); err != nil {
		t.Fatal(err)
	}
	rid, err := c.Logical().Read("auth/approle/role/web/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := c.Logical().Write("auth/approle/role/web/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	anon := s.NewClient("")
	creds := map[string]any{"role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"]}
	for i := 0; i < 2; i++ {
		sec, err := anon.Logical().Write("auth/approle/login", creds)
		if err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
		if sec.Auth.LeaseDuration != 600 || sec.Auth.Metadata["role_name"] != "web" {
			t.Fatalf("auth: %+v", sec.Auth)
		}
	}
	// The secret ID had two uses.
	_, err = anon.Logical().Write("auth/approle/login", creds)
	wantStatus(t, err, http.StatusBadRequest)
	_, err = anon.Logical().Write("auth/approle/login", map[string]any{"role_id": rid.Data["role_id"], "secret_id": "nope"})
	wantStatus(t, err, http.StatusBadRequest)
}

func TestChildTokenPoliciesMustBeSubset(t *testing.T) {
	s := devServer(t)
	c := s.Client
	if err := c.Sys().PutPolicy("creator", `path "auth/token/create" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	parent, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"creator"}})
	if err != nil {
		t.Fatal(err)
	}
	pc := s.NewClient(parent.Auth.ClientToken)
	if _, err := pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"creator"}}); err != nil {
		t.Fatalf("subset child refused: %v", err)
	}
	_, err = pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"admin"}})
	wantStatus(t, err, http.StatusForbidden)
	_, err = pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"root"}})
	wantStatus(t, err, http.StatusForbidden)
	// A non-root token cannot pick its child's ID or make orphans.
	_, err = pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{ID: "hvs.mine", Policies: []string{"creator"}})
	wantStatus(t, err, http.StatusForbidden)
	_, err = pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{NoParent: true, Policies: []string{"creator"}})
	wantStatus(t, err, http.StatusForbidden)
	// Children inherit the parent's policies when none are given.
	child, err := pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := child.Auth.Policies; len(got) != 2 || got[0] != "creator" && got[1] != "creator" {
		t.Fatalf("inherited policies: %v", got)
	}
}
