package system_test

import (
	"fmt"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/server/servertest"
)

// sys/remount moves a secrets engine with its data, and an auth method with
// its login leases and tokens; the move is audited.
func TestSysRemount(t *testing.T) {
	s := devServer(t)
	c := s.Client
	logPath := s.MustEnableFileAudit(nil)
	if err := c.Sys().Mount("app", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("app").Put(t.Context(), "db", map[string]any{"password": "s3cr3t"}); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Sys().ListMounts()
	if err := c.Sys().Remount("app", "apps/team"); err != nil {
		t.Fatal(err)
	}
	after, _ := c.Sys().ListMounts()
	if after["app/"] != nil || after["apps/team/"] == nil || after["apps/team/"].UUID != before["app/"].UUID ||
		after["apps/team/"].Accessor != before["app/"].Accessor || after["apps/team/"].Options["version"] != "2" {
		t.Fatalf("mounts after remount: %v", after)
	}
	sec, err := c.KVv2("apps/team").Get(t.Context(), "db")
	if err != nil || sec.Data["password"] != "s3cr3t" {
		t.Fatalf("secret at the new path: %v %v", sec, err)
	}
	//lint:ignore SA1019 the status code is what is checked
	if _, err := c.RawRequest(c.NewRequest("GET", "/v1/app/data/db")); statusOf(err) != 404 {
		t.Fatalf("old path: %v", err)
	}

	// Refusals: built-in mounts, taken or reserved targets, class changes.
	if err := c.Sys().Mount("other", &vaultapi.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"sys", "system2"}, {"apps/team", "other"}, {"apps/team", "auth/kv"}, {"apps/team", "sys/x"}, {"nothing", "x"}} {
		_, err := c.Sys().StartRemount(bad[0], bad[1])
		if statusOf(err) != 400 {
			t.Errorf("remount %s -> %s: %v", bad[0], bad[1], err)
		}
	}

	// An auth method: its login lease and token paths move with it.
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/userpass/users/alice", map[string]any{"password": "pw"}); err != nil {
		t.Fatal(err)
	}
	login, err := s.NewClient("").Logical().Write("auth/userpass/login/alice", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	tok := login.Auth.ClientToken
	if err := c.Sys().Remount("auth/userpass", "auth/people"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewClient("").Logical().Write("auth/people/login/alice", map[string]any{"password": "pw"}); err != nil {
		t.Fatalf("login at the new path: %v", err)
	}
	l, err := c.Logical().List("sys/leases/lookup/auth/people/login/alice/")
	if err != nil || l == nil || len(l.Data["keys"].([]any)) != 2 {
		t.Fatalf("leases under the new path: %v %v", l, err)
	}
	if old, _ := c.Logical().List("sys/leases/lookup/auth/userpass/"); old != nil {
		t.Fatalf("leases left under the old path: %v", old.Data)
	}
	look, err := c.Auth().Token().Lookup(tok)
	if err != nil || look.Data["path"] != "auth/people/login/alice" {
		t.Fatalf("token path after remount: %v %v", look, err)
	}
	if err := c.Sys().DisableAuth("people"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewClient(tok).Auth().Token().LookupSelf(); statusOf(err) != 403 {
		t.Fatalf("token survived disabling its moved auth method: %v", err)
	}

	entries := servertest.AuditEntries(servertest.ReadAudit(t, logPath), "response", "sys/remount")
	ok := 0
	for _, e := range entries {
		if req, _ := e["request"].(map[string]any); req != nil && e["error"] == nil {
			if data, _ := req["data"].(map[string]any); data != nil && data["from"] != nil && strings.HasPrefix(fmt.Sprint(data["to"]), "hmac-sha256:") {
				ok++
			}
		}
	}
	if ok < 2 {
		t.Errorf("successful remounts in the audit log: %d, want 2 (%d response entries)", ok, len(entries))
	}
}
