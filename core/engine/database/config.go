package database

import (
	"context"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) configListRoute() framework.Route {
	return framework.Route{
		Pattern:    "config/?",
		Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.configList},
		Help:       "Lists the configured database connections.",
	}
}

func (b *Backend) configRoute() framework.Route {
	return framework.Route{
		Pattern: "config/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":           {Type: framework.TypeString, Description: "Name of this database connection."},
			"plugin_name":    {Type: framework.TypeString, Description: "postgresql-database-plugin or mysql-database-plugin."},
			"plugin_version": {Type: framework.TypeString, Description: "Must be empty: only the built-in plugins exist."},
			"verify_connection": {Type: framework.TypeBool, Default: true,
				Description: "Open and ping the connection before saving it. Defaults to true."},
			"allowed_roles": {Type: framework.TypeCommaStringSlice,
				Description: `Roles allowed to use this connection; "*" allows all, "*" globs match.`},
			"root_rotation_statements": {Type: framework.TypeStringSlice,
				Description: "Statements that change the root password; {{username}} and {{password}} are substituted."},
			"password_policy":   {Type: framework.TypeString, Description: "Name of the password policy for generated passwords."},
			"connection_url":    {Type: framework.TypeString, Description: "Connection URL; {{username}} and {{password}} are substituted."},
			"username":          {Type: framework.TypeString, Description: "Root user name for {{username}}."},
			"password":          {Type: framework.TypeString, Description: "Root password for {{password}}. Never returned."},
			"username_template": {Type: framework.TypeString, Description: "Template for generated user names."},
			"disable_escaping":  {Type: framework.TypeBool, Description: "Do not URL-escape the credentials substituted into connection_url."},
			"max_open_connections": {Type: framework.TypeInt, Default: defaultMaxOpenConnections,
				Description: "Maximum open connections to the database. Defaults to 4."},
			"max_idle_connections": {Type: framework.TypeInt,
				Description: "Maximum idle connections; 0 or more than max_open_connections means max_open_connections."},
			"max_connection_lifetime": {Type: framework.TypeDurationSecond, Description: "Maximum lifetime of a connection; 0 is unlimited."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.configRead,
			core.OpCreate: b.configWrite,
			core.OpUpdate: b.configWrite,
			core.OpDelete: b.configDelete,
		},
		ExistenceCheck: b.configExists,
		Help:           "Configures a connection to a database.",
	}
}

func (b *Backend) configExists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	st, err := b.state()
	if err != nil {
		return false, err
	}
	c, err := loadConfig(ctx, st.storage, d.String("name"))
	return c != nil, err
}

func (b *Backend) configList(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	return listKeys(ctx, st.storage, configPrefix)
}

// configRead returns the connection as Vault shows it: connection_details
// without the password (and with any literal password in the URL masked).
func (b *Backend) configRead(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	c, err := loadConfig(ctx, st.storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: c.publicView()}, nil
}

// publicView is the read shape of a config. It never includes Password or
// PendingPassword.
func (c *connConfig) publicView() map[string]any {
	connURL := redacted
	if p, err := pluginFor(c.PluginName); err == nil {
		connURL = p.redact(c.ConnectionURL)
	}
	details := map[string]any{
		"connection_url":          connURL,
		"username":                c.Username,
		"max_open_connections":    c.MaxOpenConnections,
		"max_idle_connections":    c.MaxIdleConnections,
		"max_connection_lifetime": c.MaxConnectionLifetime.String(),
	}
	if c.UsernameTemplate != "" {
		details["username_template"] = c.UsernameTemplate
	}
	if c.DisableEscaping {
		details["disable_escaping"] = true
	}
	return map[string]any{
		"plugin_name":                        c.PluginName,
		"plugin_version":                     "",
		"connection_details":                 details,
		"allowed_roles":                      emptyIfNil(c.AllowedRoles),
		"root_credentials_rotate_statements": emptyIfNil(c.RootRotationStatements),
		"password_policy":                    c.PasswordPolicy,
		"verify_connection":                  c.VerifyConnection,
	}
}

// configWrite creates or updates a connection. On update, fields not given
// keep their stored values (as Vault merges connection details). With
// verify_connection (the default) the connection is opened and pinged
// first; if that fails the request fails with the driver's message and
// nothing is stored.
func (b *Backend) configWrite(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	if name == "" {
		return nil, core.Invalid("missing connection name")
	}
	lock := b.configLock(name)
	lock.Lock()
	defer lock.Unlock()

	old, err := loadConfig(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	c := &connConfig{VerifyConnection: true, MaxOpenConnections: defaultMaxOpenConnections}
	if old != nil {
		cp := *old
		c = &cp
		// A pending root password (an interrupted rotate-root) is kept
		// until it is settled, unless the operator sets a new password.
		if d.Has("password") {
			c.PendingPassword = ""
		}
	}
	if d.Has("plugin_name") {
		pn := d.String("plugin_name")
		if old != nil && pn != old.PluginName {
			return nil, core.Invalid("cannot change plugin_name of connection %q from %q to %q; delete it first", name, old.PluginName, pn)
		}
		c.PluginName = pn
	}
	if c.PluginName == "" {
		return nil, core.Invalid("empty plugin name")
	}
	plug, err := pluginFor(c.PluginName)
	if err != nil {
		return nil, err
	}
	if v := d.String("plugin_version"); v != "" {
		return nil, core.Invalid("plugin_version %q is not available: only the built-in %s exists", v, c.PluginName)
	}
	if d.Has("verify_connection") {
		c.VerifyConnection = d.Bool("verify_connection")
	}
	if d.Has("allowed_roles") {
		c.AllowedRoles = d.Strings("allowed_roles")
	}
	if d.Has("root_rotation_statements") {
		c.RootRotationStatements = d.Strings("root_rotation_statements")
	}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"password_policy", &c.PasswordPolicy},
		{"connection_url", &c.ConnectionURL},
		{"username", &c.Username},
		{"password", &c.Password},
		{"username_template", &c.UsernameTemplate},
	} {
		if d.Has(f.key) {
			*f.dst = d.String(f.key)
		}
	}
	if d.Has("disable_escaping") {
		c.DisableEscaping = d.Bool("disable_escaping")
	}
	if d.Has("max_open_connections") {
		c.MaxOpenConnections = d.Int("max_open_connections")
	}
	if d.Has("max_idle_connections") {
		c.MaxIdleConnections = d.Int("max_idle_connections")
	}
	if d.Has("max_connection_lifetime") {
		c.MaxConnectionLifetime = d.Duration("max_connection_lifetime")
	}
	if err := validateConfig(st, plug, c); err != nil {
		return nil, err
	}

	var verified *pool
	if c.VerifyConnection {
		db, err := st.openDB(plug, c, c.Password)
		if err != nil {
			return nil, connError("error creating database object", err, c.secrets()...)
		}
		if err := ping(ctx, db); err != nil {
			_ = db.Close()
			return nil, connError("error creating database object: error verifying connection", err, c.secrets()...)
		}
		verified = newPool(db, plug, c)
	}
	if err := saveConfig(ctx, st.storage, name, c); err != nil {
		if verified != nil {
			_ = verified.db.Close()
		}
		return nil, err
	}
	if verified != nil {
		b.putPool(name, verified)
	} else {
		b.closePool(name)
	}
	st.logger.Info("database connection configured", "config", name, "plugin", c.PluginName, "verified", c.VerifyConnection)

	resp := &core.Response{}
	if c.Password != "" && !strings.Contains(c.ConnectionURL, "{{password}}") {
		resp.AddWarning("Password found in connection_details; to use this password, connection_url must contain {{password}}")
	}
	if resp.IsEmpty() {
		return nil, nil
	}
	return resp, nil
}

// validateConfig checks a config before it is verified or stored.
func validateConfig(st *state, p plugin, c *connConfig) error {
	if strings.TrimSpace(c.ConnectionURL) == "" {
		return core.Invalid("connection_url cannot be empty")
	}
	for _, s := range []string{c.Username, c.Password} {
		if strings.Contains(s, "{{username}}") || strings.Contains(s, "{{password}}") {
			return core.Invalid("username and/or password cannot contain the template variables")
		}
	}
	if c.MaxOpenConnections < 0 || c.MaxIdleConnections < 0 {
		return core.Invalid("max_open_connections and max_idle_connections must not be negative")
	}
	if c.UsernameTemplate != "" {
		if _, err := renderUsername(c.UsernameTemplate, p, "token", "role", time.Unix(0, 0), randomString); err != nil {
			return err
		}
	}
	if c.PasswordPolicy != "" {
		if _, ok := passwordPolicies(st.system); !ok {
			return core.Invalid("password_policy %q cannot be used: this server has no password policies", c.PasswordPolicy)
		}
	}
	return nil
}

// configDelete removes a connection and closes its pool. Leases issued
// through it can no longer be revoked until it is configured again.
func (b *Backend) configDelete(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	lock := b.configLock(name)
	lock.Lock()
	defer lock.Unlock()
	if err := st.storage.Delete(ctx, configPrefix+name); err != nil {
		return nil, err
	}
	b.closePool(name)
	return nil, nil
}

func (b *Backend) resetRoute() framework.Route {
	return framework.Route{
		Pattern: "reset/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the database connection to reset."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.reset},
		Help:       "Closes a connection's pool and reconnects with the stored configuration.",
	}
}

// reset closes the named pool and opens a fresh one. When the config asks
// for verification the new pool is pinged and a failure is reported.
func (b *Backend) reset(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	lock := b.configLock(name)
	lock.Lock()
	defer lock.Unlock()
	c, err := mustConfig(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	b.closePool(name)
	p, err := b.getPool(ctx, st, name)
	if err != nil {
		return nil, err
	}
	if c.VerifyConnection {
		if err := ping(ctx, p.db); err != nil {
			b.closePool(name)
			return nil, connError("error resetting connection", err, c.secrets()...)
		}
	}
	return nil, nil
}

// roleAllowed reports whether role may use connection c: allowed_roles
// holds "*", the role's name, or a glob ("*" matches any run) matching it.
func (c *connConfig) roleAllowed(role string) bool {
	for _, pat := range c.AllowedRoles {
		if globMatch(pat, role) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern, where "*" matches any sequence of
// characters and every other character matches itself.
func globMatch(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}
