package database_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
)

// TestAPIStaticRole puts an existing user under a static role: its
// password is rotated at once, static-creds returns a working password,
// rotate-role changes it and the previous one stops working.
func TestAPIStaticRole(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		s := mustServer(t)
		c := s.Client
		configure(t, c, srv, "main")
		user, startPW := dbtest.UniqueName("vst_"), "Start-"+dbtest.UniqueName("pw")
		srv.CreateUser(t, user, startPW, false)

		write(t, c, mountPath+"/static-roles/app", map[string]any{"db_name": "main", "username": user, "rotation_period": "1h"})
		if err := srv.Login(user, startPW); err == nil {
			t.Error("the user's original password still works after the static role was created")
		}
		got := read(t, c, mountPath+"/static-creds/app").Data
		p1, _ := got["password"].(string)
		if got["username"] != user || p1 == "" {
			t.Fatalf("static-creds = %v", got)
		}
		if ttl := jsonNumber(t, got["ttl"]); ttl < 3590 || ttl > 3600 {
			t.Errorf("ttl = %d, want about 3600", ttl)
		}
		if jsonNumber(t, got["rotation_period"]) != 3600 {
			t.Errorf("rotation_period = %v", got["rotation_period"])
		}
		last, err := time.Parse(time.RFC3339Nano, got["last_vault_rotation"].(string))
		if err != nil || time.Since(last) > time.Minute {
			t.Errorf("last_vault_rotation = %v (%v)", got["last_vault_rotation"], err)
		}
		if err := srv.Login(user, p1); err != nil {
			t.Fatalf("login with the static password: %v", err)
		}

		role := read(t, c, mountPath+"/static-roles/app").Data
		if role["username"] != user || role["db_name"] != "main" || jsonNumber(t, role["rotation_period"]) != 3600 {
			t.Errorf("static role = %v", role)
		}
		if _, ok := role["password"]; ok {
			t.Errorf("static role read shows the password")
		}

		write(t, c, mountPath+"/rotate-role/app", nil)
		p2, _ := read(t, c, mountPath+"/static-creds/app").Data["password"].(string)
		if p2 == "" || p2 == p1 {
			t.Fatalf("rotate-role did not change the password")
		}
		if err := srv.Login(user, p1); err == nil {
			t.Error("the previous static password still works after rotate-role")
		}
		if err := srv.Login(user, p2); err != nil {
			t.Errorf("login with the rotated password: %v", err)
		}

		list, err := c.Logical().List(mountPath + "/static-roles")
		if err != nil || list == nil || !reflect.DeepEqual(list.Data["keys"], []any{"app"}) {
			t.Errorf("list static roles = %v, %v", list, err)
		}
		if _, err := c.Logical().Delete(mountPath + "/static-roles/app"); err != nil {
			t.Fatal(err)
		}
		if sec, err := c.Logical().Read(mountPath + "/static-roles/app"); err != nil || sec != nil {
			t.Errorf("read after delete = %v, %v", sec, err)
		}
	})
}

// TestAPIStaticRoleRefused covers static roles that cannot be created.
func TestAPIStaticRoleRefused(t *testing.T) {
	t.Parallel()
	srv := dbtest.MustPostgres(t)
	s := mustServer(t)
	c := s.Client
	configure(t, c, srv, "main")
	missing := dbtest.UniqueName("vnone_")
	for _, tc := range []struct {
		name string
		data map[string]any
		code int
		msg  string
	}{
		{"short", map[string]any{"db_name": "main", "username": "x", "rotation_period": 2}, 400, "rotation_period must be 5 seconds or more"},
		{"nouser", map[string]any{"db_name": "main", "rotation_period": 60}, 400, "username is a required field"},
		{"quote", map[string]any{"db_name": "main", "username": `a"b`, "rotation_period": 60}, 400, "cannot be used in statements"},
		{"nodb", map[string]any{"db_name": "nope", "username": "x", "rotation_period": 60}, 400, `no database connection named "nope"`},
		{"missing", map[string]any{"db_name": "main", "username": missing, "rotation_period": 60}, 500, "does not exist"},
	} {
		_, err := c.Logical().Write(mountPath+"/static-roles/"+tc.name, tc.data)
		wantStatus(t, err, tc.code, tc.msg)
		if sec, err := c.Logical().Read(mountPath + "/static-roles/" + tc.name); err != nil || sec != nil {
			t.Errorf("%s: static role stored after a refused write: %v, %v", tc.name, sec, err)
		}
	}
	write(t, c, mountPath+"/roles/dyn", map[string]any{"db_name": "main", "creation_statements": srv.CreationStatements()})
	_, err := c.Logical().Write(mountPath+"/static-roles/dyn", map[string]any{"db_name": "main", "username": "x", "rotation_period": 60})
	wantStatus(t, err, 400, "must be unique")
	_, err = c.Logical().Read(mountPath + "/static-creds/none")
	wantStatus(t, err, 400, "unknown role")
	if err != nil && strings.Contains(err.Error(), srv.AdminPassword) {
		t.Error("error shows the root password")
	}
}
