package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresPlugin is postgresql-database-plugin, on pgx's database/sql
// adapter.
type postgresPlugin struct{}

// pgDefaultUsernameTemplate is Vault's default PostgreSQL template; the
// result fits PostgreSQL's 63-byte identifier limit (NAMEDATALEN-1).
const pgDefaultUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

func (postgresPlugin) name() string                    { return postgresPluginName }
func (postgresPlugin) maxUsernameLen() int             { return 63 }
func (postgresPlugin) defaultUsernameTemplate() string { return pgDefaultUsernameTemplate }

// expiration uses the format Vault's PostgreSQL plugin gives VALID UNTIL.
func (postgresPlugin) expiration(t time.Time) string { return t.Format("2006-01-02 15:04:05-0700") }

// open parses dsn (a postgres:// URL or key=value string). Queries run over
// the simple protocol so that statements carrying passwords are never
// prepared or cached; pgx interpolates arguments safely on the client.
func (postgresPlugin) open(dsn string, _ *slog.Logger) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn) // pgx masks the password in its errors
	if err != nil {
		return nil, err
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	return stdlib.OpenDB(*cfg), nil
}

// render substitutes the credentials. In a URL ("postgres://...") they are
// escaped as URL user info unless disableEscaping is set; Vault path-escapes
// them, which leaves "@" and ":" unescaped and breaks such passwords. In a
// key=value string they are substituted as they are (escaping would corrupt
// them).
func (postgresPlugin) render(tpl, username, password string, disableEscaping bool) string {
	if !disableEscaping && strings.Contains(tpl, "://") {
		username = url.User(username).String()
		password = strings.TrimPrefix(url.UserPassword("", password).String(), ":")
	}
	return substitute(tpl, map[string]string{"username": username, "password": password})
}

var (
	pgQueryPassword = regexp.MustCompile(`(?i)([?&]password=)([^&#]*)`)
	pgKVPassword    = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']\S*)`)
)

// redact masks a literal password in a URL's user info, in a "password"
// query parameter, or in a key=value connection string. The {{password}}
// placeholder is left visible.
func (postgresPlugin) redact(s string) string {
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		authority := rest
		if i := strings.IndexAny(authority, "?#"); i >= 0 {
			authority = authority[:i]
		}
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			if user, pw, hasPW := strings.Cut(authority[:at], ":"); hasPW && pw != "{{password}}" {
				rest = user + ":" + redacted + rest[at:]
			}
		}
		s = scheme + "://" + rest
		return pgQueryPassword.ReplaceAllStringFunc(s, func(m string) string {
			sub := pgQueryPassword.FindStringSubmatch(m)
			if sub[2] == "{{password}}" {
				return m
			}
			return sub[1] + redacted
		})
	}
	return pgKVPassword.ReplaceAllStringFunc(s, func(m string) string {
		sub := pgKVPassword.FindStringSubmatch(m)
		if strings.Trim(sub[2], "'") == "{{password}}" {
			return m
		}
		return sub[1] + redacted
	})
}

// pgIdent quotes a PostgreSQL identifier.
func pgIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// pgLiteral quotes a PostgreSQL string literal (standard_conforming_strings).
func pgLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func (postgresPlugin) userExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var exists bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)`, name).Scan(&exists)
	return exists, err
}

// revokeUser locks the role out, ends its sessions, hands its objects to
// the connecting admin, strips its privileges and drops it. Only the final
// DROP ROLE must succeed; the steps before it are best effort (an admin
// without superuser may not be allowed some of them), and their errors are
// reported only if the drop fails too.
func (p postgresPlugin) revokeUser(ctx context.Context, db *sql.DB, name string) error {
	exists, err := p.userExists(ctx, db, name)
	if err != nil {
		return err
	}
	if !exists {
		return nil
	}
	q := pgIdent(name)
	var soft []error
	try := func(query string, args ...any) bool {
		if _, err := db.ExecContext(ctx, query, args...); err != nil {
			soft = append(soft, err)
			return false
		}
		return true
	}
	try(`ALTER ROLE ` + q + ` NOLOGIN`)
	try(`SELECT pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`, name)
	try(`REASSIGN OWNED BY ` + q + ` TO CURRENT_USER`)
	if !try(`DROP OWNED BY ` + q) {
		// Fall back to Vault's explicit revocations.
		schemas := []string{"public"}
		rows, err := db.QueryContext(ctx, `SELECT DISTINCT table_schema FROM information_schema.role_table_grants WHERE grantee = $1`, name)
		if err == nil {
			for rows.Next() {
				var s string
				if rows.Scan(&s) == nil && s != "public" {
					schemas = append(schemas, s)
				}
			}
			_ = rows.Close()
		}
		for _, s := range schemas {
			try(`REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA ` + pgIdent(s) + ` FROM ` + q)
			try(`REVOKE ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA ` + pgIdent(s) + ` FROM ` + q)
			try(`REVOKE USAGE ON SCHEMA ` + pgIdent(s) + ` FROM ` + q)
		}
		var dbname string
		if db.QueryRowContext(ctx, `SELECT current_database()`).Scan(&dbname) == nil {
			try(`REVOKE CONNECT ON DATABASE ` + pgIdent(dbname) + ` FROM ` + q)
		}
	}
	if _, err := db.ExecContext(ctx, `DROP ROLE IF EXISTS `+q); err != nil {
		if len(soft) > 0 {
			return fmt.Errorf("drop role: %w (earlier steps: %w)", err, errors.Join(soft...))
		}
		return fmt.Errorf("drop role: %w", err)
	}
	return nil
}

func (postgresPlugin) setPassword(ctx context.Context, db *sql.DB, name, password string) error {
	_, err := db.ExecContext(ctx, `ALTER ROLE `+pgIdent(name)+` WITH PASSWORD `+pgLiteral(password))
	return err
}

func (postgresPlugin) renewUser(ctx context.Context, db *sql.DB, name, expiration string) error {
	_, err := db.ExecContext(ctx, `ALTER ROLE `+pgIdent(name)+` VALID UNTIL `+pgLiteral(expiration))
	return err
}
