package itest

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/vigilsec/vigil/core/auth/jwtauth/oidctest"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// The OpenID provider started by .ci/services/oidc.sh (the example OP of
// github.com/zitadel/oidc/v3) registers these redirect URIs for client
// "web"; tests stop at the redirect and never need a listener there.
const opRedirect = "http://localhost:18250/oidc/callback"

type opEnv struct{ issuer, clientID, secret string }

func oidcProvider(t *testing.T) opEnv {
	t.Helper()
	return opEnv{issuer: testsvc.Env(t, "VIGIL_TEST_OIDC_ISSUER"), clientID: testsvc.Env(t, "VIGIL_TEST_OIDC_CLIENT_ID"),
		secret: testsvc.Env(t, "VIGIL_TEST_OIDC_CLIENT_SECRET")}
}

// opAuthorize plays the browser up to the redirect back to the client.
func opAuthorize(t *testing.T, authURL, user, password string) *url.URL {
	t.Helper()
	return oidctest.Authorize(t, authURL, user, password, false)
}

// opIDToken runs the code flow as its own client and returns the ID token
// the provider issued for user (used as a workload's JWT).
func opIDToken(t *testing.T, op opEnv, user, password string) string {
	t.Helper()
	oc := &oauth2.Config{ClientID: op.clientID, ClientSecret: op.secret, RedirectURL: opRedirect, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: op.issuer + "auth", TokenURL: op.issuer + "oauth/token"}}
	verifier := oauth2.GenerateVerifier()
	back := opAuthorize(t, oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), user, password)
	tok, err := oc.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	id, _ := tok.Extra("id_token").(string)
	if id == "" {
		t.Fatal("no id_token")
	}
	return id
}

// TestOIDCAuthCodeFlow drives a person's OIDC login against the real
// OpenID provider, browser-less: auth_url (with a PKCE challenge and a
// nonce), the provider's login form, the callback with the code. The
// role's bound claim, claim mapping and user claim come from the ID token
// and the userinfo endpoint. A replayed state, a wrong client nonce, a
// redirect URI the role does not allow and an unmatched bound claim are
// refused with a 4xx and audited.
func TestOIDCAuthCodeFlow(t *testing.T) {
	op := oidcProvider(t)
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "oidc", "oidc")
	mustWriteAPI(t, c, "auth/oidc/config", map[string]any{"oidc_discovery_url": op.issuer,
		"oidc_client_id": op.clientID, "oidc_client_secret": op.secret, "default_role": "human"})
	mustWriteAPI(t, c, "auth/oidc/role/human", map[string]any{"user_claim": "email", "allowed_redirect_uris": opRedirect,
		"oidc_scopes": "profile,email", "claim_mappings": map[string]any{"preferred_username": "username"},
		"bound_claims": map[string]any{"email_verified": "true"}, "token_policies": "app"})
	mustWriteAPI(t, c, "auth/oidc/role/dave-only", map[string]any{"user_claim": "email", "allowed_redirect_uris": opRedirect,
		"oidc_scopes": "email", "bound_claims_type": "glob", "bound_claims": map[string]any{"email": "dave@*"}, "token_policies": "app"})
	if cfg, err := c.Logical().Read("auth/oidc/config"); err != nil || cfg.Data["oidc_client_secret"] != nil {
		t.Fatalf("config read: %v %v", cfg, err)
	}
	anon := s.NewClient("")
	start := func(role, nonce string) *url.URL {
		sec, err := anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"role": role, "redirect_uri": opRedirect, "client_nonce": nonce})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(sec.Data["auth_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Fatalf("auth_url lacks PKCE, nonce or state: %s", u)
		}
		if !strings.Contains(q.Get("scope"), "email") || !strings.Contains(q.Get("scope"), "openid") {
			t.Fatalf("auth_url scopes: %q", q.Get("scope"))
		}
		return u
	}
	callback := func(back *url.URL, nonce string) error {
		q := back.Query()
		sec, err := anon.Logical().ReadWithData("auth/oidc/oidc/callback", map[string][]string{
			"state": {q.Get("state")}, "code": {q.Get("code")}, "client_nonce": {nonce}})
		if err == nil {
			entity := wantLogin(t, s.Server, sec, err, acc, "carol@vigil.test", "app", "default")
			ent, _ := c.Logical().Read("identity/entity/id/" + entity)
			meta := ent.Data["aliases"].([]any)[0].(map[string]any)["metadata"].(map[string]any)
			if meta["username"] != "carol" {
				t.Fatalf("alias metadata %v (preferred_username from userinfo)", meta)
			}
		}
		return err
	}

	back := opAuthorize(t, start("", "n-1").String(), "carol", "carol-pw")
	if err := callback(back, "n-1"); err != nil {
		t.Fatalf("OIDC login: %v", err)
	}
	const path = "auth/oidc/oidc/callback"
	t.Run("replayed state", func(t *testing.T) {
		wantRefused(t, dir, callback(back, "n-1"), path, "Expired or missing OAuth state")
	})
	t.Run("wrong client nonce", func(t *testing.T) {
		back := opAuthorize(t, start("human", "n-2").String(), "carol", "carol-pw")
		wantRefused(t, dir, callback(back, "n-other"), path, "invalid client_nonce")
	})
	t.Run("bound claim", func(t *testing.T) {
		back := opAuthorize(t, start("dave-only", "n-3").String(), "carol", "carol-pw")
		wantRefused(t, dir, callback(back, "n-3"), path, `claim "email" does not match`)
	})
	t.Run("redirect not allowed", func(t *testing.T) {
		_, err := anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"role": "human", "redirect_uri": "https://evil.example/cb"})
		wantRefused(t, dir, err, "auth/oidc/oidc/auth_url", "unauthorized redirect_uri")
	})
	t.Run("jwt login with an oidc role", func(t *testing.T) {
		_, err := anon.Logical().Write("auth/oidc/login", map[string]any{"role": "human", "jwt": opIDToken(t, op, "carol", "carol-pw")})
		wantRefused(t, dir, err, "auth/oidc/login", "is an oidc role")
	})
}

// TestJWTLoginWithDiscovery: a JWT issued by the real provider logs in
// through discovery-based key fetching; its audience is bound.
func TestJWTLoginWithDiscovery(t *testing.T) {
	op := oidcProvider(t)
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "jwt", "jwt")
	mustWriteAPI(t, c, "auth/jwt/config", map[string]any{"oidc_discovery_url": op.issuer})
	mustWriteAPI(t, c, "auth/jwt/role/svc", map[string]any{"role_type": "jwt", "user_claim": "sub",
		"bound_audiences": op.clientID, "token_policies": "app"})
	mustWriteAPI(t, c, "auth/jwt/role/other-aud", map[string]any{"role_type": "jwt", "user_claim": "sub",
		"bound_audiences": "not-" + op.clientID, "token_policies": "app"})
	idt := opIDToken(t, op, "dave", "dave-pw")
	anon := s.NewClient("")
	sec, err := anon.Logical().Write("auth/jwt/login", map[string]any{"role": "svc", "jwt": idt})
	wantLogin(t, s.Server, sec, err, acc, "u-dave", "app")
	_, err = anon.Logical().Write("auth/jwt/login", map[string]any{"role": "other-aud", "jwt": idt})
	wantRefused(t, dir, err, "auth/jwt/login", "does not match any bound audience")
	// A discovery URL that is not a provider is refused when configured.
	_, err = c.Logical().Write("auth/jwt/config", map[string]any{"oidc_discovery_url": s.URL + "/v1/sys/health"})
	wantStatus(t, err, 400)
}
