package jwtauth

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func claimsOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClaimValueJSONPointer(t *testing.T) {
	c := claimsOf(t, `{"a":{"b/c":{"d~e":[10,{"f":"x"}]}},"top":"t"}`)
	for ptr, want := range map[string]string{"top": "t", "/top": "t", "/a/b~1c/d~0e/0": "10", "/a/b~1c/d~0e/1/f": "x"} {
		v, ok := claimValue(c, ptr)
		s, _ := scalarString(v)
		if !ok || s != want {
			t.Errorf("%s: %v %v, want %s", ptr, v, ok, want)
		}
	}
	for _, ptr := range []string{"/nope", "/a/b~1c/d~0e/2", "/a/b~1c/d~0e/-1", "/top/x", "missing"} {
		if _, ok := claimValue(c, ptr); ok {
			t.Errorf("%s found", ptr)
		}
	}
}

func TestBoundClaimsStringAndGlob(t *testing.T) {
	c := claimsOf(t, `{"dept":"icu-north","groups":["a","b"],"n":7,"ok":true}`)
	r := &role{BoundClaimsType: boundClaimsString, BoundClaims: map[string]any{"dept": "icu-north", "groups": []any{"x", "b"}, "n": "7", "ok": "true"}}
	if err := r.checkBoundClaims(c); err != nil {
		t.Fatal(err)
	}
	r.BoundClaims = map[string]any{"dept": "icu-*"}
	if err := r.checkBoundClaims(c); err == nil {
		t.Fatal("a string-typed bound claim matched as a glob")
	}
	r.BoundClaimsType = boundClaimsGlob
	if err := r.checkBoundClaims(c); err != nil {
		t.Fatal(err)
	}
	r.BoundClaims = map[string]any{"dept": "er-*"}
	if err := r.checkBoundClaims(c); err == nil || !strings.Contains(err.Error(), `claim "dept" does not match`) {
		t.Fatalf("got %v", err)
	}
}

func TestCheckTimesLeeway(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	r := &role{ClockSkewLeeway: 0, ExpirationLeeway: 30 * time.Second, NotBeforeLeeway: 0}
	exp := func(d time.Duration) map[string]any {
		return map[string]any{"exp": json.Number(strconv.FormatInt(now.Add(d).Unix(), 10))}
	}
	if err := r.checkTimes(exp(-20*time.Second), now); err != nil {
		t.Fatalf("within the expiration leeway: %v", err)
	}
	if err := r.checkTimes(exp(-40*time.Second), now); err == nil {
		t.Fatal("expired beyond the leeway accepted")
	}
	r.ExpirationLeeway = -1 // disabled, as in Vault
	if err := r.checkTimes(exp(-time.Hour), now); err != nil {
		t.Fatalf("disabled expiry check: %v", err)
	}
	if err := r.checkTimes(map[string]any{}, now); err == nil {
		t.Fatal("a token without exp accepted")
	}
}

func TestAudienceWithoutBinding(t *testing.T) {
	r := &role{RoleType: roleTypeJWT}
	if err := r.checkAudience(nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.checkAudience([]string{"other"}, ""); err == nil {
		t.Fatal("a token for another audience accepted by a role without bound audiences")
	}
	r.RoleType = roleTypeOIDC
	if err := r.checkAudience([]string{"client"}, "client"); err != nil {
		t.Fatalf("an OIDC role accepts its client id: %v", err)
	}
}

func FuzzClaimValue(f *testing.F) {
	f.Add(`{"a":{"b":[1,{"c":"x"}]}}`, "/a/b/1/c")
	f.Add(`{"a~b":1}`, "/a~0b")
	f.Fuzz(func(t *testing.T, doc, ptr string) {
		var m map[string]any
		if json.Unmarshal([]byte(doc), &m) != nil {
			return
		}
		claimValue(m, ptr) // must not panic
	})
}

func TestRedirectAllowed(t *testing.T) {
	allowed := []string{"http://127.0.0.1:8250/oidc/callback", "https://vigil.example/ui/callback"}
	for u, want := range map[string]bool{
		"http://127.0.0.1:8250/oidc/callback":   true,
		"http://127.0.0.1:9999/oidc/callback":   true, // RFC 8252: any port on a loopback IP
		"http://127.0.0.1:9999/other":           false,
		"https://vigil.example/ui/callback":     true,
		"https://vigil.example:444/ui/callback": false,
		"http://localhost:8250/oidc/callback":   false,
	} {
		if got := redirectAllowed(u, allowed); got != want {
			t.Errorf("%s: %v, want %v", u, got, want)
		}
	}
}
