package database

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
)

// Plugin names, as Vault's catalog spells them.
const (
	postgresPluginName = "postgresql-database-plugin"
	mysqlPluginName    = "mysql-database-plugin"
)

// redacted replaces a secret in anything shown to a client or written to a log.
const redacted = "*****"

// plugin is one database flavour: how to open a pool from a connection URL,
// and what to run when a role or config gives no statements of its own.
// Implementations are stateless and safe for concurrent use.
type plugin interface {
	// name is the plugin_name that selects this flavour.
	name() string
	// open parses the rendered connection URL (credentials already
	// substituted) and returns a pool that has not connected yet. Its errors
	// never contain the password. log receives the driver's own messages.
	open(dsn string, log *slog.Logger) (*sql.DB, error)
	// render substitutes {{username}} and {{password}} into a connection URL
	// template, escaping them as the driver's URL syntax needs unless
	// disableEscaping is set.
	render(tpl, username, password string, disableEscaping bool) string
	// redact returns the connection URL with any literal password masked.
	redact(url string) string
	// maxUsernameLen is the longest user name the server accepts.
	maxUsernameLen() int
	// defaultUsernameTemplate is Vault's default template for this flavour.
	defaultUsernameTemplate() string
	// expiration formats a lease's end for the {{expiration}} placeholder.
	expiration(t time.Time) string
	// userExists reports whether a database user (role) named name exists.
	userExists(ctx context.Context, db *sql.DB, name string) (bool, error)
	// revokeUser removes a user with the flavour's default statements. It
	// must succeed when the user is already gone.
	revokeUser(ctx context.Context, db *sql.DB, name string) error
	// setPassword changes an existing user's password with the flavour's
	// default statements.
	setPassword(ctx context.Context, db *sql.DB, name, password string) error
	// renewUser extends a user's validity to expiration with the flavour's
	// default statements (a no-op where the server has no such notion).
	renewUser(ctx context.Context, db *sql.DB, name, expiration string) error
}

// plugins is the catalog of supported flavours.
var plugins = map[string]plugin{
	postgresPluginName: postgresPlugin{},
	mysqlPluginName:    mysqlPlugin{},
}

// pluginFor returns the named plugin or a CodeInvalid error naming the
// supported ones.
func pluginFor(name string) (plugin, error) {
	if p, ok := plugins[name]; ok {
		return p, nil
	}
	return nil, core.Invalid("unsupported plugin_name %q: supported are %s and %s", name, postgresPluginName, mysqlPluginName)
}

// unsafeIdentChars are characters a generated or configured user name must
// not contain: the default statements quote names with them, and statement
// templating does no escaping (as in Vault).
const unsafeIdentChars = "'\"`\\;\x00"

// checkIdentifier validates a database user name for use in statements.
func checkIdentifier(what, name string, maxLen int) error {
	switch {
	case name == "":
		return core.Invalid("%s is empty", what)
	case strings.ContainsAny(name, unsafeIdentChars):
		return core.Invalid("%s %q contains a character that cannot be used in statements (one of ' \" ` \\ ;)", what, name)
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return core.Invalid("%s contains a control character", what)
	case maxLen > 0 && len(name) > maxLen:
		return core.Invalid("%s %q is %d characters long; the database accepts at most %d", what, name, len(name), maxLen)
	}
	return nil
}

// checkPasswordChars validates a password for substitution into
// single-quoted statement literals.
func checkPasswordChars(pw string) error {
	if pw == "" {
		return core.Errorf(core.CodeInternal, "generated password is empty")
	}
	if strings.ContainsAny(pw, "'\\\x00") {
		return core.Invalid("password policy produced a password with a character that cannot be used in statements (' or \\)")
	}
	return nil
}
