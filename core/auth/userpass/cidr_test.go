package userpass_test

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/server/servertest"
)

// token_bound_cidrs on a user: a login from outside is a 403 audited with
// the reason, and the token it gives is refused from other addresses.
func TestUserpassTokenBoundCIDRs(t *testing.T) {
	s := devServer(t)
	logPath := s.MustEnableFileAudit(nil)
	enableUserpass(t, s, "userpass", map[string]map[string]any{
		"far":  {"token_bound_cidrs": "10.0.0.0/8"},
		"near": {"token_bound_cidrs": "127.0.0.1"},
	})
	u, err := s.Client.Logical().Read("auth/userpass/users/near")
	if err != nil {
		t.Fatal(err)
	}
	if cidrs, _ := u.Data["token_bound_cidrs"].([]any); len(cidrs) != 1 || cidrs[0] != "127.0.0.1/32" {
		t.Fatalf("user read: token_bound_cidrs = %v", u.Data["token_bound_cidrs"])
	}

	anon := s.NewClient("")
	_, err = anon.Logical().Write("auth/userpass/login/far", map[string]any{"password": "pw"})
	wantStatus(t, err, 403, "token_bound_cidrs")
	// A wrong password says nothing about the CIDRs.
	_, err = anon.Logical().Write("auth/userpass/login/far", map[string]any{"password": "wrong"})
	wantStatus(t, err, 400, "invalid username or password")

	sec := login(t, anon, "userpass", "near")
	tok := sec.Auth.ClientToken
	if _, err := s.NewClient(tok).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("token from its bound address: %v", err)
	}
	_, err = s.NewClientFrom(tok, "127.0.0.2").Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "bound CIDRs")
	// The refusal cost no use and left the token valid where it is bound.
	look, err := s.Client.Auth().Token().Lookup(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := look.Data["bound_cidrs"].([]any); len(c) != 1 {
		t.Fatalf("token lookup bound_cidrs: %v", look.Data["bound_cidrs"])
	}

	entries := servertest.ReadAudit(t, logPath)
	found := false
	for _, e := range servertest.AuditEntries(entries, "response", "auth/userpass/login/far") {
		if msg, _ := e["error"].(string); strings.Contains(msg, "token_bound_cidrs") && strings.Contains(msg, "127.0.0.1") {
			found = true
		}
	}
	if !found {
		t.Error("the refused login is not in the audit log with its reason")
	}
	found = false
	for _, e := range servertest.AuditEntries(entries, "response", "auth/token/lookup-self") {
		req, _ := e["request"].(map[string]any)
		if msg, _ := e["error"].(string); strings.Contains(msg, "bound CIDRs") && req["remote_address"] == "127.0.0.2" {
			found = true
		}
	}
	if !found {
		t.Error("the refused token use is not in the audit log with its reason")
	}
}
