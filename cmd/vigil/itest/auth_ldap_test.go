package itest

import (
	"os"
	"slices"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// ldapDirectory is the slapd started by .ci/services/slapd.sh.
type ldapDirectory struct{ url, ldapsURL, ca, binddn, bindpass, suffix string }

func slapd(t *testing.T) ldapDirectory {
	t.Helper()
	d := ldapDirectory{url: testsvc.Env(t, "VIGIL_TEST_LDAP_URL"), ldapsURL: testsvc.Env(t, "VIGIL_TEST_LDAPS_URL"),
		binddn: testsvc.Env(t, "VIGIL_TEST_LDAP_BINDDN"), bindpass: testsvc.Env(t, "VIGIL_TEST_LDAP_BINDPASS"),
		suffix: testsvc.Env(t, "VIGIL_TEST_LDAP_SUFFIX")}
	ca, err := os.ReadFile(testsvc.Env(t, "VIGIL_TEST_LDAP_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	d.ca = string(ca)
	return d
}

// ldapConfig is the mount configuration for the test directory.
func (d ldapDirectory) config(url string, starttls bool) map[string]any {
	return map[string]any{"url": url, "starttls": starttls, "certificate": d.ca, "binddn": d.binddn, "bindpass": d.bindpass,
		"userdn": "ou=people," + d.suffix, "userattr": "uid", "groupdn": "ou=groups," + d.suffix, "groupattr": "cn"}
}

// TestLDAPLogin logs in against a real OpenLDAP slapd over StartTLS and
// LDAPS: the bind account finds the user, the user's bind checks the
// password, group membership comes from the directory. Policies come from
// users/ and groups/ mappings and from external identity groups mapped to
// directory groups. A wrong password, an unknown user and a user outside
// allowed_groups are refused and audited; a directory whose certificate
// is not trusted is not used.
func TestLDAPLogin(t *testing.T) {
	dir0 := slapd(t)
	s, dir := loginServer(t, servertest.Options{})
	c := s.Client
	acc := enableAuth(t, c, "ldap", "ldap")
	mustWriteAPI(t, c, "auth/ldap/config", dir0.config(dir0.url, true))
	mustWriteAPI(t, c, "auth/ldap/users/carol", map[string]any{"policies": "app"})
	mustWriteAPI(t, c, "auth/ldap/groups/engineers", map[string]any{"policies": "app"})
	externalGroup(t, c, "icu-clinicians", "icu", "icu-clinicians", acc)
	if cfg, err := c.Logical().Read("auth/ldap/config"); err != nil || cfg.Data["bindpass"] != nil || cfg.Data["binddn"] != dir0.binddn {
		t.Fatalf("config read (bindpass must not be returned): %v %v", cfg, err)
	}

	anon := s.NewClient("")
	login := func(user, pw string) (*vaultapi.Secret, error) {
		return anon.Logical().Write("auth/ldap/login/"+user, map[string]any{"password": pw})
	}
	// Carol over StartTLS: her own mapping gives app, her directory group
	// the identity group's icu.
	sec, err := login("Carol", "carol-pw")
	wantLogin(t, s.Server, sec, err, acc, "carol", "app", "icu", "default")
	if slices.Contains(sec.Auth.TokenPolicies, "icu") {
		t.Fatalf("icu must come from identity, not the token: %v", sec.Auth.TokenPolicies)
	}
	if _, err := s.NewClient(sec.Auth.ClientToken).Logical().Read("secret/data/icu/beds"); err != nil {
		t.Fatalf("group policy: %v", err)
	}

	// Dave over LDAPS: the engineers group mapping gives app.
	mustWriteAPI(t, c, "auth/ldap/config", map[string]any{"url": dir0.ldapsURL, "starttls": false})
	sec, err = login("dave", "dave-pw")
	wantLogin(t, s.Server, sec, err, acc, "dave", "app")
	if slices.Contains(sec.Auth.Policies, "icu") {
		t.Fatalf("dave is not an ICU clinician: %v", sec.Auth.Policies)
	}

	const reason = "invalid username or password"
	t.Run("wrong password", func(t *testing.T) {
		_, err := login("carol", "nope")
		wantRefused(t, dir, err, "auth/ldap/login/carol", reason)
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := login("mallory", "x")
		wantRefused(t, dir, err, "auth/ldap/login/mallory", reason)
	})
	t.Run("filter injection", func(t *testing.T) {
		_, err := login("*", "carol-pw")
		wantRefused(t, dir, err, "auth/ldap/login/*", reason)
	})
	t.Run("wrong group", func(t *testing.T) {
		mustWriteAPI(t, c, "auth/ldap/config", map[string]any{"allowed_groups": "icu-*,engineers"})
		defer mustWriteAPI(t, c, "auth/ldap/config", map[string]any{"allowed_groups": ""})
		_, err := login("erin", "erin-pw")
		wantRefused(t, dir, err, "auth/ldap/login/erin", "is not a member of any of the allowed groups")
		if _, err := login("dave", "dave-pw"); err != nil {
			t.Fatalf("an engineer may log in: %v", err)
		}
	})
	t.Run("untrusted directory certificate", func(t *testing.T) {
		other := newCA(t, "Other CA")
		mustWriteAPI(t, c, "auth/ldap/config", map[string]any{"certificate": other.certPEM})
		defer mustWriteAPI(t, c, "auth/ldap/config", map[string]any{"certificate": dir0.ca})
		_, err := login("carol", "carol-pw")
		if st := statusOf(err); st != 503 {
			t.Fatalf("login through an untrusted directory: %v (HTTP %d), want 503", err, st)
		}
	})
}
