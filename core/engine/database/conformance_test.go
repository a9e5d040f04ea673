package database

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

var testMount = core.MountInfo{Path: "database/", Type: "database"}

// TestConformance runs the suite every engine passes. The seed needs no
// database server: the config is stored without verification.
func TestConformance(t *testing.T) {
	seed := func(tb testing.TB, c *enginetest.Client) {
		tb.Helper()
		c.MustCall(tb, core.OpUpdate, "config/pg", map[string]any{
			"plugin_name":       postgresPluginName,
			"connection_url":    "postgres://{{username}}:{{password}}@127.0.0.1:1/app",
			"username":          "admin",
			"password":          "root-secret",
			"verify_connection": false,
			"allowed_roles":     []string{"ro"},
		})
		c.MustCall(tb, core.OpUpdate, "roles/ro", map[string]any{
			"db_name":             "pg",
			"creation_statements": `CREATE ROLE "{{name}}" LOGIN PASSWORD '{{password}}'`,
			"default_ttl":         "1h",
		})
	}
	enginetest.RunConformance(t, New, testMount, enginetest.WithPersistence(seed,
		enginetest.Probe{Op: core.OpRead, Path: "config/pg"},
		enginetest.Probe{Op: core.OpRead, Path: "roles/ro"},
		enginetest.Probe{Op: core.OpList, Path: "config/"},
		enginetest.Probe{Op: core.OpList, Path: "roles/"},
	))
}

// TestConfigReadNeverShowsPassword reads a stored config (no server
// needed) and checks neither the password nor a literal one in the URL
// appears anywhere in the response.
func TestConfigReadNeverShowsPassword(t *testing.T) {
	_, c := enginetest.MustSetup(t, New, testMount)
	c.MustCall(t, core.OpUpdate, "config/lit", map[string]any{
		"plugin_name":       mysqlPluginName,
		"connection_url":    "admin:literal-pw@tcp(127.0.0.1:1)/app",
		"username":          "admin",
		"password":          "field-pw",
		"verify_connection": false,
	})
	resp := c.MustCall(t, core.OpRead, "config/lit", nil)
	b, err := json.Marshal(resp.Data)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, secret := range []string{"literal-pw", "field-pw", `"password"`} {
		if strings.Contains(got, secret) {
			t.Errorf("config read contains %s: %s", secret, got)
		}
	}
	if len(resp.Warnings) != 0 {
		t.Errorf("warnings on read: %v", resp.Warnings)
	}
	// The write warned that the password field is unused by the URL.
	w := c.MustCall(t, core.OpUpdate, "config/lit", map[string]any{"verify_connection": false})
	if w == nil || len(w.Warnings) != 1 {
		t.Errorf("want one warning about the untemplated password, got %+v", w)
	}
}
