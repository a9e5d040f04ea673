package itest

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// clearToken matches a service or batch token in clear.
var clearToken = regexp.MustCompile(`hv[sb]\.[A-Za-z0-9]{16,}`)

// wrapClient is c asking every request to be wrapped for ttl (as the CLI's
// -wrap-ttl does).
func wrapClient(t *testing.T, c *vaultapi.Client, ttl string) *vaultapi.Client {
	t.Helper()
	w, err := c.Clone()
	if err != nil {
		t.Fatal(err)
	}
	w.SetToken(c.Token())
	w.SetWrappingLookupFunc(func(string, string) string { return ttl })
	return w
}

// TestResponseWrappingVaultAPI drives response wrapping with vault/api as
// clients do: a wrapped read answers only wrap_info; lookup needs no
// token; unwrap answers the response once, by a third party or with the
// wrapping token itself; rewrap moves it; sys/wrapping/wrap wraps data;
// wrapped token creation names the token's accessor; and the audit log
// records the wrapped data HMAC'd and, on unwrap, what was wrapped by whom.
func TestResponseWrappingVaultAPI(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{})
	c := s.Client
	if _, err := c.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"password": "s3cr3t-w"}}); err != nil {
		t.Fatal(err)
	}
	bobTok, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	bob := s.NewClient(bobTok.Auth.ClientToken)

	// A wrapped read: wrap_info only, in Vault's shape.
	sec, err := wrapClient(t, c, "5m").Logical().Read("secret/data/app")
	if err != nil {
		t.Fatal(err)
	}
	w := sec.WrapInfo
	if w == nil || sec.Data != nil || sec.Auth != nil || w.TTL != 300 || w.CreationPath != "secret/data/app" || w.Accessor == "" || !strings.HasPrefix(w.Token, "hvs.") {
		t.Fatalf("wrapped read: %+v %+v", sec, w)
	}
	raw := rawWrapped(t, s.URL, c.Token(), "secret/data/app")
	for _, k := range []string{"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("wrapped response lacks %q: %v", k, raw)
		}
	}
	if raw["data"] != nil || raw["auth"] != nil {
		t.Fatalf("a wrapped response carries data: %v", raw)
	}

	// lookup: no token needed, nothing spent.
	look, err := s.NewClient("").Logical().Write("sys/wrapping/lookup", map[string]any{"token": w.Token})
	if err != nil || look.Data["creation_path"] != "secret/data/app" || look.Data["creation_ttl"] != json.Number("300") {
		t.Fatalf("lookup: %+v %v", look, err)
	}
	// vault token lookup of a wrapping token (by another token): its
	// shape, and nothing spent.
	te, err := c.Auth().Token().Lookup(w.Token)
	if err != nil {
		t.Fatal(err)
	}
	if pol, _ := te.TokenPolicies(); len(pol) != 1 || pol[0] != "response-wrapping" || te.Data["num_uses"] != json.Number("1") ||
		te.Data["path"] != "secret/data/app" || te.Data["accessor"] != w.Accessor || te.Data["renewable"] != false {
		t.Fatalf("token lookup of a wrapping token: %+v", te.Data)
	}
	// Bob unwraps it; a second unwrap finds nothing.
	un, err := bob.Logical().Unwrap(w.Token)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := un.Data["data"].(map[string]any); d["password"] != "s3cr3t-w" {
		t.Fatalf("unwrapped: %+v", un.Data)
	}
	_, err = bob.Logical().Unwrap(w.Token)
	wantStatus(t, err, http.StatusBadRequest)
	if !strings.Contains(err.Error(), "wrapping token is not valid or does not exist") {
		t.Fatalf("second unwrap: %v", err)
	}

	// The wrapping token as the client token (vault unwrap with no
	// argument, vault-agent's wrapped secret IDs).
	sec, err = wrapClient(t, c, "60").Logical().Read("secret/data/app")
	if err != nil {
		t.Fatal(err)
	}
	self := s.NewClient(sec.WrapInfo.Token)
	if un, err := self.Logical().Unwrap(""); err != nil || un.Data["data"] == nil {
		t.Fatalf("self-unwrap: %+v %v", un, err)
	}
	_, err = self.Logical().Unwrap("")
	wantStatus(t, err, http.StatusForbidden)

	// rewrap: a new token for the same response, the old one spent.
	sec, err = wrapClient(t, c, "2m").Logical().Read("secret/data/app")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.Logical().Write("sys/wrapping/rewrap", map[string]any{"token": sec.WrapInfo.Token})
	wantStatus(t, err, http.StatusForbidden) // the default policy does not grant rewrap, as in Vault
	re, err := c.Logical().Write("sys/wrapping/rewrap", map[string]any{"token": sec.WrapInfo.Token})
	if err != nil || re.WrapInfo == nil || re.WrapInfo.Token == sec.WrapInfo.Token || re.WrapInfo.TTL != 120 || re.WrapInfo.CreationPath != "secret/data/app" || re.Data != nil {
		t.Fatalf("rewrap: %+v %v", re, err)
	}
	_, err = bob.Logical().Unwrap(sec.WrapInfo.Token)
	wantStatus(t, err, http.StatusBadRequest)
	if un, err := bob.Logical().Unwrap(re.WrapInfo.Token); err != nil || un.Data["data"] == nil {
		t.Fatalf("unwrap after rewrap: %+v %v", un, err)
	}

	// sys/wrapping/wrap: the api client wraps it by default (5m).
	ws, err := bob.Logical().Write("sys/wrapping/wrap", map[string]any{"k": "v", "n": 2})
	if err != nil || ws.WrapInfo == nil || ws.WrapInfo.CreationPath != "sys/wrapping/wrap" || ws.WrapInfo.TTL != 300 || len(ws.Warnings) > 0 {
		t.Fatalf("wrap: %+v %v", ws, err)
	}
	if un, err := c.Logical().Unwrap(ws.WrapInfo.Token); err != nil || un.Data["k"] != "v" || un.Data["n"] != json.Number("2") {
		t.Fatalf("unwrap wrapped data: %+v %v", un, err)
	}
	// Without a wrap TTL (vault/api always sends one here; curl need not).
	if st, body := plainRequest(t, http.MethodPost, s.URL+"/v1/sys/wrapping/wrap", bob.Token(), nil, `{"k":"v"}`); st != http.StatusBadRequest ||
		!strings.Contains(body, "requires response wrapping") {
		t.Fatalf("wrap without a TTL: %d %s", st, body)
	}

	// A wrapped token: wrapped_accessor, and the token works once unwrapped.
	ts, err := wrapClient(t, c, "1m").Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
	if err != nil || ts.WrapInfo == nil || ts.WrapInfo.WrappedAccessor == "" || ts.Auth != nil {
		t.Fatalf("wrapped token create: %+v %v", ts, err)
	}
	tu, err := bob.Logical().Unwrap(ts.WrapInfo.Token)
	if err != nil || tu.Auth == nil || tu.Auth.Accessor != ts.WrapInfo.WrappedAccessor {
		t.Fatalf("unwrapped token: %+v %v", tu, err)
	}
	if _, err := s.NewClient(tu.Auth.ClientToken).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the unwrapped token does not work: %v", err)
	}

	// A wrapping token used anywhere else is spent (Vault: one use).
	sec, err = wrapClient(t, c, "60").Logical().Read("secret/data/app")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.NewClient(sec.WrapInfo.Token).Logical().Read("secret/data/app")
	wantStatus(t, err, http.StatusForbidden)
	_, err = bob.Logical().Unwrap(sec.WrapInfo.Token)
	wantStatus(t, err, http.StatusBadRequest)

	// Bad headers are refused.
	for h, want := range map[string]string{"abc": "error parsing X-Vault-Wrap-TTL", "-5": "cannot be negative"} {
		if st, body := plainRequest(t, http.MethodGet, s.URL+"/v1/secret/data/app", c.Token(), http.Header{"X-Vault-Wrap-Ttl": {h}}, ""); st != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Fatalf("X-Vault-Wrap-TTL %q: %d %s", h, st, body)
		}
	}
	if st, body := plainRequest(t, http.MethodGet, s.URL+"/v1/secret/data/app", c.Token(),
		http.Header{"X-Vault-Wrap-Ttl": {"60"}, "X-Vault-Wrap-Format": {"jwt"}}, ""); st != http.StatusBadRequest || !strings.Contains(body, "jwt") {
		t.Fatalf("JWT wrapping: %d %s", st, body)
	}

	// The audit log: the wrapped secret never in clear; the wrapped read's
	// response entry has wrap_info and the data HMAC'd; the unwrap names
	// the wrapped request and who made it.
	if hits := fileContains(t, dir, "s3cr3t-w"); len(hits) > 0 {
		t.Fatalf("the wrapped secret is in clear in %v", hits)
	}
	// No token in clear: not the wrapping tokens (wrap_info, the token
	// field of unwrap, lookup and rewrap, a wrapping token used as the
	// client token), not the tokens they wrapped.
	lines := entries(readLog(t, auditLogPath(dir)))
	for _, l := range lines {
		if m := clearToken.FindString(l.Raw); m != "" {
			t.Fatalf("token %s in clear in the audit log: %s", m, l.Raw)
		}
	}
	var wrappedID string
	for _, l := range lines {
		if l.Type != "response" || l.Request["path"] != "secret/data/app" || l.Response["wrap_info"] == nil {
			continue
		}
		wi := l.Response["wrap_info"].(map[string]any)
		data, _ := l.Response["data"].(map[string]any)
		inner, _ := data["data"].(map[string]any)
		pw, _ := inner["password"].(string)
		if !strings.HasPrefix(wi["token"].(string), "hmac-sha256:") || !strings.HasPrefix(wi["accessor"].(string), "hmac-sha256:") || !strings.HasPrefix(pw, "hmac-sha256:") {
			t.Fatalf("wrapped response entry: %s", l.Raw)
		}
		if wi["creation_path"] == "secret/data/app" && wrappedID == "" {
			wrappedID = l.requestID()
		}
	}
	if wrappedID == "" {
		t.Fatal("no wrapped response entry")
	}
	found := false
	for _, l := range lines {
		fl, _ := l.Vigil["flags"].(map[string]any)
		if l.Type == "response" && l.Request["path"] == "sys/wrapping/unwrap" && fl["wrap_request_id"] == wrappedID {
			if fl["wrapped_by"] != "root" || fl["wrap_creation_path"] != "secret/data/app" || l.Auth["display_name"] != "token" {
				t.Fatalf("unwrap entry: %s", l.Raw)
			}
			d, _ := l.Response["data"].(map[string]any)
			inner, _ := d["data"].(map[string]any)
			if pw, _ := inner["password"].(string); !strings.HasPrefix(pw, "hmac-sha256:") {
				t.Fatalf("unwrapped data not HMAC'd: %s", l.Raw)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("no unwrap entry names the wrapped request")
	}
}

// rawWrapped GETs path wrapped and returns the JSON body.
func rawWrapped(t *testing.T, url, token, path string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/v1/"+path, nil)
	req.Header.Set("X-Vault-Token", token)
	req.Header.Set("X-Vault-Wrap-TTL", "30s")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	return m
}

// plainRequest sends a request with net/http (no client-side wrapping
// defaults) and returns the status and body.
func plainRequest(t *testing.T, method, url, token string, h http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWrappingPolicyTTLs: min/max_wrapping_ttl of a policy are enforced
// on the wrap TTL the client asks for.
func TestWrappingPolicyTTLs(t *testing.T) {
	s := devServer(t)
	c := s.Client
	if _, err := c.Logical().Write("secret/data/w", map[string]any{"data": map[string]any{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("wrapped-only", "path \"secret/data/w\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"10s\"\n  max_wrapping_ttl = \"60s\"\n}"); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"wrapped-only"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	u := s.NewClient(tok.Auth.ClientToken)
	_, err = u.Logical().Read("secret/data/w")
	wantStatus(t, err, http.StatusForbidden)
	_, err = wrapClient(t, u, "120").Logical().Read("secret/data/w")
	wantStatus(t, err, http.StatusForbidden)
	_, err = wrapClient(t, u, "5").Logical().Read("secret/data/w")
	wantStatus(t, err, http.StatusForbidden)
	if sec, err := wrapClient(t, u, "30").Logical().Read("secret/data/w"); err != nil || sec.WrapInfo == nil {
		t.Fatalf("within the limits: %+v %v", sec, err)
	}
}

// TestCubbyhole: cubbyhole/ is mounted for every token, private to it,
// and cannot be disabled.
func TestCubbyhole(t *testing.T) {
	s := devServer(t)
	c := s.Client
	mk := func() *vaultapi.Client {
		tok, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return s.NewClient(tok.Auth.ClientToken)
	}
	a, b := mk(), mk()
	if _, err := a.Logical().Write("cubbyhole/note", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if sec, err := a.Logical().Read("cubbyhole/note"); err != nil || sec.Data["k"] != "v" {
		t.Fatalf("own read: %+v %v", sec, err)
	}
	if sec, err := b.Logical().Read("cubbyhole/note"); err != nil || sec != nil {
		t.Fatalf("another token read it: %+v %v", sec, err)
	}
	if l, err := a.Logical().List("cubbyhole/"); err != nil || l == nil || len(l.Data["keys"].([]any)) != 1 {
		t.Fatalf("list: %+v %v", l, err)
	}
	mounts, err := c.Sys().ListMounts()
	if err != nil || mounts["cubbyhole/"] == nil || mounts["cubbyhole/"].Type != "cubbyhole" {
		t.Fatalf("sys/mounts: %v %v", mounts["cubbyhole/"], err)
	}
	wantStatus(t, c.Sys().Unmount("cubbyhole"), http.StatusBadRequest)
}

// TestAppRoleWrappedSecretID: AppRole secret IDs delivered wrapped, as the
// AppRole documentation recommends and vault-agent consumes them: the
// wrapping token names the secret ID's accessor and its creation path,
// which the agent checks with sys/wrapping/lookup before it unwraps with
// the wrapping token itself; the secret ID then logs in, and the wrapping
// token cannot be unwrapped again.
func TestAppRoleWrappedSecretID(t *testing.T) {
	s := devServer(t)
	c := s.Client
	if err := c.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/approle/role/app", map[string]any{"token_policies": "default"}); err != nil {
		t.Fatal(err)
	}
	rid, err := c.Logical().Read("auth/approle/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := wrapClient(t, c, "120").Logical().Write("auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := sec.WrapInfo
	if w == nil || sec.Data != nil || w.CreationPath != "auth/approle/role/app/secret-id" || w.WrappedAccessor == "" || w.TTL != 120 {
		t.Fatalf("wrapped secret-id: %+v %+v", sec, w)
	}
	look, err := s.NewClient("").Logical().Write("sys/wrapping/lookup", map[string]any{"token": w.Token})
	if err != nil || look.Data["creation_path"] != "auth/approle/role/app/secret-id" {
		t.Fatalf("lookup: %+v %v", look, err)
	}
	agent := s.NewClient(w.Token)
	un, err := agent.Logical().Unwrap("")
	if err != nil {
		t.Fatal(err)
	}
	if un.Data["secret_id_accessor"] != w.WrappedAccessor || un.Data["secret_id"] == "" {
		t.Fatalf("unwrapped secret-id: %+v", un.Data)
	}
	login, err := s.NewClient("").Logical().Write("auth/approle/login", map[string]any{"role_id": rid.Data["role_id"], "secret_id": un.Data["secret_id"]})
	if err != nil || login.Auth == nil || login.Auth.ClientToken == "" {
		t.Fatalf("login with the unwrapped secret ID: %+v %v", login, err)
	}
	_, err = c.Logical().Unwrap(w.Token)
	wantStatus(t, err, http.StatusBadRequest)
}
