package approle_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/server/servertest"
)

// custom-secret-id, secret-id-accessor/lookup and /destroy, and the limits a
// secret ID may narrow but not widen.
func TestAppRoleSecretIDAccessorsAndCustomSecretIDs(t *testing.T) {
	s := startAppRole(t)
	c := s.Client
	mustWrite(t, c, "auth/approle/role/web", map[string]any{"token_policies": "web", "secret_id_num_uses": 5, "secret_id_ttl": "1h",
		"secret_id_bound_cidrs": "127.0.0.0/8"})
	rid := roleID(t, c, "web")

	sec := mustWrite(t, c, "auth/approle/role/web/custom-secret-id", map[string]any{"secret_id": "my-custom-sid",
		"metadata": `{"app":"shop"}`, "cidr_list": "127.0.0.1/32", "num_uses": 3, "ttl": 600})
	acc, _ := sec.Data["secret_id_accessor"].(string)
	if sec.Data["secret_id"] != "my-custom-sid" || acc == "" || sec.Data["secret_id_num_uses"] != json.Number("3") || sec.Data["secret_id_ttl"] != json.Number("600") {
		t.Fatalf("custom-secret-id: %v", sec.Data)
	}
	_, err := c.Logical().Write("auth/approle/role/web/custom-secret-id", map[string]any{"secret_id": "my-custom-sid"})
	wantStatus(t, err, 400, "already registered")
	for _, bad := range []map[string]any{{"num_uses": 9}, {"num_uses": 0}, {"ttl": "2h"}, {"cidr_list": "10.0.0.0/8"}, {"cidr_list": "not-a-cidr"}} {
		_, err := c.Logical().Write("auth/approle/role/web/secret-id", bad)
		wantStatus(t, err, 400, "")
	}

	look := mustWrite(t, c, "auth/approle/role/web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
	if look.Data["secret_id_accessor"] != acc || look.Data["secret_id_num_uses"] != json.Number("3") {
		t.Fatalf("accessor lookup: %v", look.Data)
	}
	if cl, _ := look.Data["cidr_list"].([]any); len(cl) != 1 || cl[0] != "127.0.0.1/32" {
		t.Fatalf("accessor lookup cidr_list: %v", look.Data["cidr_list"])
	}
	if md, _ := look.Data["metadata"].(map[string]any); md["app"] != "shop" {
		t.Fatalf("accessor lookup metadata: %v", look.Data["metadata"])
	}
	_, err = c.Logical().Write("auth/approle/role/web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": "nope"})
	wantStatus(t, err, 404, "failed to find accessor entry")
	// An unknown secret ID looks up to nothing (204), as in Vault.
	if sec, err := c.Logical().Write("auth/approle/role/web/secret-id/lookup", map[string]any{"secret_id": "nope"}); err != nil || sec != nil {
		t.Fatalf("lookup of an unknown secret ID: %v %v", sec, err)
	}

	anon := s.NewClient("")
	login := map[string]any{"role_id": rid, "secret_id": "my-custom-sid"}
	l := mustWrite(t, anon, "auth/approle/login", login)
	if l.Auth.Metadata["app"] != "shop" || l.Auth.Metadata["role_name"] != "web" {
		t.Fatalf("login metadata: %v", l.Auth.Metadata)
	}
	look = mustWrite(t, c, "auth/approle/role/web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
	if look.Data["secret_id_num_uses"] != json.Number("2") {
		t.Fatalf("uses after a login: %v", look.Data["secret_id_num_uses"])
	}
	// From outside its cidr_list the secret ID is refused, and costs no use.
	_, err = s.NewClientFrom("", "127.0.0.2").Logical().Write("auth/approle/login", login)
	wantStatus(t, err, 403, "cidr_list")
	look = mustWrite(t, c, "auth/approle/role/web/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": acc})
	if look.Data["secret_id_num_uses"] != json.Number("2") {
		t.Fatalf("a refused login consumed a use: %v", look.Data["secret_id_num_uses"])
	}

	if _, err := c.Logical().Write("auth/approle/role/web/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": acc}); err != nil {
		t.Fatal(err)
	}
	_, err = anon.Logical().Write("auth/approle/login", login)
	wantStatus(t, err, 400, "invalid role or secret ID")
	_, err = c.Logical().Write("auth/approle/role/web/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": acc})
	wantStatus(t, err, 404, "failed to find accessor entry")
}

// bind_secret_id=false needs address bounds; a login with the role ID alone
// then works only from inside them, and its token carries token_bound_cidrs.
func TestAppRoleWithoutSecretIDIsBoundByCIDRs(t *testing.T) {
	s := startAppRole(t)
	c := s.Client
	logPath := s.MustEnableFileAudit(nil)
	_, err := c.Logical().Write("auth/approle/role/open", map[string]any{"bind_secret_id": false})
	wantStatus(t, err, 400, "at least one constraint")
	mustWrite(t, c, "auth/approle/role/machine", map[string]any{"bind_secret_id": false,
		"secret_id_bound_cidrs": "127.0.0.0/8", "token_bound_cidrs": "127.0.0.1/32", "token_policies": "m"})
	r, err := c.Logical().Read("auth/approle/role/machine")
	if err != nil {
		t.Fatal(err)
	}
	if r.Data["bind_secret_id"] != false {
		t.Fatalf("role read: %v", r.Data)
	}
	_, err = c.Logical().Write("auth/approle/role/machine/secret-id", nil)
	wantStatus(t, err, 400, "bind_secret_id is not set")
	rid := roleID(t, c, "machine")

	sec := mustWrite(t, s.NewClient(""), "auth/approle/login", map[string]any{"role_id": rid})
	tok := sec.Auth.ClientToken
	if _, err := s.NewClient(tok).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("token from its bound address: %v", err)
	}
	// 127.0.0.2 is inside secret_id_bound_cidrs but outside token_bound_cidrs:
	// the login is refused, and so is the token from there.
	_, err = s.NewClientFrom("", "127.0.0.2").Logical().Write("auth/approle/login", map[string]any{"role_id": rid})
	wantStatus(t, err, 403, "token_bound_cidrs")
	_, err = s.NewClientFrom(tok, "127.0.0.2").Auth().Token().LookupSelf()
	wantStatus(t, err, 403, "bound CIDRs")

	mustWrite(t, c, "auth/approle/role/machine", map[string]any{"secret_id_bound_cidrs": "10.0.0.0/8", "token_bound_cidrs": ""})
	_, err = s.NewClient("").Logical().Write("auth/approle/login", map[string]any{"role_id": rid})
	wantStatus(t, err, 403, "secret_id_bound_cidrs")

	found := 0
	for _, e := range servertest.AuditEntries(servertest.ReadAudit(t, logPath), "response", "auth/approle/login") {
		if msg, _ := e["error"].(string); strings.Contains(msg, "_bound_cidrs") {
			found++
		}
	}
	if found != 2 {
		t.Errorf("refused logins in the audit log with their reason: %d, want 2", found)
	}
}

// A role's token_bound_cidrs refuse a login with a valid secret ID from
// outside them (403, audited with the reason) without consuming the secret
// ID's use; from inside them the same secret ID logs in and its token works.
func TestAppRoleTokenBoundCIDRsRefuseLogin(t *testing.T) {
	s := startAppRole(t)
	c := s.Client
	logPath := s.MustEnableFileAudit(nil)
	mustWrite(t, c, "auth/approle/role/batch", map[string]any{"token_policies": "batch", "token_bound_cidrs": "10.0.0.0/8"})
	rid := roleID(t, c, "batch")
	sid := mustWrite(t, c, "auth/approle/role/batch/secret-id", map[string]any{"num_uses": 1}).Data["secret_id"].(string)
	login := map[string]any{"role_id": rid, "secret_id": sid}
	anon := s.NewClient("")

	_, err := anon.Logical().Write("auth/approle/login", login)
	wantStatus(t, err, 403, "source address 127.0.0.1 is not allowed by token_bound_cidrs")
	found := false
	for _, e := range servertest.AuditEntries(servertest.ReadAudit(t, logPath), "response", "auth/approle/login") {
		if msg, _ := e["error"].(string); strings.Contains(msg, "token_bound_cidrs") && strings.Contains(msg, "127.0.0.1") {
			found = true
		}
	}
	if !found {
		t.Error("the refused login is not in the audit log with its reason")
	}

	mustWrite(t, c, "auth/approle/role/batch", map[string]any{"token_bound_cidrs": "127.0.0.0/8"})
	sec := mustWrite(t, anon, "auth/approle/login", login)
	if _, err := s.NewClient(sec.Auth.ClientToken).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("token from inside its CIDRs: %v", err)
	}
	// The one use went to the successful login.
	_, err = anon.Logical().Write("auth/approle/login", login)
	wantStatus(t, err, 400, "invalid role or secret ID")
}
