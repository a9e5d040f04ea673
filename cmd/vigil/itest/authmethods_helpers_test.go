package itest

import (
	"slices"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// loginServer is a dev server with a file audit device, the "app" policy
// (read secret/data/app/*), the "icu" policy (read secret/data/icu/*) and
// a secret under each.
func loginServer(t *testing.T, o servertest.Options) (*auditServer, string) {
	t.Helper()
	dir := t.TempDir()
	o.Dev, o.Dir = true, dir
	conf := o.Configure
	o.Configure = func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
		if conf != nil {
			conf(c)
		}
	}
	s := mustAuditServer(t, o, auditsvc.Options{})
	c := s.Client
	for name, src := range map[string]string{
		"app": `path "secret/data/app/*" { capabilities = ["read"] }`,
		"icu": `path "secret/data/icu/*" { capabilities = ["read"] }`,
	} {
		if err := c.Sys().PutPolicy(name, src); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"secret/data/app/db", "secret/data/icu/beds"} {
		if _, err := c.Logical().Write(p, map[string]any{"data": map[string]any{"v": "1"}}); err != nil {
			t.Fatal(err)
		}
	}
	return s, dir
}

func enableAuth(t *testing.T, c *vaultapi.Client, path, typ string) string {
	t.Helper()
	if err := c.Sys().EnableAuthWithOptions(path, &vaultapi.EnableAuthOptions{Type: typ}); err != nil {
		t.Fatal(err)
	}
	return authAccessor(t, c, path+"/")
}

func mustWriteAPI(t *testing.T, c *vaultapi.Client, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	sec, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return sec
}

// wantLogin checks a successful login: the token carries want policies,
// is bound to an entity whose alias on mountAccessor is aliasName, and
// can read secret/data/app/db. It returns the entity id.
func wantLogin(t *testing.T, s *servertest.Server, sec *vaultapi.Secret, err error, mountAccessor, aliasName string, want ...string) string {
	t.Helper()
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		t.Fatalf("login answered no token: %+v", sec)
	}
	for _, p := range want {
		if !slices.Contains(sec.Auth.Policies, p) {
			t.Fatalf("login policies %v, want %v among them", sec.Auth.Policies, want)
		}
	}
	if sec.Auth.EntityID == "" {
		t.Fatal("login token has no entity")
	}
	ent, err := s.Client.Logical().Read("identity/entity/id/" + sec.Auth.EntityID)
	if err != nil || ent == nil {
		t.Fatalf("read entity: %v", err)
	}
	found := false
	for _, a := range ent.Data["aliases"].([]any) {
		am := a.(map[string]any)
		if am["mount_accessor"] == mountAccessor && am["name"] == aliasName {
			found = true
		}
	}
	if !found {
		t.Fatalf("entity %s has no alias %q on %s: %v", sec.Auth.EntityID, aliasName, mountAccessor, ent.Data["aliases"])
	}
	if _, err := s.NewClient(sec.Auth.ClientToken).Logical().Read("secret/data/app/db"); err != nil {
		t.Fatalf("token cannot read secret/data/app/db: %v", err)
	}
	return sec.Auth.EntityID
}

// wantRefused checks a refused login: an HTTP status in 400-499, the
// reason in the answer, and a response entry for path in the audit log
// carrying the same reason.
func wantRefused(t *testing.T, dir string, err error, path, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("login at %s succeeded; want it refused with %q", path, reason)
	}
	if st := statusOf(err); st < 400 || st > 499 {
		t.Fatalf("login at %s: HTTP %d (%v); want 4xx", path, st, err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("login at %s refused with %v; want the reason %q", path, err, reason)
	}
	for _, l := range entries(readLog(t, auditLogPath(dir))) {
		if l.Type == "response" && l.Request["path"] == path && strings.Contains(l.Error, reason) {
			return
		}
	}
	t.Fatalf("no audited response for %s with error %q", path, reason)
}

// externalGroup creates an external group with policies and maps the
// group alias name on the mount to it. It returns the group id.
func externalGroup(t *testing.T, c *vaultapi.Client, name, policies, alias, mountAccessor string) string {
	t.Helper()
	g := mustWriteAPI(t, c, "identity/group", map[string]any{"name": name, "type": "external", "policies": policies})
	id := g.Data["id"].(string)
	mustWriteAPI(t, c, "identity/group-alias", map[string]any{"name": alias, "mount_accessor": mountAccessor, "canonical_id": id})
	return id
}
