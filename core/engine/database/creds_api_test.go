package database_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
)

// loginTimeout bounds how long a test waits for revocation to take effect:
// the lease manager ticks every second, so a few seconds suffice; the slack
// is for loaded CI machines.
const loginTimeout = 30 * time.Second

// TestAPIRoleReadShape checks a dynamic role reads back in Vault's shape.
func TestAPIRoleReadShape(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	c := s.Client
	write(t, c, mountPath+"/roles/ro", map[string]any{
		"db_name":             "main",
		"creation_statements": []string{"CREATE ROLE x"},
		"default_ttl":         "1h",
		"max_ttl":             7200,
	})
	got := read(t, c, mountPath+"/roles/ro").Data
	want := map[string]any{
		"db_name": "main", "creation_statements": []any{"CREATE ROLE x"},
		"revocation_statements": []any{}, "rollback_statements": []any{}, "renew_statements": []any{},
		"credential_type": "password",
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if jsonNumber(t, got["default_ttl"]) != 3600 || jsonNumber(t, got["max_ttl"]) != 7200 {
		t.Errorf("ttls = %v / %v", got["default_ttl"], got["max_ttl"])
	}
	_, err := c.Logical().Write(mountPath+"/roles/bad", map[string]any{"db_name": "main"})
	wantStatus(t, err, 400, "empty creation statements")
	_, err = c.Logical().Write(mountPath+"/roles/bad", map[string]any{"creation_statements": "x"})
	wantStatus(t, err, 400, "empty database name")
	list, err := c.Logical().List(mountPath + "/roles")
	if err != nil || list == nil || !reflect.DeepEqual(list.Data["keys"], []any{"ro"}) {
		t.Fatalf("list roles = %v, %v", list, err)
	}
	if _, err := c.Logical().Delete(mountPath + "/roles/ro"); err != nil {
		t.Fatal(err)
	}
	if sec, err := c.Logical().Read(mountPath + "/roles/ro"); err != nil || sec != nil {
		t.Fatalf("read after delete = %v, %v", sec, err)
	}
}

// TestAPICredsLoginRevoke issues credentials, logs in with them on the real
// server, revokes the lease and checks the login then fails and the user
// is gone.
func TestAPICredsLoginRevoke(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")
		write(t, c, mountPath+"/roles/readonly", map[string]any{
			"db_name": "main", "creation_statements": srv.CreationStatements(), "default_ttl": "1h", "max_ttl": "2h",
		})

		cr := issue(t, c, "readonly")
		t.Cleanup(func() { _ = srv.DropUser(cr.Username) })
		maxLen := map[dbtest.Kind]int{dbtest.Postgres: 63, dbtest.MySQL: 32}[srv.Kind]
		if !strings.HasPrefix(cr.Username, "v-root-readonly-") || len(cr.Username) > maxLen {
			t.Errorf("username %q: want prefix v-root-readonly- and at most %d characters", cr.Username, maxLen)
		}
		if cr.LeaseDuration != time.Hour || !cr.Renewable || !strings.HasPrefix(cr.LeaseID, mountPath+"/creds/readonly/") {
			t.Errorf("lease = %+v", cr)
		}
		if err := srv.Login(cr.Username, cr.Password); err != nil {
			t.Fatalf("login with issued credentials: %v", err)
		}
		if other := issue(t, c, "readonly"); other.Username == cr.Username || other.Password == cr.Password {
			t.Errorf("two issues gave the same credentials: %+v", other)
		} else {
			t.Cleanup(func() { _ = srv.DropUser(other.Username) })
		}

		if err := c.Sys().Revoke(cr.LeaseID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if err := srv.Login(cr.Username, cr.Password); err == nil {
			t.Fatal("login still works after revocation")
		}
		if srv.UserExists(t, cr.Username) {
			t.Error("user still exists after revocation")
		}
		if !leaseGone(c, cr.LeaseID) {
			t.Error("lease still exists after revocation")
		}
		// Revoking again is not an error.
		if err := c.Sys().Revoke(cr.LeaseID); err != nil {
			t.Errorf("second revoke: %v", err)
		}
	})
}

// TestAPICredsCustomRevocation revokes with the role's own statements.
func TestAPICredsCustomRevocation(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")
		revoke := []string{`REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM "{{name}}"; DROP ROLE "{{name}}";`}
		if srv.Kind == dbtest.MySQL {
			revoke = []string{`DROP USER '{{name}}'@'%'`}
		}
		write(t, c, mountPath+"/roles/custom", map[string]any{
			"db_name": "main", "creation_statements": srv.CreationStatements(), "revocation_statements": revoke,
		})
		cr := issue(t, c, "custom")
		t.Cleanup(func() { _ = srv.DropUser(cr.Username) })
		if err := srv.Login(cr.Username, cr.Password); err != nil {
			t.Fatalf("login: %v", err)
		}
		if err := c.Sys().Revoke(cr.LeaseID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if srv.UserExists(t, cr.Username) {
			t.Error("user still exists after revocation with custom statements")
		}
	})
}

// TestAPICredsExpire lets a 2-second lease run out: the lease manager
// revokes it, the login fails and the lease is gone.
func TestAPICredsExpire(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")
		write(t, c, mountPath+"/roles/short", map[string]any{
			"db_name": "main", "creation_statements": srv.CreationStatements(), "default_ttl": "2s",
		})
		cr := issue(t, c, "short")
		t.Cleanup(func() { _ = srv.DropUser(cr.Username) })
		if cr.LeaseDuration != 2*time.Second {
			t.Errorf("lease_duration = %s, want 2s", cr.LeaseDuration)
		}
		if err := srv.Login(cr.Username, cr.Password); err != nil {
			t.Fatalf("login before expiry: %v", err)
		}
		if !srv.WaitLoginFails(cr.Username, cr.Password, loginTimeout) {
			t.Fatalf("login still works %s after a 2s lease", loginTimeout)
		}
		if !waitLeaseGone(c, cr.LeaseID, loginTimeout) {
			t.Fatal("lease still exists after expiry")
		}
		if srv.UserExists(t, cr.Username) {
			t.Error("user still exists after expiry")
		}
	})
}

// TestAPICredsExpireAcrossRestart issues a short lease, restarts the
// server before it ends, and checks the restarted server revokes it.
func TestAPICredsExpireAcrossRestart(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		configure(t, s.Client, srv, "main")
		write(t, s.Client, mountPath+"/roles/short", map[string]any{
			"db_name": "main", "creation_statements": srv.CreationStatements(), "default_ttl": "4s",
		})
		cr := issue(t, s.Client, "short")
		t.Cleanup(func() { _ = srv.DropUser(cr.Username) })
		s.Restart()
		c := s.Client
		if !srv.WaitLoginFails(cr.Username, cr.Password, loginTimeout) {
			t.Fatalf("login still works %s after a 4s lease across a restart", loginTimeout)
		}
		if !waitLeaseGone(c, cr.LeaseID, loginTimeout) {
			t.Fatal("lease still exists after expiry across a restart")
		}
		if srv.UserExists(t, cr.Username) {
			t.Error("user still exists after expiry across a restart")
		}
	})
}

// TestAPICredsRenew renews a lease: the granted TTL is capped by the
// role's max_ttl, and on PostgreSQL the role's VALID UNTIL moves with it.
func TestAPICredsRenew(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")
		write(t, c, mountPath+"/roles/renewable", map[string]any{
			"db_name": "main", "creation_statements": srv.CreationStatements(), "default_ttl": "60s", "max_ttl": "90s",
		})
		cr := issue(t, c, "renewable")
		t.Cleanup(func() { _ = srv.DropUser(cr.Username) })

		sec, err := c.Sys().Renew(cr.LeaseID, 30)
		if err != nil {
			t.Fatalf("renew: %v", err)
		}
		if sec.LeaseDuration != 30 || sec.LeaseID != cr.LeaseID {
			t.Errorf("renew by 30s: lease_duration = %d, lease_id = %q", sec.LeaseDuration, sec.LeaseID)
		}
		if srv.Kind == dbtest.Postgres {
			checkValidUntil(t, srv, cr.Username, 30*time.Second)
		}

		sec, err = c.Sys().Renew(cr.LeaseID, 3600)
		if err != nil {
			t.Fatalf("renew: %v", err)
		}
		if sec.LeaseDuration > 90 || sec.LeaseDuration < 80 {
			t.Errorf("renew by 1h with max_ttl 90s: lease_duration = %d", sec.LeaseDuration)
		}
		if srv.Kind == dbtest.Postgres {
			checkValidUntil(t, srv, cr.Username, time.Duration(sec.LeaseDuration)*time.Second)
		}
		if err := srv.Login(cr.Username, cr.Password); err != nil {
			t.Errorf("login after renewal: %v", err)
		}
		if err := c.Sys().Revoke(cr.LeaseID); err != nil {
			t.Fatal(err)
		}
	})
}

// checkValidUntil checks a PostgreSQL role expires about ttl from now.
func checkValidUntil(t *testing.T, srv *dbtest.Server, user string, ttl time.Duration) {
	t.Helper()
	got := srv.ValidUntil(t, user)
	want := time.Now().Add(ttl)
	if d := got.Sub(want); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("VALID UNTIL = %s, want about %s", got, want)
	}
}

// TestAPICredsCreationFails makes a creation statement fail after the user
// was created: the request fails with the database's message, no lease is
// created and no user is left behind, with and without rollback statements.
func TestAPICredsCreationFails(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")
		rollback := []string{`DROP ROLE IF EXISTS "{{name}}"`}
		if srv.Kind == dbtest.MySQL {
			rollback = []string{`DROP USER '{{name}}'@'%'`}
		}
		wantMsg := map[dbtest.Kind]string{dbtest.Postgres: `"vigil_no_such_table" does not exist`, dbtest.MySQL: "doesn't exist"}[srv.Kind]
		for _, withRollback := range []bool{false, true} {
			role := dbtest.UniqueName("f")[:7] // unique within the 8/10-character name slice
			data := map[string]any{"db_name": "main", "creation_statements": srv.FailingCreationStatements()}
			if withRollback {
				data["rollback_statements"] = rollback
			}
			write(t, c, mountPath+"/roles/"+role, data)
			_, err := c.Logical().Read(mountPath + "/creds/" + role)
			wantStatus(t, err, 500, "error creating database user", wantMsg)
			if users := srv.Users(t, "v-root-"+role+"-"); len(users) > 0 {
				t.Errorf("rollback=%v: users left behind: %v", withRollback, users)
				for _, u := range users {
					_ = srv.DropUser(u)
				}
			}
			if leases := leasesUnder(t, c, mountPath+"/creds/"+role+"/"); len(leases) > 0 {
				t.Errorf("rollback=%v: leases created: %v", withRollback, leases)
			}
		}
	})
}

// TestAPICredsNotAllowed checks allowed_roles and unknown roles.
func TestAPICredsNotAllowed(t *testing.T) {
	t.Parallel()
	srv := dbtest.MustPostgres(t)
	s := mustServer(t)
	c := s.Client
	write(t, c, mountPath+"/config/main", map[string]any{
		"plugin_name": srv.Plugin, "connection_url": srv.TemplateURL,
		"username": srv.AdminUser, "password": srv.AdminPassword, "allowed_roles": "app-*",
	})
	write(t, c, mountPath+"/roles/other", map[string]any{"db_name": "main", "creation_statements": srv.CreationStatements()})
	_, err := c.Logical().Read(mountPath + "/creds/other")
	wantStatus(t, err, 400, `"other" is not an allowed role`)
	_, err = c.Logical().Read(mountPath + "/creds/nope")
	wantStatus(t, err, 400, "unknown role: nope")

	write(t, c, mountPath+"/roles/app-web", map[string]any{"db_name": "main", "creation_statements": srv.CreationStatements()})
	cr := issue(t, c, "app-web")
	t.Cleanup(func() { _ = srv.DropUser(cr.Username) })
	if err := c.Sys().Revoke(cr.LeaseID); err != nil {
		t.Fatal(err)
	}
}

// TestAPICredsConcurrent issues credentials from many clients at once. On
// PostgreSQL concurrent GRANTs on one object fail ("tuple concurrently
// updated") unless the engine serialises user management per connection.
func TestAPICredsConcurrent(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")
		write(t, c, mountPath+"/roles/many", map[string]any{"db_name": "main", "creation_statements": srv.CreationStatements()})
		const n = 12
		errs := make(chan error, n)
		users := make(chan string, n)
		for range n {
			go func() {
				sec, err := c.Logical().Read(mountPath + "/creds/many")
				if err == nil {
					users <- sec.Data["username"].(string)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("concurrent creds: %v", err)
			}
		}
		close(users)
		for u := range users {
			t.Cleanup(func() { _ = srv.DropUser(u) })
		}
		if err := c.Sys().RevokePrefix(mountPath + "/creds/many"); err != nil {
			t.Fatalf("revoke-prefix: %v", err)
		}
		if left := srv.Users(t, "v-root-many-"); len(left) > 0 {
			t.Errorf("users left after revoke-prefix: %v", left)
		}
	})
}
