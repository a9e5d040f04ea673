package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlPlugin is mysql-database-plugin (MySQL and MariaDB), on
// go-sql-driver/mysql.
type mysqlPlugin struct{}

// mysqlDefaultUsernameTemplate is Vault's default MySQL template; the
// result fits MySQL's 32-character user name limit.
const mysqlDefaultUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}`

func (mysqlPlugin) name() string                    { return mysqlPluginName }
func (mysqlPlugin) maxUsernameLen() int             { return 32 }
func (mysqlPlugin) defaultUsernameTemplate() string { return mysqlDefaultUsernameTemplate }
func (mysqlPlugin) expiration(t time.Time) string   { return t.Format("2006-01-02 15:04:05-0700") }

// slogPrinter forwards the driver's own log lines (dropped connections) to
// the mount's logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Print(v ...any) { p.log.Warn("mysql driver: " + fmt.Sprint(v...)) }

// open parses a go-sql-driver DSN ("user:pass@tcp(host:port)/db?params").
// Parse errors from the driver never include the password.
func (mysqlPlugin) open(dsn string, log *slog.Logger) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = connectTimeout
	}
	cfg.Logger = slogPrinter{log}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// render escapes only the user name (Vault's behaviour): the driver does not
// unescape the password, and finds the user info's end at the last "@".
func (mysqlPlugin) render(tpl, username, password string, disableEscaping bool) string {
	if !disableEscaping {
		username = url.PathEscape(username)
	}
	return substitute(tpl, map[string]string{"username": username, "password": password})
}

// redact masks a literal password in the DSN's user info, found the way the
// driver finds it (the last "@" before the last "/", the first ":" before it).
func (mysqlPlugin) redact(dsn string) string {
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		return dsn
	}
	at := strings.LastIndex(dsn[:slash], "@")
	if at < 0 {
		return dsn
	}
	user, pw, ok := strings.Cut(dsn[:at], ":")
	if !ok || pw == "{{password}}" {
		return dsn
	}
	return user + ":" + redacted + dsn[at:]
}

// mysqlString quotes a MySQL string literal.
func mysqlString(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// hosts returns the host parts of every account named name.
func (mysqlPlugin) hosts(ctx context.Context, db *sql.DB, name string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT Host FROM mysql.user WHERE User = ?`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (p mysqlPlugin) userExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	hosts, err := p.hosts(ctx, db, name)
	return len(hosts) > 0, err
}

// revokeUser ends the user's sessions and drops every account with its
// name (whatever the host part), as Vault's default
// "REVOKE ALL PRIVILEGES, GRANT OPTION ...; DROP USER ..." does for '%'.
// Ending sessions is best effort; the drops must succeed.
func (p mysqlPlugin) revokeUser(ctx context.Context, db *sql.DB, name string) error {
	hosts, err := p.hosts(ctx, db, name)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return nil
	}
	var errs []error
	for _, h := range hosts {
		account := mysqlString(name) + "@" + mysqlString(h)
		// Lock the account first so no new session starts between the kill
		// and the drop; MariaDB and MySQL 8 know ACCOUNT LOCK.
		_, _ = db.ExecContext(ctx, `ALTER USER `+account+` ACCOUNT LOCK`)
		if _, err := db.ExecContext(ctx, `DROP USER IF EXISTS `+account); err != nil {
			errs = append(errs, fmt.Errorf("drop user %s: %w", account, err))
		}
	}
	p.killSessions(ctx, db, name)
	return errors.Join(errs...)
}

// killSessions ends the sessions of name (best effort: DROP USER does not
// end them on MySQL or MariaDB).
func (mysqlPlugin) killSessions(ctx context.Context, db *sql.DB, name string) {
	rows, err := db.QueryContext(ctx, `SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?`, name)
	if err != nil {
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	_ = rows.Close()
	for _, id := range ids {
		_, _ = db.ExecContext(ctx, fmt.Sprintf(`KILL CONNECTION %d`, id))
	}
}

// setPassword runs ALTER USER ... IDENTIFIED BY for every account named
// name. It fails when there is none.
func (p mysqlPlugin) setPassword(ctx context.Context, db *sql.DB, name, password string) error {
	hosts, err := p.hosts(ctx, db, name)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		return fmt.Errorf("user %q does not exist", name)
	}
	for _, h := range hosts {
		if _, err := db.ExecContext(ctx, `ALTER USER `+mysqlString(name)+`@`+mysqlString(h)+` IDENTIFIED BY `+mysqlString(password)); err != nil {
			return err
		}
	}
	return nil
}

// renewUser does nothing: MySQL accounts carry no expiry Vault manages.
func (mysqlPlugin) renewUser(context.Context, *sql.DB, string, string) error { return nil }
