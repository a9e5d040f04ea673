// Package dbtest gives the database engine's tests the real PostgreSQL and
// MariaDB servers started by .ci/services (never mocks): connection URLs
// in the engine's templated form, admin access to inspect and prepare the
// server, and real logins with generated credentials.
//
// The servers are found through VIGIL_TEST_PG_URL and VIGIL_TEST_MYSQL_DSN
// (source /tmp/vigil-services/env.sh). When one is missing a test is
// skipped, or failed when VIGIL_REQUIRE_SERVICES=1.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/vigilsec/vigil/core/testsvc"
)

// Environment variables naming the test servers.
const (
	EnvPostgres = "VIGIL_TEST_PG_URL"
	EnvMySQL    = "VIGIL_TEST_MYSQL_DSN"
)

// Kind is a server flavour.
type Kind string

const (
	Postgres Kind = "postgres"
	MySQL    Kind = "mysql"
)

// Server is one real database server reached with its admin login.
type Server struct {
	Kind Kind
	// Plugin is the engine's plugin_name for this server.
	Plugin string
	// TemplateURL is the admin connection URL with {{username}} and
	// {{password}} in place of the credentials.
	TemplateURL string
	// AdminUser and AdminPassword are the admin login (a superuser on
	// PostgreSQL, ALL PRIVILEGES WITH GRANT OPTION on MariaDB). Tests must
	// never rotate this password.
	AdminUser, AdminPassword string
	// UnreachableURL points at a port nothing listens on.
	UnreachableURL string
	// DBName is the database the admin connects to.
	DBName string

	// Admin is a pool logged in as the admin, closed when the test ends.
	Admin *sql.DB

	pgCfg *pgx.ConnConfig
	myCfg *mysql.Config
}

// lookup returns the environment variable, or skips/fails tb.
func lookup(tb testing.TB, env string) string {
	tb.Helper()
	return testsvc.Env(tb, env)
}

// MustPostgres returns the PostgreSQL test server.
func MustPostgres(tb testing.TB) *Server {
	tb.Helper()
	raw := lookup(tb, EnvPostgres)
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", EnvPostgres, err)
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		tb.Fatalf("dbtest: %s must be a postgres:// URL with user info", EnvPostgres)
	}
	pw, _ := u.User.Password()
	tpl := *u
	tpl.User = nil
	templated := strings.Replace(tpl.String(), "://", "://{{username}}:{{password}}@", 1)
	unreach := *u
	unreach.User = nil
	unreach.Host = "127.0.0.1:1"
	s := &Server{
		Kind: Postgres, Plugin: "postgresql-database-plugin", TemplateURL: templated,
		AdminUser: u.User.Username(), AdminPassword: pw, DBName: cfg.Database,
		UnreachableURL: strings.Replace(unreach.String(), "://", "://{{username}}:{{password}}@", 1),
		pgCfg:          cfg,
	}
	s.Admin = stdlib.OpenDB(*cfg.Copy())
	s.mustPing(tb)
	return s
}

// MustMySQL returns the MariaDB/MySQL test server.
func MustMySQL(tb testing.TB) *Server {
	tb.Helper()
	raw := lookup(tb, EnvMySQL)
	cfg, err := mysql.ParseDSN(raw)
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", EnvMySQL, err)
	}
	slash := strings.LastIndex(raw, "/")
	at := strings.LastIndex(raw[:slash], "@")
	if at < 0 {
		tb.Fatalf("dbtest: %s must hold user:password@", EnvMySQL)
	}
	rest := raw[at:] // "@tcp(host:port)/db?params"
	unreach := "@" + cfg.Net + "(127.0.0.1:1)" + raw[slash:]
	s := &Server{
		Kind: MySQL, Plugin: "mysql-database-plugin", TemplateURL: "{{username}}:{{password}}" + rest,
		AdminUser: cfg.User, AdminPassword: cfg.Passwd, DBName: cfg.DBName,
		UnreachableURL: "{{username}}:{{password}}" + unreach,
		myCfg:          cfg,
	}
	conn, err := mysql.NewConnector(cfg.Clone())
	if err != nil {
		tb.Fatal(err)
	}
	s.Admin = sql.OpenDB(conn)
	s.mustPing(tb)
	return s
}

// ForEach runs f as a subtest against each server, "postgres" and "mysql".
func ForEach(t *testing.T, f func(t *testing.T, s *Server)) {
	t.Helper()
	for _, k := range []Kind{Postgres, MySQL} {
		t.Run(string(k), func(t *testing.T) {
			var s *Server
			if k == Postgres {
				s = MustPostgres(t)
			} else {
				s = MustMySQL(t)
			}
			f(t, s)
		})
	}
}

func (s *Server) mustPing(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Admin.PingContext(ctx); err != nil {
		_ = s.Admin.Close()
		tb.Fatalf("dbtest: %s server unreachable: %v", s.Kind, err)
	}
	tb.Cleanup(func() { _ = s.Admin.Close() })
}

// UniqueName returns prefix followed by 8 random lower-case hex digits.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Login opens a fresh connection (no pool) as user/password and runs
// SELECT 1. It returns the driver's error when the login fails.
func (s *Server) Login(user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch s.Kind {
	case Postgres:
		cfg := s.pgCfg.Copy()
		cfg.User, cfg.Password = user, password
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		var one int
		return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	default:
		cfg := s.myCfg.Clone()
		cfg.User, cfg.Passwd = user, password
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			return err
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		db.SetMaxIdleConns(0)
		var one int
		return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	}
}

// WaitLoginFails polls Login until it fails or timeout passes, and reports
// whether it failed.
func (s *Server) WaitLoginFails(user, password string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if s.Login(user, password) != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Users returns the sorted names of the server's users (roles) that start
// with prefix.
func (s *Server) Users(tb testing.TB, prefix string) []string {
	tb.Helper()
	q := `SELECT rolname FROM pg_catalog.pg_roles`
	if s.Kind == MySQL {
		q = `SELECT DISTINCT User FROM mysql.user`
	}
	rows, err := s.Admin.Query(q)
	if err != nil {
		tb.Fatalf("dbtest: list users: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// UserExists reports whether a user named name exists.
func (s *Server) UserExists(tb testing.TB, name string) bool {
	tb.Helper()
	for _, u := range s.Users(tb, name) {
		if u == name {
			return true
		}
	}
	return false
}

// CreateUser creates a login user (admin when admin is set) and drops it
// when the test ends.
func (s *Server) CreateUser(tb testing.TB, name, password string, admin bool) {
	tb.Helper()
	var stmts []string
	switch s.Kind {
	case Postgres:
		attrs := "LOGIN"
		if admin {
			attrs = "LOGIN SUPERUSER CREATEROLE"
		}
		stmts = []string{fmt.Sprintf(`CREATE ROLE %q WITH %s PASSWORD '%s'`, name, attrs, password)}
	default:
		stmts = []string{fmt.Sprintf(`CREATE USER '%s'@'%%' IDENTIFIED BY '%s'`, name, password)}
		if admin {
			stmts = append(stmts, fmt.Sprintf(`GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION`, name))
		} else {
			stmts = append(stmts, fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'%%'", s.DBName, name))
		}
	}
	for _, q := range stmts {
		if _, err := s.Admin.Exec(q); err != nil {
			tb.Fatalf("dbtest: create user %s: %v", name, err)
		}
	}
	tb.Cleanup(func() {
		if err := s.DropUser(name); err != nil {
			tb.Errorf("dbtest: drop user %s: %v", name, err)
		}
	})
}

// DropUser removes a user and ends its sessions; a missing user is fine.
func (s *Server) DropUser(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch s.Kind {
	case Postgres:
		_, _ = s.Admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, name)
		_, _ = s.Admin.ExecContext(ctx, fmt.Sprintf(`DROP OWNED BY %q`, name))
		_, err := s.Admin.ExecContext(ctx, fmt.Sprintf(`DROP ROLE IF EXISTS %q`, name))
		return err
	default:
		rows, err := s.Admin.QueryContext(ctx, `SELECT Host FROM mysql.user WHERE User = ?`, name)
		if err != nil {
			return err
		}
		var hosts []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return err
			}
			hosts = append(hosts, h)
		}
		rows.Close()
		var errs []error
		for _, h := range hosts {
			if _, err := s.Admin.ExecContext(ctx, fmt.Sprintf(`DROP USER IF EXISTS '%s'@'%s'`, name, h)); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// CreationStatements returns statements that create a login user able to
// read the test database, with the engine's placeholders.
func (s *Server) CreationStatements() []string {
	if s.Kind == Postgres {
		return []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
			`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
		}
	}
	return []string{
		`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';`,
		"GRANT SELECT ON `" + s.DBName + "`.* TO '{{name}}'@'%';",
	}
}

// FailingCreationStatements create the user and then fail (a grant on a
// table that does not exist), so the engine must undo the creation.
func (s *Server) FailingCreationStatements() []string {
	if s.Kind == Postgres {
		return []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}';`,
			`GRANT SELECT ON vigil_no_such_table TO "{{name}}";`,
		}
	}
	return []string{
		`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';`,
		"GRANT SELECT ON `" + s.DBName + "`.vigil_no_such_table TO '{{name}}'@'%';",
	}
}

// ValidUntil returns a PostgreSQL role's VALID UNTIL time (zero when none).
func (s *Server) ValidUntil(tb testing.TB, name string) time.Time {
	tb.Helper()
	var t sql.NullTime
	if err := s.Admin.QueryRow(`SELECT rolvaliduntil FROM pg_catalog.pg_roles WHERE rolname = $1`, name).Scan(&t); err != nil {
		tb.Fatalf("dbtest: valid until of %s: %v", name, err)
	}
	return t.Time
}
