package itest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vigilsec/vigil/core/server/servertest"
)

// jwtIssuer signs test tokens with its own RSA key.
type jwtIssuer struct {
	key    *rsa.PrivateKey
	pubPEM string
}

func newJWTIssuer(t *testing.T) *jwtIssuer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtIssuer{key: k, pubPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
}

func (j *jwtIssuer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: j.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestJWTLoginStaticKeys: a workload logs in with a JWT checked against a
// static public key. The role binds the audience, an issuer, a glob bound
// claim; the user claim names the entity alias, claim_mappings fill its
// metadata, and the groups claim puts the entity in the external group
// mapped to it (whose policy the token then carries). Each binding
// violated once is refused with a 4xx naming it, and audited.
func TestJWTLoginStaticKeys(t *testing.T) {
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "jwt", "jwt")
	iss := newJWTIssuer(t)
	mustWriteAPI(t, c, "auth/jwt/config", map[string]any{"jwt_validation_pubkeys": []string{iss.pubPEM},
		"bound_issuer": "https://ci.example.test"})
	mustWriteAPI(t, c, "auth/jwt/role/ci", map[string]any{
		"role_type": "jwt", "bound_audiences": "vigil", "user_claim": "email",
		"bound_claims_type": "glob", "bound_claims": map[string]any{"department": []string{"icu-*", "er"}},
		"claim_mappings": map[string]any{"name": "full_name", "/team/id": "team"},
		"groups_claim":   "groups", "token_policies": "app", "token_ttl": "1h",
	})
	groupID := externalGroup(t, c, "icu-clinicians", "icu", "icu", acc)

	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": "https://ci.example.test", "sub": "u-1", "aud": []string{"vigil"},
			"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "email": "carol@vigil.test",
			"name": "Carol Jones", "team": map[string]any{"id": 7}, "department": "icu-north", "groups": []string{"icu", "staff"}}
	}
	anon := s.NewClient("")
	login := func(claims map[string]any) error {
		sec, err := anon.Logical().Write("auth/jwt/login", map[string]any{"role": "ci", "jwt": iss.sign(t, claims)})
		if err == nil {
			entity := wantLogin(t, s.Server, sec, err, acc, "carol@vigil.test", "app", "icu", "default")
			// The group's policy comes from identity, the role's from the token.
			if !slices.Contains(sec.Auth.TokenPolicies, "app") || slices.Contains(sec.Auth.TokenPolicies, "icu") {
				t.Fatalf("token policies %v", sec.Auth.TokenPolicies)
			}
			if _, err := s.NewClient(sec.Auth.ClientToken).Logical().Read("secret/data/icu/beds"); err != nil {
				t.Fatalf("group policy not applied: %v", err)
			}
			al, err := c.Logical().Read("identity/entity/id/" + entity)
			if err != nil {
				t.Fatal(err)
			}
			meta := al.Data["aliases"].([]any)[0].(map[string]any)["metadata"].(map[string]any)
			if meta["full_name"] != "Carol Jones" || meta["team"] != "7" {
				t.Fatalf("alias metadata %v", meta)
			}
			if sec.Auth.Metadata["role"] != "ci" {
				t.Fatalf("token metadata %v", sec.Auth.Metadata)
			}
		}
		return err
	}
	if err := login(good()); err != nil {
		t.Fatal(err)
	}
	t.Run("group change applies to the next request", func(t *testing.T) {
		sec, err := anon.Logical().Write("auth/jwt/login", map[string]any{"role": "ci", "jwt": iss.sign(t, good())})
		if err != nil {
			t.Fatal(err)
		}
		tok := s.NewClient(sec.Auth.ClientToken)
		if _, err := tok.Logical().Read("secret/data/icu/beds"); err != nil {
			t.Fatal(err)
		}
		mustWriteAPI(t, c, "identity/group/id/"+groupID, map[string]any{"policies": ""})
		_, err = tok.Logical().Read("secret/data/icu/beds")
		wantStatus(t, err, 403)
		mustWriteAPI(t, c, "identity/group/id/"+groupID, map[string]any{"policies": "icu"})
		if _, err := tok.Logical().Read("secret/data/icu/beds"); err != nil {
			t.Fatalf("policy given back: %v", err)
		}
	})

	const path = "auth/jwt/login"
	for name, tc := range map[string]struct {
		edit   func(m map[string]any)
		reason string
	}{
		"wrong audience":    {func(m map[string]any) { m["aud"] = []string{"billing"} }, "does not match any bound audience"},
		"expired":           {func(m map[string]any) { m["exp"] = now.Add(-10 * time.Minute).Unix() }, "token is expired"},
		"not yet valid":     {func(m map[string]any) { m["nbf"] = now.Add(10 * time.Minute).Unix() }, "token is not valid yet"},
		"bound claim":       {func(m map[string]any) { m["department"] = "radiology" }, `claim "department" does not match`},
		"missing claim":     {func(m map[string]any) { delete(m, "department") }, `claim "department" is missing`},
		"wrong issuer":      {func(m map[string]any) { m["iss"] = "https://other.example.test" }, "issued by a different provider"},
		"no user claim":     {func(m map[string]any) { delete(m, "email") }, `claim "email" not found`},
		"groups not a list": {func(m map[string]any) { m["groups"] = map[string]any{"a": 1} }, "is not a list of strings"},
	} {
		t.Run(name, func(t *testing.T) {
			m := good()
			tc.edit(m)
			wantRefused(t, dir, login(m), path, tc.reason)
		})
	}
	t.Run("untrusted key", func(t *testing.T) {
		other := newJWTIssuer(t)
		_, err := anon.Logical().Write(path, map[string]any{"role": "ci", "jwt": other.sign(t, good())})
		wantRefused(t, dir, err, path, "error validating token")
	})
	t.Run("unknown role", func(t *testing.T) {
		_, err := anon.Logical().Write(path, map[string]any{"role": "nope", "jwt": iss.sign(t, good())})
		wantRefused(t, dir, err, path, `role "nope" could not be found`)
	})
	t.Run("role validation", func(t *testing.T) {
		_, err := c.Logical().Write("auth/jwt/role/bad", map[string]any{"role_type": "jwt"})
		wantStatus(t, err, 400)
		_, err = c.Logical().Write("auth/jwt/role/bad", map[string]any{"user_claim": "sub"})
		wantStatus(t, err, 400) // an oidc role needs allowed_redirect_uris
	})
	t.Run("config read hides nothing it should not", func(t *testing.T) {
		cfg, err := c.Logical().Read("auth/jwt/config")
		if err != nil || cfg.Data["bound_issuer"] != "https://ci.example.test" {
			t.Fatalf("config: %v %v", cfg, err)
		}
	})
}
