package vault_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func mustSalt(testing.TB) *hmac.Salt {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	s, err := hmac.New(key)
	if err != nil {
		panic(err)
	}
	return s
}

var (
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	mount = &core.MountInfo{Path: "secret/", Type: "kv", Accessor: "kv_1a2b3c4d", Class: "secret",
		Config: core.MountConfig{AuditNonHMACRequestKeys: []string{"version"}, AuditNonHMACResponseKeys: []string{"metadata"}}}
	principal = &core.Principal{ClientToken: "hvs.rootish", Accessor: "acc-123", DisplayName: "userpass-alice",
		Policies: []string{"default", "phi-reader"}, TokenPolicies: []string{"default", "phi-reader"},
		Metadata: map[string]string{"username": "alice"}, EntityID: "ent-1", TokenType: "service",
		TTL: time.Hour, IssueTime: t0.Add(-time.Minute)}
)

func writeReq() *core.Request {
	return &core.Request{ID: "req-1", Operation: core.OpCreate, Path: "secret/data/app", Mount: mount, MountPath: "data/app",
		Data:       map[string]any{"data": map[string]any{"password": "s3cr3t", "port": json.Number("5432"), "tls": true, "tags": []any{"a", "b"}}, "version": "7"},
		Headers:    http.Header{"User-Agent": {"vault-cli"}, "X-Forwarded-For": {"10.0.0.9"}},
		RemoteAddr: "127.0.0.1", RemotePort: 51000, Principal: principal,
		Decision: &core.Decision{Allowed: true, GrantingPolicies: []core.PolicyRef{{Name: "phi-reader", Type: "acl"}, {Name: "break_glass", Type: "rego"}},
			Advisories: []string{"outside business hours"}, Flags: map[string]string{"break_glass": "true"}}}
}

// identityReq is a write by a token bound to an entity (carol, in the
// icu-clinicians group) and created by another token.
func identityReq() *core.Request {
	r := writeReq()
	p := *principal
	p.Policies = []string{"default", "icu", "phi-reader"}
	p.EntityID = "ent-carol"
	p.CreatorAccessor, p.CreatorEntityID = "acc-parent", "ent-carol"
	p.Identity = &core.Identity{EntityID: "ent-carol", EntityName: "carol", Actor: "carol", Alias: "userpass/carol",
		Groups: []string{"icu-clinicians"}, Policies: []string{"icu"}}
	r.Principal = &p
	return r
}

// cases are the golden events: one per line of testdata/<name>.golden.
func cases() []struct {
	name string
	ev   *core.AuditEvent
	opts vault.Options
} {
	s := mustSalt(nil)
	std := vault.Options{Salt: s, HMACAccessor: true, Headers: []string{"X-Forwarded-For"}}
	denied := writeReq()
	denied.Decision = &core.Decision{Allowed: false, DenyReasons: []string{"PHI requires a token younger than 15m"}}
	internal := &core.Request{ID: "req-3", Operation: core.OpRevoke, Path: "database/creds/app/abc", Internal: true, InternalActor: "expiration",
		Mount: &core.MountInfo{Path: "database/", Type: "database", Accessor: "database_9", Class: "secret"}}
	sealed := &core.Request{ID: "req-4", Operation: core.OpRead, Path: "secret/data/app", ClientToken: "hvs.leaked", RemoteAddr: "10.1.1.1", RemotePort: 4000,
		Data: map[string]any{"q": "x"}}
	login := &core.Request{ID: "req-5", Operation: core.OpUpdate, Path: "auth/userpass/login/alice", Unauthenticated: true,
		Mount: &core.MountInfo{Path: "auth/userpass/", Type: "userpass", Accessor: "auth_userpass_1", Class: "auth"},
		Data:  map[string]any{"password": "alice-pw"}}
	// A write in namespace hospital-a/ by a token of that namespace,
	// granted by the namespace's own policy.
	hospA := core.Namespace{ID: "HtLcGY", Path: "hospital-a/"}
	inNS := writeReq()
	inNS.Namespace = &hospA
	nsPrincipal := *principal
	nsPrincipal.Namespace = &hospA
	inNS.Principal = &nsPrincipal
	inNS.Mount = &core.MountInfo{Path: "hospital-a/secret/", Type: "kv", Accessor: "kv_a1b2c3d4", Class: "secret", NamespaceID: hospA.ID}
	inNS.Decision = &core.Decision{Allowed: true, GrantingPolicies: []core.PolicyRef{{Name: "phi-reader", Type: "acl", NamespaceID: hospA.ID, NamespacePath: hospA.Path}}}
	return []struct {
		name string
		ev   *core.AuditEvent
		opts vault.Options
	}{
		{"write_request", &core.AuditEvent{Type: "request", Time: t0, Request: writeReq()}, std},
		{"write_response", &core.AuditEvent{Type: "response", Time: t0.Add(time.Millisecond), Request: writeReq(), Response: &core.Response{
			Data: map[string]any{"version": 3, "created_time": t0, "metadata": map[string]any{"owner": "team-a"}}, Warnings: []string{"capped TTL"},
			Secret: &core.Secret{LeaseID: "secret/data/app/xyz"}}}, std},
		{"denied", &core.AuditEvent{Type: "response", Time: t0, Request: denied, Err: core.ErrPermissionDenied}, std},
		{"internal_revoke", &core.AuditEvent{Type: "request", Time: t0, Request: internal}, std},
		{"sealed_no_salt", &core.AuditEvent{Type: "request", Time: t0, Request: sealed, Err: core.ErrSealed, Sealed: true}, vault.Options{HMACAccessor: true}},
		{"login_response", &core.AuditEvent{Type: "response", Time: t0, Request: login, Response: &core.Response{Auth: &core.Auth{
			ClientToken: "hvs.new", Accessor: "acc-new", DisplayName: "userpass-alice", Policies: []string{"default"}, TokenPolicies: []string{"default"},
			TTL: 30 * time.Minute, TokenType: "service", Metadata: map[string]string{"username": "alice"}}}}, std},
		{"no_hmac_accessor", &core.AuditEvent{Type: "request", Time: t0, Request: writeReq()}, vault.Options{Salt: s, HMACAccessor: false}},
		{"log_raw", &core.AuditEvent{Type: "request", Time: t0, Request: writeReq()}, vault.Options{Raw: true, HMACAccessor: true}},
		{"handler_error", &core.AuditEvent{Type: "response", Time: t0, Request: writeReq(), Err: errors.New("boom")}, std},
		{"identity_request", &core.AuditEvent{Type: "request", Time: t0, Request: identityReq()}, std},
		{"identity_login_response", &core.AuditEvent{Type: "response", Time: t0, Request: login, Response: &core.Response{Auth: &core.Auth{
			ClientToken: "hvs.new", Accessor: "acc-new", DisplayName: "userpass-carol", Policies: []string{"default", "icu"},
			TokenPolicies: []string{"default"}, IdentityPolicies: []string{"icu"}, EntityID: "ent-carol", TTL: 30 * time.Minute,
			TokenType: "service", Metadata: map[string]string{"username": "carol"},
			Identity: &core.Identity{EntityID: "ent-carol", EntityName: "carol", Actor: "carol", Alias: "userpass/carol",
				Groups: []string{"icu-clinicians"}, Policies: []string{"icu"}}}}}, std},
		{"namespace_request", &core.AuditEvent{Type: "request", Time: t0, Request: inNS}, std},
	}
}

// TestGolden pins the exact bytes of each entry for a fixed clock and salt.
// Run with -update to rewrite testdata/entries.golden.
func TestGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, c := range cases() {
		b, err := vault.Format(c.ev, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !json.Valid(b) || bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("%s: not one line of JSON: %s", c.name, b)
		}
		buf.WriteString("# " + c.name + "\n")
		buf.Write(b)
		buf.WriteByte('\n')
	}
	path := filepath.Join("testdata", "entries.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("entries differ from %s (run with -update if intended):\n%s", path, buf.String())
	}
}

// Format is deterministic: map iteration order never shows.
func TestDeterministic(t *testing.T) {
	c := cases()[0]
	first, _ := vault.Format(c.ev, c.opts)
	for i := 0; i < 50; i++ {
		b, _ := vault.Format(c.ev, c.opts)
		if !bytes.Equal(b, first) {
			t.Fatalf("run %d differs", i)
		}
	}
}

// The properties the golden file encodes, asserted directly so a careless
// -update cannot hide a leak.
func TestNoSecretsAndPlainScalars(t *testing.T) {
	for _, c := range cases() {
		if c.opts.Raw {
			continue
		}
		b, _ := vault.Format(c.ev, c.opts)
		for _, secret := range []string{"s3cr3t", "hvs.rootish", "hvs.new", "hvs.leaked", "alice-pw", "team-a"} {
			if c.name == "write_response" && secret == "team-a" {
				continue // metadata is an audit_non_hmac_response_key
			}
			if strings.Contains(string(b), secret) {
				t.Errorf("%s: %q in clear: %s", c.name, secret, b)
			}
		}
	}
	b, _ := vault.Format(cases()[0].ev, cases()[0].opts)
	var e map[string]any
	_ = json.Unmarshal(b, &e)
	data := e["request"].(map[string]any)["data"].(map[string]any)
	inner := data["data"].(map[string]any)
	if inner["port"] != float64(5432) || inner["tls"] != true {
		t.Fatalf("numbers and bools must stay plain: %v", inner)
	}
	if data["version"] != "7" {
		t.Fatalf("audit_non_hmac_request_keys not honoured: %v", data["version"])
	}
	if got := e["request"].(map[string]any)["headers"]; got == nil {
		t.Fatal("configured header missing")
	} else if _, ok := got.(map[string]any)["user-agent"]; ok {
		t.Fatal("unconfigured header recorded")
	}
	v := e["vigil"].(map[string]any)
	if v["flags"].(map[string]any)["break_glass"] != "true" {
		t.Fatalf("flags: %v", v)
	}
	// Accessor kept in clear with hmac_accessor=false, token still hashed.
	b, _ = vault.Format(cases()[6].ev, cases()[6].opts)
	if !strings.Contains(string(b), `"accessor":"acc-123"`) || strings.Contains(string(b), "hvs.rootish") {
		t.Fatalf("hmac_accessor=false: %s", b)
	}
}

// FuzzFormat: any request data renders to one line of valid JSON in which
// no input string survives in clear (when hashing).
func FuzzFormat(f *testing.F) {
	f.Add(`{"a":"b","n":1,"l":["x",{"y":"z"}]}`)
	f.Add(`{"\u2028":"line\nbreak","t":true,"nil":null}`)
	s := mustSalt(f)
	f.Fuzz(func(t *testing.T, in string) {
		var data map[string]any
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		if dec.Decode(&data) != nil || data == nil {
			return
		}
		req := &core.Request{ID: "x", Operation: core.OpUpdate, Path: "p", Data: data}
		b, err := vault.Format(&core.AuditEvent{Type: "request", Time: t0, Request: req}, vault.Options{Salt: s, HMACAccessor: true})
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) || bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("bad line: %q", b)
		}
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		rd, _ := out["request"].(map[string]any)["data"].(map[string]any)
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if !strings.HasPrefix(x, "hmac-sha256:") {
					t.Fatalf("string not hashed: %q", x)
				}
			case map[string]any:
				for _, e := range x {
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(rd)
	})
}

// BenchmarkFormat renders a typical KV request and response entry pair.
func BenchmarkFormat(b *testing.B) {
	cs := cases()
	req, resp := cs[0], cs[1]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := vault.Format(req.ev, req.opts); err != nil {
			b.Fatal(err)
		}
		if _, err := vault.Format(resp.ev, resp.opts); err != nil {
			b.Fatal(err)
		}
	}
}
