package database

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

// mustEngine mounts the engine on the harness (manual clock) with srv
// configured as "main".
func mustEngine(t *testing.T, srv *dbtest.Server) (*Backend, *enginetest.Client) {
	t.Helper()
	e, c := enginetest.MustSetup(t, New, testMount)
	c.MustCall(t, core.OpUpdate, "config/main", map[string]any{
		"plugin_name": srv.Plugin, "connection_url": srv.TemplateURL,
		"username": srv.AdminUser, "password": srv.AdminPassword, "allowed_roles": "*",
	})
	return e.(*Backend), c
}

func staticPassword(t *testing.T, c *enginetest.Client, role string) (pw string, ttl int64) {
	t.Helper()
	d := c.MustCall(t, core.OpRead, "static-creds/"+role, nil).Data
	pw, _ = d["password"].(string)
	ttl, _ = d["ttl"].(int64)
	return pw, ttl
}

// TestStaticRotationSchedule runs the scheduled job with the manual clock: nothing
// happens before rotation_period has passed; after it the password changes
// on the server and the old one fails to log in. A failed rotation keeps
// the old password and is retried on the next call.
func TestStaticRotationSchedule(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		ctx := context.Background()
		_, c := mustEngine(t, srv)
		user := dbtest.UniqueName("vsched_")
		srv.CreateUser(t, user, "Start-"+dbtest.UniqueName("pw"), false)
		c.MustCall(t, core.OpUpdate, "static-roles/app", map[string]any{"db_name": "main", "username": user, "rotation_period": "10m"})

		p1, ttl := staticPassword(t, c, "app")
		if ttl != 600 {
			t.Errorf("ttl right after creation = %d, want 600", ttl)
		}
		c.Clock.Advance(9 * time.Minute)
		if err := c.RunScheduled(t, ctx); err != nil {
			t.Fatal(err)
		}
		if p, ttl := staticPassword(t, c, "app"); p != p1 || ttl != 60 {
			t.Fatalf("after 9m of a 10m period: password changed=%v, ttl=%d (want unchanged, 60)", p != p1, ttl)
		}
		c.Clock.Advance(time.Minute)
		if err := c.RunScheduled(t, ctx); err != nil {
			t.Fatal(err)
		}
		p2, ttl := staticPassword(t, c, "app")
		if p2 == p1 || ttl != 600 {
			t.Fatalf("after the period: password changed=%v, ttl=%d (want changed, 600)", p2 != p1, ttl)
		}
		if err := srv.Login(user, p1); err == nil {
			t.Error("the old password still works after the scheduled rotation")
		}
		if err := srv.Login(user, p2); err != nil {
			t.Errorf("login with the rotated password: %v", err)
		}
		role := c.MustCall(t, core.OpRead, "static-roles/app", nil).Data
		if want := enginetest.Epoch.Add(10 * time.Minute).Format(time.RFC3339Nano); role["last_vault_rotation"] != want {
			t.Errorf("last_vault_rotation = %v, want %s", role["last_vault_rotation"], want)
		}

		// The user disappears: the due rotation fails, the password stays.
		if err := srv.DropUser(user); err != nil {
			t.Fatal(err)
		}
		c.Clock.Advance(10 * time.Minute)
		if err := c.RunScheduled(t, ctx); err == nil {
			t.Fatal("the scheduled job reported no error for a user that does not exist")
		}
		if p, _ := staticPassword(t, c, "app"); p != p2 {
			t.Error("a failed rotation changed the stored password")
		}
		r, err := loadStaticRole(ctx, c.View, "app")
		if err != nil || r.LastError == "" || r.PendingPassword != "" {
			t.Errorf("after a failed rotation: last_error=%q pending=%v (%v)", r.LastError, r.PendingPassword != "", err)
		}
		// It is back: the overdue rotation is retried without waiting.
		srv.CreateUser(t, user, "Again-"+dbtest.UniqueName("pw"), false)
		if err := c.RunScheduled(t, ctx); err != nil {
			t.Fatalf("retry: %v", err)
		}
		p3, _ := staticPassword(t, c, "app")
		if p3 == p2 {
			t.Fatal("the overdue rotation was not retried")
		}
		if err := srv.Login(user, p3); err != nil {
			t.Errorf("login after the retried rotation: %v", err)
		}
	})
}

// TestStaticInterruptedRotation simulates a crash after a new password was
// recorded as pending: the next scheduled run rotates at once, even though the
// period has not elapsed, and the password it settles on works.
func TestStaticInterruptedRotation(t *testing.T) {
	t.Parallel()
	srv := dbtest.MustPostgres(t)
	ctx := context.Background()
	_, c := mustEngine(t, srv)
	user := dbtest.UniqueName("vpend_")
	srv.CreateUser(t, user, "Start-"+dbtest.UniqueName("pw"), false)
	c.MustCall(t, core.OpUpdate, "static-roles/app", map[string]any{"db_name": "main", "username": user, "rotation_period": "1h"})
	p1, _ := staticPassword(t, c, "app")

	r, err := loadStaticRole(ctx, c.View, "app")
	if err != nil {
		t.Fatal(err)
	}
	r.PendingPassword = "Crashed-before-it-reached-the-server1"
	if err := saveStaticRole(ctx, c.View, "app", r); err != nil {
		t.Fatal(err)
	}
	if err := c.RunScheduled(t, ctx); err != nil {
		t.Fatal(err)
	}
	p2, _ := staticPassword(t, c, "app")
	if p2 == p1 || p2 == r.PendingPassword {
		t.Fatal("the interrupted rotation was not redone with a fresh password")
	}
	if err := srv.Login(user, p2); err != nil {
		t.Errorf("login after recovery: %v", err)
	}
}

// TestRootInterruptedRotation simulates a crash after the server accepted
// a new root password but before it was committed: the next connection
// finds the stored password rejected, tries the pending one and promotes it.
func TestRootInterruptedRotation(t *testing.T) {
	t.Parallel()
	dbtest.ForEach(t, func(t *testing.T, srv *dbtest.Server) {
		t.Parallel()
		ctx := context.Background()
		e, c := enginetest.MustSetup(t, New, testMount)
		admin, oldPW, newPW := dbtest.UniqueName("vadm_"), "Old-"+dbtest.UniqueName("pw"), "New-"+dbtest.UniqueName("pw")
		srv.CreateUser(t, admin, oldPW, true)
		c.MustCall(t, core.OpUpdate, "config/rot", map[string]any{
			"plugin_name": srv.Plugin, "connection_url": srv.TemplateURL, "username": admin, "password": oldPW,
		})
		// The server got the new password; storage has it as pending only.
		var p plugin = postgresPlugin{}
		if srv.Kind == dbtest.MySQL {
			p = mysqlPlugin{}
		}
		if err := p.setPassword(ctx, srv.Admin, admin, newPW); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(ctx, c.View, "rot")
		if err != nil {
			t.Fatal(err)
		}
		cfg.PendingPassword = newPW
		if err := saveConfig(ctx, c.View, "rot", cfg); err != nil {
			t.Fatal(err)
		}
		e.(*Backend).closeAllPools()

		c.MustCall(t, core.OpUpdate, "reset/rot", nil)
		cfg, err = loadConfig(ctx, c.View, "rot")
		if err != nil || cfg.Password != newPW || cfg.PendingPassword != "" {
			t.Fatalf("after recovery: password promoted=%v, pending cleared=%v (%v)", cfg.Password == newPW, cfg.PendingPassword == "", err)
		}
		raw, _ := json.Marshal(c.MustCall(t, core.OpRead, "config/rot", nil).Data)
		if strings.Contains(string(raw), oldPW) || strings.Contains(string(raw), newPW) {
			t.Errorf("config read shows a password: %s", raw)
		}
	})
}
