package bench

import (
	"context"
	"fmt"
	"net/url"
)

func init() {
	registerScenario(&Scenario{Name: "db-creds",
		Summary: "database (PostgreSQL) dynamic credentials: each request creates a login role with a 1h lease",
		Setup:   dbSetup})
}

// pgConnection splits an admin URL into Vault's templated connection_url
// and the username and password the engine substitutes into it.
func pgConnection(raw string) (connURL, user, pass string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("PostgreSQL URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", "", "", fmt.Errorf("PostgreSQL URL: scheme %q is not postgres://", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return "", "", "", fmt.Errorf("PostgreSQL URL: no user name")
	}
	user = u.User.Username()
	pass, _ = u.User.Password()
	u.User = nil
	rest := u.String()[len(u.Scheme)+3:] // after "scheme://"
	return u.Scheme + "://{{username}}:{{password}}@" + rest, user, pass, nil
}

func dbSetup(ctx context.Context, env *Env) (*Plan, error) {
	if env.PGURL == "" {
		return nil, skipf("db-creds needs PostgreSQL: pass --pg-url or set VIGIL_BENCH_PG_URL / VIGIL_TEST_PG_URL")
	}
	connURL, user, pass, err := pgConnection(env.PGURL)
	if err != nil {
		return nil, err
	}
	mount := env.Prefix + "-db"
	if err := mountSecrets(ctx, env.API, mount, "database", nil); err != nil {
		return nil, err
	}
	cleanup := func(ctx context.Context, api *API) error {
		// Revoke first (drops every role created), then unmount.
		if _, err := api.Do(ctx, "PUT", "sys/leases/revoke-prefix/"+mount+"/creds/bench", nil); err != nil {
			_ = unmount(ctx, api, mount)
			return fmt.Errorf("db-creds: revoke leases: %w", err)
		}
		return unmount(ctx, api, mount)
	}
	fail := func(step string, err error) (*Plan, error) {
		_ = unmount(ctx, env.API, mount)
		return nil, fmt.Errorf("db-creds: %s: %w", step, err)
	}
	if _, err := env.API.Do(ctx, "POST", mount+"/config/bench", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": connURL,
		"username": user, "password": pass, "allowed_roles": "bench", "verify_connection": true,
	}); err != nil {
		return fail("configure the connection", err)
	}
	if _, err := env.API.Do(ctx, "POST", mount+"/roles/bench", map[string]any{
		"db_name": "bench",
		"creation_statements": []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		},
		"default_ttl": "1h", "max_ttl": "24h",
	}); err != nil {
		return fail("create role", err)
	}
	path := mount + "/creds/bench"
	next := func(*Worker) Request { return Request{Method: "GET", Path: path} }
	return &Plan{Next: next, Cleanup: cleanup}, nil
}
