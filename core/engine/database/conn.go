package database

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// connConfig is one stored connection, at config/<name>.
type connConfig struct {
	PluginName             string        `json:"plugin_name"`
	ConnectionURL          string        `json:"connection_url"`
	Username               string        `json:"username,omitempty"`
	Password               string        `json:"password,omitempty"`
	AllowedRoles           []string      `json:"allowed_roles,omitempty"`
	VerifyConnection       bool          `json:"verify_connection"`
	MaxOpenConnections     int           `json:"max_open_connections"`
	MaxIdleConnections     int           `json:"max_idle_connections"`
	MaxConnectionLifetime  time.Duration `json:"max_connection_lifetime"`
	PasswordPolicy         string        `json:"password_policy,omitempty"`
	UsernameTemplate       string        `json:"username_template,omitempty"`
	DisableEscaping        bool          `json:"disable_escaping,omitempty"`
	RootRotationStatements []string      `json:"root_rotation_statements,omitempty"`
	// PendingPassword is a root password being rotated to: written before
	// the server is told, cleared (or promoted to Password) after. If Vigil
	// stops in between, the next connection attempt tries both.
	PendingPassword string `json:"pending_password,omitempty"`
}

// defaultMaxOpenConnections is Vault's default pool size.
const defaultMaxOpenConnections = 4

// loadConfig returns the named config, or nil when there is none.
func loadConfig(ctx context.Context, s storage.Storage, name string) (*connConfig, error) {
	var c connConfig
	ok, err := storage.GetJSON(ctx, s, configPrefix+name, &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func saveConfig(ctx context.Context, s storage.Storage, name string, c *connConfig) error {
	return storage.PutJSON(ctx, s, configPrefix+name, c)
}

// mustConfig is loadConfig that turns a missing config into a CodeInvalid
// error naming it.
func mustConfig(ctx context.Context, s storage.Storage, name string) (*connConfig, error) {
	c, err := loadConfig(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.Invalid("no database connection named %q is configured", name)
	}
	return c, nil
}

// dsn renders c's connection URL with password.
func (c *connConfig) dsn(p plugin, password string) string {
	return p.render(c.ConnectionURL, c.Username, password, c.DisableEscaping)
}

// secrets returns the strings that must never reach a client or a log.
func (c *connConfig) secrets() []string {
	out := []string{c.Password, c.PendingPassword}
	if c.Password != "" {
		out = append(out, url.PathEscape(c.Password), url.QueryEscape(c.Password))
	}
	return out
}

// openDB opens a pool for c with password and applies the pool limits. It
// does not connect.
func (st *state) openDB(p plugin, c *connConfig, password string) (*sql.DB, error) {
	db, err := p.open(c.dsn(p, password), st.logger)
	if err != nil {
		return nil, err
	}
	maxOpen := c.MaxOpenConnections
	if maxOpen <= 0 {
		maxOpen = defaultMaxOpenConnections
	}
	maxIdle := c.MaxIdleConnections
	if maxIdle <= 0 || maxIdle > maxOpen {
		maxIdle = maxOpen
	}
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(maxIdle)
	db.SetConnMaxLifetime(c.MaxConnectionLifetime)
	return db, nil
}

// ping checks that db can connect, within verifyTimeout.
func ping(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	return db.PingContext(ctx)
}

// getPool returns the open pool for config name, opening it from storage
// when needed. A missing config is a CodeInvalid error. If a root rotation
// was interrupted (PendingPassword set), the pool is opened with whichever
// of the two passwords the server accepts, and the config is repaired.
func (b *Backend) getPool(ctx context.Context, st *state, name string) (*pool, error) {
	b.poolMu.Lock()
	defer b.poolMu.Unlock()
	if p := b.pools[name]; p != nil {
		return p, nil
	}
	c, err := mustConfig(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	plug, err := pluginFor(c.PluginName)
	if err != nil {
		return nil, err
	}
	db, err := st.openDB(plug, c, c.Password)
	if err != nil {
		return nil, connError("error opening database connection", err, c.secrets()...)
	}
	if c.PendingPassword != "" {
		if db, err = b.settlePending(ctx, st, name, plug, c, db); err != nil {
			return nil, err
		}
	}
	p := newPool(db, plug, c)
	if b.pools == nil {
		b.pools = map[string]*pool{}
	}
	b.pools[name] = p
	return p, nil
}

// settlePending resolves an interrupted root rotation: if the stored
// password still works the rotation never reached the server and the
// pending one is dropped; if only the pending one works it is promoted.
// c is updated in place and saved.
func (b *Backend) settlePending(ctx context.Context, st *state, name string, plug plugin, c *connConfig, db *sql.DB) (*sql.DB, error) {
	if ping(ctx, db) == nil {
		c.PendingPassword = ""
		return db, saveConfig(ctx, st.storage, name, c)
	}
	_ = db.Close()
	pdb, err := st.openDB(plug, c, c.PendingPassword)
	if err != nil {
		return nil, connError("error opening database connection", err, c.secrets()...)
	}
	if err := ping(ctx, pdb); err != nil {
		_ = pdb.Close()
		return nil, connError("error connecting after an interrupted root rotation", err, c.secrets()...)
	}
	st.logger.Warn("completed an interrupted root credential rotation", "config", name)
	c.Password, c.PendingPassword = c.PendingPassword, ""
	return pdb, saveConfig(ctx, st.storage, name, c)
}

// closePool closes and forgets config name's pool, if open.
func (b *Backend) closePool(name string) {
	b.poolMu.Lock()
	p := b.pools[name]
	delete(b.pools, name)
	b.poolMu.Unlock()
	if p != nil {
		_ = p.db.Close()
	}
}

// putPool installs an already verified pool for name, closing any other.
func (b *Backend) putPool(name string, p *pool) {
	b.poolMu.Lock()
	old := b.pools[name]
	if b.pools == nil {
		b.pools = map[string]*pool{}
	}
	b.pools[name] = p
	b.poolMu.Unlock()
	if old != nil {
		_ = old.db.Close()
	}
}

func (b *Backend) closeAllPools() {
	b.poolMu.Lock()
	ps := b.pools
	b.pools = nil
	b.poolMu.Unlock()
	for _, p := range ps {
		_ = p.db.Close()
	}
}

// scrub returns err's text with every non-trivial secret masked. Drivers
// may echo parts of a failing statement (a password literal) or a DSN.
func scrub(err error, secrets ...string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	return msg
}

// dbError is a failure reported by the database server or driver, with its
// message already scrubbed of secrets. It is the cause inside the
// core.Errors this engine returns, so its text is what the client sees.
type dbError struct{ msg string }

func (e *dbError) Error() string { return e.msg }

// connError wraps a driver error as a CodeInvalid core.Error prefixed with
// what, scrubbed of secrets: the operator's configuration or the server is
// at fault, and the driver's message says how.
func connError(what string, err error, secrets ...string) error {
	return core.Errorf(core.CodeInvalid, "%s: %w", what, &dbError{scrub(err, secrets...)})
}

// execError wraps a statement failure as a CodeInternal core.Error whose
// message (shown to the client) is the scrubbed driver message.
func execError(what string, err error, secrets ...string) error {
	var ce *core.Error
	if errors.As(err, &ce) {
		return err
	}
	return core.Errorf(core.CodeInternal, "%s: %w", what, &dbError{scrub(err, secrets...)})
}
