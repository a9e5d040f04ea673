package userpass_test

import (
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// loginLeases lists the lease IDs under auth/<mount>/login/<user>/.
func loginLeases(t *testing.T, c *vaultapi.Client, mount, user string) []string {
	t.Helper()
	prefix := "auth/" + mount + "/login/" + user + "/"
	sec, err := c.Logical().List("sys/leases/lookup/" + prefix)
	if err != nil {
		t.Fatalf("list leases: %v", err)
	}
	if sec == nil {
		return nil
	}
	var out []string
	keys, _ := sec.Data["keys"].([]any)
	for _, k := range keys {
		out = append(out, prefix+k.(string))
	}
	return out
}

// A login token has a lease under auth/<mount>/login/<user>/ that lookup,
// revoke-prefix and revoke-force reach; revoking the lease revokes the
// token and its children. Tokens renew through auth/token/, and the lease
// follows.
func TestLoginTokensHaveLeases(t *testing.T) {
	s := devServer(t)
	c := s.Client
	enableUserpass(t, s, "userpass", map[string]map[string]any{"bob": {"token_ttl": "1h", "token_max_ttl": "10h"}})
	anon := s.NewClient("")
	tok := login(t, anon, "userpass", "bob").Auth.ClientToken
	leases := loginLeases(t, c, "userpass", "bob")
	if len(leases) != 1 || !strings.HasPrefix(leases[0], "auth/userpass/login/bob/h") {
		t.Fatalf("login leases: %v", leases)
	}
	look := mustWrite(t, c, "sys/leases/lookup", map[string]any{"lease_id": leases[0]})
	if look.Data["id"] != leases[0] || look.Data["renewable"] != true {
		t.Fatalf("lease lookup: %v", look.Data)
	}
	before, _ := look.Data["expire_time"].(string)
	// Renewal goes through the token; sys/leases/renew refuses.
	_, err := c.Sys().Renew(leases[0], 0)
	wantStatus(t, err, 400, "auth/token/renew")
	bc := s.NewClient(tok)
	if _, err := bc.Auth().Token().RenewSelf(7200); err != nil {
		t.Fatal(err)
	}
	look = mustWrite(t, c, "sys/leases/lookup", map[string]any{"lease_id": leases[0]})
	if after, _ := look.Data["expire_time"].(string); after <= before {
		t.Fatalf("lease expiry did not follow the renewed token: %s then %s", before, after)
	}

	// A child of the login token goes with it.
	if err := c.Sys().PutPolicy("default", `path "auth/token/*" { capabilities = ["create", "read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	child, err := bc.Auth().Token().Create(&vaultapi.TokenCreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().RevokePrefix("auth/userpass/login/bob"); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{tok, child.Auth.ClientToken} {
		if _, err := s.NewClient(tk).Auth().Token().LookupSelf(); statusOf(err) != 403 {
			t.Fatalf("token still valid after revoke-prefix: %v", err)
		}
	}
	if l := loginLeases(t, c, "userpass", "bob"); len(l) != 0 {
		t.Fatalf("leases left after revoke-prefix: %v", l)
	}

	// revoke-force and a single lease revocation work the same way.
	tok2 := login(t, anon, "userpass", "bob").Auth.ClientToken
	tok3 := login(t, anon, "userpass", "bob").Auth.ClientToken
	if err := c.Sys().RevokeForce("auth/userpass/login"); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{tok2, tok3} {
		if _, err := s.NewClient(tk).Auth().Token().LookupSelf(); statusOf(err) != 403 {
			t.Fatalf("token still valid after revoke-force: %v", err)
		}
	}
	tok4 := login(t, anon, "userpass", "bob").Auth.ClientToken
	if err := c.Sys().Revoke(loginLeases(t, c, "userpass", "bob")[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewClient(tok4).Auth().Token().LookupSelf(); statusOf(err) != 403 {
		t.Fatalf("token still valid after its lease was revoked: %v", err)
	}
	// Revoking the token removes its lease.
	tok5 := login(t, anon, "userpass", "bob").Auth.ClientToken
	if err := c.Auth().Token().RevokeTree(tok5); err != nil {
		t.Fatal(err)
	}
	if l := loginLeases(t, c, "userpass", "bob"); len(l) != 0 {
		t.Fatalf("lease left after its token was revoked: %v", l)
	}
	// Tokens from auth/token/create have leases too.
	if _, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Logical().List("sys/leases/lookup/auth/token/create/")
	if err != nil || sec == nil {
		t.Fatalf("token create leases: %v %v", sec, err)
	}
}

// Disabling an auth method revokes every token issued through it (service
// and batch, with their children) and their leases.
func TestDisablingAuthMountRevokesItsTokens(t *testing.T) {
	s := devServer(t)
	c := s.Client
	enableUserpass(t, s, "userpass", map[string]map[string]any{"alice": nil, "bat": {"token_type": "batch"}})
	enableUserpass(t, s, "other", map[string]map[string]any{"alice": nil})
	anon := s.NewClient("")
	svc := login(t, anon, "userpass", "alice").Auth.ClientToken
	batch := login(t, anon, "userpass", "bat").Auth.ClientToken
	keep := login(t, anon, "other", "alice").Auth.ClientToken
	if err := c.Sys().PutPolicy("default", `path "auth/token/*" { capabilities = ["create", "read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	child, err := s.NewClient(svc).Auth().Token().Create(&vaultapi.TokenCreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{svc, batch, child.Auth.ClientToken} {
		if _, err := s.NewClient(tk).Auth().Token().LookupSelf(); err != nil {
			t.Fatalf("token before disable: %v", err)
		}
	}
	if err := c.Sys().DisableAuth("userpass"); err != nil {
		t.Fatal(err)
	}
	for name, tk := range map[string]string{"service": svc, "batch": batch, "child": child.Auth.ClientToken} {
		if _, err := s.NewClient(tk).Auth().Token().LookupSelf(); statusOf(err) != 403 {
			t.Errorf("%s token still valid after its auth method was disabled: %v", name, err)
		}
	}
	if sec, err := c.Logical().List("sys/leases/lookup/auth/userpass/"); err != nil || sec != nil {
		t.Errorf("leases left under auth/userpass/: %v %v", sec, err)
	}
	if _, err := s.NewClient(keep).Auth().Token().LookupSelf(); err != nil {
		t.Errorf("a token of another mount was revoked: %v", err)
	}
}

// display_name is "<mount path>-<name>": two userpass mounts stay distinct.
func TestLoginDisplayNameNamesTheMount(t *testing.T) {
	s := devServer(t)
	enableUserpass(t, s, "userpass", map[string]map[string]any{"alice": nil})
	enableUserpass(t, s, "team/userpass", map[string]map[string]any{"alice": nil})
	anon := s.NewClient("")
	for mount, want := range map[string]string{"userpass": "userpass-alice", "team/userpass": "team-userpass-alice"} {
		tok := login(t, anon, mount, "alice").Auth.ClientToken
		look, err := s.Client.Auth().Token().Lookup(tok)
		if err != nil {
			t.Fatal(err)
		}
		if look.Data["display_name"] != want {
			t.Errorf("%s: display_name %v, want %s", mount, look.Data["display_name"], want)
		}
	}
}
