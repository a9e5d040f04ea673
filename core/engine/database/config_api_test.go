package database_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
)

// TestAPIConfigVerified configures each real server with verification on,
// then checks the read shape and that no read anywhere returns the password.
func TestAPIConfigVerified(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")

		got := read(t, c, mountPath+"/config/main").Data
		details, _ := got["connection_details"].(map[string]any)
		if details["connection_url"] != srv.TemplateURL || details["username"] != srv.AdminUser {
			t.Errorf("connection_details = %v", details)
		}
		if _, ok := details["password"]; ok {
			t.Errorf("connection_details holds a password: %v", details)
		}
		if got["plugin_name"] != srv.Plugin || got["verify_connection"] != true {
			t.Errorf("config = %v", got)
		}
		if !reflect.DeepEqual(got["allowed_roles"], []any{"*"}) {
			t.Errorf("allowed_roles = %#v", got["allowed_roles"])
		}
		if body := rawGet(t, c, mountPath+"/config/main"); strings.Contains(body, srv.AdminPassword) {
			t.Errorf("GET config/main returned the root password: %s", body)
		}
		list, err := c.Logical().List(mountPath + "/config")
		if err != nil || list == nil || !reflect.DeepEqual(list.Data["keys"], []any{"main"}) {
			t.Fatalf("list config = %v, %v", list, err)
		}

		// An update without the password keeps it (the merged config still
		// verifies) and changes only what was sent.
		write(t, c, mountPath+"/config/main", map[string]any{"allowed_roles": "a,b*"})
		got = read(t, c, mountPath+"/config/main").Data
		if !reflect.DeepEqual(got["allowed_roles"], []any{"a", "b*"}) {
			t.Errorf("allowed_roles after update = %#v", got["allowed_roles"])
		}

		// reset closes and reopens the pool.
		write(t, c, mountPath+"/reset/main", nil)

		// Delete removes it.
		if _, err := c.Logical().Delete(mountPath + "/config/main"); err != nil {
			t.Fatal(err)
		}
		if sec, err := c.Logical().Read(mountPath + "/config/main"); err != nil || sec != nil {
			t.Fatalf("read after delete = %v, %v", sec, err)
		}
	})
}

// TestAPIConfigVerifyFails checks that an unreachable host or a wrong
// password fails with the driver's message and stores nothing.
func TestAPIConfigVerifyFails(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		cases := []struct {
			name, url, password, wantMsg string
		}{
			{"unreachable", srv.UnreachableURL, srv.AdminPassword, "connection refused"},
			{"wrong-password", srv.TemplateURL, "not-the-password", map[dbtest.Kind]string{
				dbtest.Postgres: "password authentication failed",
				dbtest.MySQL:    "Access denied",
			}[srv.Kind]},
		}
		for _, tc := range cases {
			_, err := c.Logical().Write(mountPath+"/config/"+tc.name, map[string]any{
				"plugin_name": srv.Plugin, "connection_url": tc.url,
				"username": srv.AdminUser, "password": tc.password, "allowed_roles": "*",
			})
			wantStatus(t, err, 400, "error creating database object", tc.wantMsg)
			if strings.Contains(err.Error(), tc.password) {
				t.Errorf("%s: error echoes the password: %v", tc.name, err)
			}
			if sec, err := c.Logical().Read(mountPath + "/config/" + tc.name); err != nil || sec != nil {
				t.Errorf("%s: config stored after a failed verification: %v, %v", tc.name, sec, err)
			}
		}
		if list, err := c.Logical().List(mountPath + "/config"); err != nil || list != nil {
			t.Errorf("list after failed writes = %v, %v; want nothing", list, err)
		}

		// verify_connection=false stores it without connecting.
		write(t, c, mountPath+"/config/later", map[string]any{
			"plugin_name": srv.Plugin, "connection_url": srv.UnreachableURL,
			"username": srv.AdminUser, "password": srv.AdminPassword, "verify_connection": false,
		})
		if got := read(t, c, mountPath+"/config/later").Data["verify_connection"]; got != false {
			t.Errorf("verify_connection = %v", got)
		}
	})
}

// TestAPIConfigBadInput covers validation that needs no server round trip.
func TestAPIConfigBadInput(t *testing.T) {
	t.Parallel()
	s := mustServer(t)
	c := s.Client
	for _, tc := range []struct {
		name string
		data map[string]any
		msg  string
	}{
		{"no-plugin", map[string]any{"connection_url": "x"}, "empty plugin name"},
		{"bad-plugin", map[string]any{"plugin_name": "oracle-database-plugin", "connection_url": "x"}, "unsupported plugin_name"},
		{"no-url", map[string]any{"plugin_name": "postgresql-database-plugin", "verify_connection": false}, "connection_url cannot be empty"},
		{"templated-password", map[string]any{"plugin_name": "mysql-database-plugin", "connection_url": "x",
			"password": "{{password}}", "verify_connection": false}, "template variables"},
		{"bad-template", map[string]any{"plugin_name": "mysql-database-plugin", "connection_url": "x",
			"username_template": "{{ .Nope", "verify_connection": false}, "invalid username_template"},
		{"no-policies", map[string]any{"plugin_name": "mysql-database-plugin", "connection_url": "x",
			"password_policy": "strong", "verify_connection": false}, "no password policies"},
	} {
		_, err := c.Logical().Write(mountPath+"/config/"+tc.name, tc.data)
		wantStatus(t, err, 400, tc.msg)
	}
}
