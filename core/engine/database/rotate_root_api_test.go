package database_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// TestAPIRotateRoot rotates a dedicated admin's password: the old password
// stops working on the server, the engine keeps working with the new one,
// and no read reveals either.
func TestAPIRotateRoot(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		admin, oldPW := dbtest.UniqueName("vadm_"), "Initial-"+dbtest.UniqueName("pw")
		srv.CreateUser(t, admin, oldPW, true)
		write(t, c, mountPath+"/config/rot", map[string]any{
			"plugin_name": srv.Plugin, "connection_url": srv.TemplateURL,
			"username": admin, "password": oldPW, "allowed_roles": "*",
		})
		if err := srv.Login(admin, oldPW); err != nil {
			t.Fatalf("admin login before rotation: %v", err)
		}

		write(t, c, mountPath+"/rotate-root/rot", nil)

		if err := srv.Login(admin, oldPW); err == nil {
			t.Fatal("the old root password still works after rotate-root")
		}
		if body := rawGet(t, c, mountPath+"/config/rot"); strings.Contains(body, oldPW) || strings.Contains(body, `"password"`) {
			t.Errorf("config read shows a password: %s", body)
		}
		// The engine uses the new password: it can still create users, and
		// can rotate again.
		write(t, c, mountPath+"/roles/after", map[string]any{"db_name": "rot", "creation_statements": srv.CreationStatements()})
		cr := issue(t, c, "after")
		t.Cleanup(func() { _ = srv.DropUser(cr.Username) })
		if err := srv.Login(cr.Username, cr.Password); err != nil {
			t.Fatalf("login with credentials issued after rotate-root: %v", err)
		}
		write(t, c, mountPath+"/rotate-root/rot", nil)
		write(t, c, mountPath+"/reset/rot", nil)
		if err := c.Sys().Revoke(cr.LeaseID); err != nil {
			t.Fatalf("revoke after a second rotation: %v", err)
		}
		if srv.UserExists(t, cr.Username) {
			t.Error("user survived revocation")
		}
	})
}

// TestAPIRotateRootRefused covers configs that cannot be rotated.
func TestAPIRotateRootRefused(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	c := s.Client
	_, err := c.Logical().Write(mountPath+"/rotate-root/none", nil)
	wantStatus(t, err, 400, `no database connection named "none"`)
	write(t, c, mountPath+"/config/literal", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": "postgres://u:p@127.0.0.1:1/x",
		"verify_connection": false,
	})
	_, err = c.Logical().Write(mountPath+"/rotate-root/literal", nil)
	wantStatus(t, err, 400, "no username")
	write(t, c, mountPath+"/config/literal", map[string]any{"username": "u", "password": "secretpw"})
	_, err = c.Logical().Write(mountPath+"/rotate-root/literal", nil)
	wantStatus(t, err, 400, "{{password}}")
	if body := rawGet(t, c, mountPath+"/config/literal"); strings.Contains(body, "secretpw") || strings.Contains(body, "u:p@") {
		t.Errorf("config read shows a password: %s", body)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAPINoPasswordInLogs captures every server log line (debug level)
// through a config write, a failed verification, credential issue and
// revocation, static rotation and rotate-root, and checks no password
// appears in them.
func TestAPINoPasswordInLogs(t *testing.T) {
	t.Parallel()
	srv := dbtest.MustPostgres(t)
	var logs syncBuffer
	s := servertest.MustStart(t, build, servertest.Options{Dev: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := s.Client
	if err := c.Sys().Mount(mountPath, &vaultapi.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	admin, adminPW := dbtest.UniqueName("vadm_"), "Logged-"+dbtest.UniqueName("pw")
	srv.CreateUser(t, admin, adminPW, true)
	_, err := c.Logical().Write(mountPath+"/config/bad", map[string]any{
		"plugin_name": srv.Plugin, "connection_url": srv.TemplateURL, "username": admin, "password": "Wrong-" + adminPW,
	})
	wantStatus(t, err, 400)
	write(t, c, mountPath+"/config/main", map[string]any{
		"plugin_name": srv.Plugin, "connection_url": srv.TemplateURL, "username": admin, "password": adminPW, "allowed_roles": "*",
	})
	write(t, c, mountPath+"/roles/ro", map[string]any{"db_name": "main", "creation_statements": srv.CreationStatements()})
	cr := issue(t, c, "ro")
	t.Cleanup(func() { _ = srv.DropUser(cr.Username) })
	if err := c.Sys().Revoke(cr.LeaseID); err != nil {
		t.Fatal(err)
	}
	user := dbtest.UniqueName("vst_")
	srv.CreateUser(t, user, "Start-"+dbtest.UniqueName("pw"), false)
	write(t, c, mountPath+"/static-roles/st", map[string]any{"db_name": "main", "username": user, "rotation_period": 3600})
	staticPW, _ := read(t, c, mountPath+"/static-creds/st").Data["password"].(string)
	write(t, c, mountPath+"/rotate-root/main", nil)

	out := logs.String()
	if !strings.Contains(out, "rotated root credentials") {
		t.Fatalf("the capture did not see the engine's logs:\n%s", out)
	}
	for what, pw := range map[string]string{"root": adminPW, "issued": cr.Password, "static": staticPW} {
		if pw == "" || strings.Contains(out, pw) {
			t.Errorf("the %s password %q appears in the logs (or is empty)", what, pw)
		}
	}
}
