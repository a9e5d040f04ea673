//go:build compat

package compat

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestAgent runs the compatibility binary's agent against Vigil as a
// sidecar would: AppRole auto-auth from role-id and secret-id files,
// templates for a KV v2 secret and a dynamic PostgreSQL credential, lease
// renewal, re-rendering when the secret changes and when the credential
// reaches its max TTL, re-authentication when the token does, and the API
// proxy adding the auto-auth token.
func TestAgent(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	startVigil(t, addr, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address="+addr, "-dev-data-dir="+filepath.Join(dir, "vigil"))
	c := &cli{t: t, bin: compatBin(t), addr: "http://" + addr, token: "root"}

	// Server side, configured with the same CLI.
	pg, err := url.Parse(pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rootUser, rootPW := scratchAdmin(t, pg)
	c.ok([]string{"kv", "put", "secret/app", "password=one"})
	if _, errOut, code := c.run(`
path "secret/data/app"   { capabilities = ["read"] }
path "database/creds/app" { capabilities = ["read"] }
`, "policy", "write", "app", "-"); code != 0 {
		t.Fatalf("policy write: %s", errOut)
	}
	c.ok([]string{"secrets", "enable", "database"})
	c.ok([]string{"write", "database/config/pg", "plugin_name=postgresql-database-plugin", "allowed_roles=app",
		"connection_url=postgresql://{{username}}:{{password}}@" + pg.Host + pg.Path + "?sslmode=disable",
		"username=" + rootUser, "password=" + rootPW})
	c.ok([]string{"write", "database/roles/app", "db_name=pg", "default_ttl=4s", "max_ttl=12s",
		`creation_statements=CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`})
	c.revokeAllCreds()
	c.ok([]string{"auth", "enable", "approle"})
	c.ok([]string{"write", "auth/approle/role/app", "token_policies=app", "token_ttl=4s", "token_max_ttl=12s"})
	roleID := strings.TrimSpace(c.ok([]string{"read", "-field=role_id", "auth/approle/role/app/role-id"}))
	secretID := strings.TrimSpace(c.ok([]string{"write", "-f", "-field=secret_id", "auth/approle/role/app/secret-id"}))
	files := map[string]string{"role_id": roleID, "secret_id": secretID}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	agentAddr := freeAddr(t)
	kvOut, dbOut, sink := filepath.Join(dir, "kv.out"), filepath.Join(dir, "db.out"), filepath.Join(dir, "token")
	agentCfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(agentCfg, []byte(`
vault { address = "http://`+addr+`" }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = "`+filepath.Join(dir, "role_id")+`"
      secret_id_file_path = "`+filepath.Join(dir, "secret_id")+`"
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" { config = { path = "`+sink+`" } }
}
cache {}
api_proxy { use_auto_auth_token = true }
listener "tcp" {
  address     = "`+agentAddr+`"
  tls_disable = true
}
template_config { static_secret_render_interval = "1s" }
template {
  contents    = "{{ with secret \"secret/data/app\" }}password={{ .Data.data.password }}{{ end }}"
  destination = "`+kvOut+`"
}
template {
  contents    = "{{ with secret \"database/creds/app\" }}{{ .Data.username }} {{ .Data.password }}{{ end }}"
  destination = "`+dbOut+`"
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := startProc(t, nil, c.bin, "agent", "-config="+agentCfg)
	read := func(p string) string { b, _ := os.ReadFile(p); return strings.TrimSpace(string(b)) }
	waitFor(t, 60*time.Second, "the agent to render both templates", func() bool { return read(kvOut) != "" && read(dbOut) != "" })
	if read(kvOut) != "password=one" {
		t.Fatalf("kv template: %q\n%s", read(kvOut), agent.out)
	}

	// The rendered credential is a working PostgreSQL login.
	firstCreds := read(dbOut)
	login := func(creds string) error {
		f := strings.Fields(creds)
		if len(f) != 2 {
			t.Fatalf("db template: %q", creds)
		}
		u := *pg
		u.User = url.UserPassword(f[0], f[1])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, u.String())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		var who string
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil {
			return err
		}
		if who != f[0] {
			t.Fatalf("logged in as %q, want %q", who, f[0])
		}
		return nil
	}
	if err := login(firstCreds); err != nil {
		t.Fatalf("rendered credential does not log in: %v", err)
	}

	// A new KV version is rendered.
	c.ok([]string{"kv", "put", "secret/app", "password=two"})
	waitFor(t, 30*time.Second, "the agent to render the new KV version", func() bool { return read(kvOut) == "password=two" })

	// The agent renews the credential's lease (the server records the
	// renewal) before its 4s TTL runs out.
	leases := func() []string {
		out, _, code := c.run("", "list", "-format=json", "sys/leases/lookup/database/creds/app/")
		var ids []string
		if code == 0 {
			_ = json.Unmarshal([]byte(out), &ids)
		}
		return ids
	}
	waitFor(t, 30*time.Second, "a renewal of the credential's lease", func() bool {
		for _, id := range leases() {
			out, _, code := c.run("", "write", "-format=json", "sys/leases/lookup", "lease_id=database/creds/app/"+id)
			var m map[string]any
			if code == 0 && json.Unmarshal([]byte(out), &m) == nil {
				if d, _ := m["data"].(map[string]any); d != nil && d["last_renewal"] != nil {
					return true
				}
			}
		}
		return false
	})

	// At max_ttl (12s) the agent fetches a new credential and re-renders.
	waitFor(t, 60*time.Second, "a new credential after max_ttl", func() bool { c := read(dbOut); return c != "" && c != firstCreds })
	if err := login(read(dbOut)); err != nil {
		t.Fatalf("re-rendered credential does not log in: %v", err)
	}
	// The expired credential's user is dropped when its lease ends.
	waitFor(t, 60*time.Second, "the old database user to be revoked", func() bool { return login(firstCreds) != nil })

	// The token reaches its max TTL (12s): the agent logs in again.
	firstToken := read(sink)
	waitFor(t, 60*time.Second, "re-authentication after the token's max TTL", func() bool { t := read(sink); return t != "" && t != firstToken })

	// The API proxy adds the auto-auth token.
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get("http://" + agentAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	waitFor(t, 30*time.Second, "the proxy to serve secret/data/app", func() bool {
		code, m := get("/v1/secret/data/app")
		d, _ := m["data"].(map[string]any)
		inner, _ := d["data"].(map[string]any)
		return code == 200 && inner["password"] == "two"
	})
	code, self := get("/v1/auth/token/lookup-self")
	d, _ := self["data"].(map[string]any)
	if code != 200 || !regexp.MustCompile(`^approle`).MatchString(str(d["display_name"])) || !strings.Contains(str(d["policies"]), "app") {
		t.Fatalf("lookup-self through the proxy: %d %v", code, self)
	}
	if t.Failed() {
		t.Logf("agent output:\n%s", agent.out)
	}
}
