package itest

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
	vrego "github.com/vigilsec/vigil/rego"
)

// identityServer is a dev server with a file audit device, userpass
// mounted, the "icu" policy (read secret/data/icu/*) and a "tokens" policy
// (create child tokens).
func identityServer(t *testing.T) (*auditServer, string) {
	t.Helper()
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, audit.Options{})
	c := s.Client
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{
		"icu":    `path "secret/data/icu/*" { capabilities = ["read"] }`,
		"tokens": `path "auth/token/create" { capabilities = ["update"] }`,
	} {
		if err := c.Sys().PutPolicy(name, src); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Logical().Write("secret/data/icu/ventilators", map[string]any{"data": map[string]any{"count": "12"}}); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func userLogin(t *testing.T, s *servertest.Server, user, policies string) *vaultapi.SecretAuth {
	t.Helper()
	if _, err := s.Client.Logical().Write("auth/userpass/users/"+user, map[string]any{"password": "pw-" + user, "token_policies": policies}); err != nil {
		t.Fatal(err)
	}
	sec, err := s.NewClient("").Logical().Write("auth/userpass/login/"+user, map[string]any{"password": "pw-" + user})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth
}

func authAccessor(t *testing.T, c *vaultapi.Client, path string) string {
	t.Helper()
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	if auths[path] == nil {
		t.Fatalf("no auth mount %s", path)
	}
	return auths[path].Accessor
}

// TestIdentityLoginEntityGroupsAndPolicies: a login yields an entity (with
// the userpass alias); a group's policies apply to the token at once,
// and removing the entity from the group or disabling it takes effect on
// the next request; the audit entries name the person.
func TestIdentityLoginEntityGroupsAndPolicies(t *testing.T) {
	s, dir := identityServer(t)
	c := s.Client
	a := userLogin(t, s.Server, "carol", "tokens")
	if a.EntityID == "" || slices.Contains(a.Policies, "icu") {
		t.Fatalf("login auth: %+v", a)
	}
	ent, err := c.Logical().Read("identity/entity/id/" + a.EntityID)
	if err != nil || ent == nil {
		t.Fatalf("read entity: %v %v", ent, err)
	}
	aliases := ent.Data["aliases"].([]any)
	al := aliases[0].(map[string]any)
	if len(aliases) != 1 || al["name"] != "carol" || al["mount_accessor"] != authAccessor(t, c, "userpass/") || al["mount_path"] != "auth/userpass/" {
		t.Fatalf("entity aliases: %v", aliases)
	}
	// Name the person; put her in the group.
	if _, err := c.Logical().Write("identity/entity/id/"+a.EntityID, map[string]any{"name": "carol", "metadata": map[string]any{"ward": "icu"}}); err != nil {
		t.Fatal(err)
	}
	g, err := c.Logical().Write("identity/group", map[string]any{"name": "icu-clinicians", "policies": "icu", "member_entity_ids": []string{a.EntityID}})
	if err != nil || g.Data["id"] == "" {
		t.Fatalf("create group: %v %v", g, err)
	}
	carol := s.NewClient(a.ClientToken)
	// The token was issued before the group existed: its next request
	// already has the group's policy.
	if _, err := carol.Logical().Read("secret/data/icu/ventilators"); err != nil {
		t.Fatalf("read as a group member: %v", err)
	}
	// A new login reports the identity policies, as Vault does.
	sec, err := s.NewClient("").Logical().Write("auth/userpass/login/carol", map[string]any{"password": "pw-carol"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Auth.EntityID != a.EntityID || !slices.Equal(sec.Auth.IdentityPolicies, []string{"icu"}) || !slices.Contains(sec.Auth.Policies, "icu") ||
		slices.Contains(sec.Auth.TokenPolicies, "icu") {
		t.Fatalf("second login: %+v", sec.Auth)
	}
	// A child token inherits the entity and records its creator.
	child, err := carol.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"tokens"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if child.Auth.EntityID != a.EntityID {
		t.Fatalf("child token entity %q", child.Auth.EntityID)
	}
	if _, err := s.NewClient(child.Auth.ClientToken).Logical().Read("secret/data/icu/ventilators"); err != nil {
		t.Fatalf("child token of a group member: %v", err)
	}

	// Out of the group: the very next request is denied.
	if _, err := c.Logical().Write("identity/group/name/icu-clinicians", map[string]any{"member_entity_ids": []string{}}); err != nil {
		t.Fatal(err)
	}
	_, err = carol.Logical().Read("secret/data/icu/ventilators")
	wantStatus(t, err, http.StatusForbidden)
	// Back in, then the entity disabled: every token of hers is refused.
	if _, err := c.Logical().Write("identity/group/name/icu-clinicians", map[string]any{"member_entity_ids": []string{a.EntityID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Logical().Read("secret/data/icu/ventilators"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("identity/entity/name/carol", map[string]any{"disabled": true}); err != nil {
		t.Fatal(err)
	}
	_, err = carol.Logical().Read("secret/data/icu/ventilators")
	wantStatus(t, err, http.StatusForbidden)
	_, err = s.NewClient("").Logical().Write("auth/userpass/login/carol", map[string]any{"password": "pw-carol"})
	wantStatus(t, err, http.StatusForbidden)

	// The audit entries name her: entity id, canonical actor, groups,
	// identity policies; the child token's entries name its creator.
	var read, childRead, login bool
	for _, l := range entries(readLog(t, auditLogPath(dir))) {
		id, _ := l.Vigil["identity"].(map[string]any)
		switch {
		case l.Type == "response" && l.Request["path"] == "secret/data/icu/ventilators" && l.Auth["entity_id"] == a.EntityID && l.Error == "":
			if id["actor"] != "carol" || id["entity_name"] != "carol" || id["alias"] != "userpass/carol" {
				t.Fatalf("read entry identity: %v", l.Raw)
			}
			if !slices.Contains(toStrings(id["groups"]), "icu-clinicians") || !slices.Contains(toStrings(l.Auth["identity_policies"]), "icu") {
				t.Fatalf("read entry groups/policies: %v", l.Raw)
			}
			if id["creator_entity_id"] == a.EntityID {
				if !strings.HasPrefix(id["creator_accessor"].(string), "hmac-sha256:") {
					t.Fatalf("creator accessor not HMAC'd: %v", l.Raw)
				}
				childRead = true
			} else {
				read = true
			}
		case l.Type == "response" && l.Request["path"] == "auth/userpass/login/carol" && l.Error == "":
			ra, _ := l.Response["auth"].(map[string]any)
			login = login || ra["entity_id"] == a.EntityID && id["actor"] != nil
		}
	}
	if !read || !childRead || !login {
		t.Fatalf("audit: read %v, child read %v, login %v", read, childRead, login)
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestIdentityRegoGroupRequirement: the shipped icu_clinicians example
// denies a token whose ACL policy grants the read when its entity is not in
// the group, and allows a member; membership changes apply at once.
func TestIdentityRegoGroupRequirement(t *testing.T) {
	s, _ := identityServer(t)
	c := s.Client
	src, ok := vrego.Examples()["icu_clinicians"]
	if !ok {
		t.Fatal("no icu_clinicians example")
	}
	if _, err := c.Logical().Write("sys/policies/rego/icu_clinicians", map[string]any{"policy": src, "enforcement_level": "mandatory"}); err != nil {
		t.Fatal(err)
	}
	// Both hold the icu ACL policy on their tokens; only carol is in the group.
	carol := userLogin(t, s.Server, "carol", "icu")
	dave := userLogin(t, s.Server, "dave", "icu")
	if _, err := c.Logical().Write("identity/group", map[string]any{"name": "icu-clinicians", "member_entity_ids": []string{carol.EntityID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewClient(carol.ClientToken).Logical().Read("secret/data/icu/ventilators"); err != nil {
		t.Fatalf("member denied: %v", err)
	}
	_, err := s.NewClient(dave.ClientToken).Logical().Read("secret/data/icu/ventilators")
	wantStatus(t, err, http.StatusForbidden)
	// Explain says why, naming the caller by the canonical actor.
	ex, err := c.Logical().Write("sys/policies/explain", map[string]any{"accessor": dave.Accessor, "path": "secret/data/icu/ventilators", "operation": "read"})
	if err != nil {
		t.Fatal(err)
	}
	reasons := toStrings(ex.Data["deny_reasons"])
	if ex.Data["allowed"] != false || len(reasons) != 1 || !strings.Contains(reasons[0], `icu-clinicians group (caller: "userpass/dave")`) {
		t.Fatalf("explain: %v", ex.Data)
	}
	// Dave joins: allowed on his next request.
	if _, err := c.Logical().Write("identity/group/name/icu-clinicians", map[string]any{"member_entity_ids": []string{carol.EntityID, dave.EntityID}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewClient(dave.ClientToken).Logical().Read("secret/data/icu/ventilators"); err != nil {
		t.Fatalf("new member denied: %v", err)
	}
}
