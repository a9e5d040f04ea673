package database

import (
	"strings"
	"testing"
)

// TestRedact pins how literal passwords are masked in connection URLs shown
// by config reads, while the {{password}} placeholder stays visible.
func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		p        plugin
		in, want string
	}{
		{postgresPlugin{}, "postgres://{{username}}:{{password}}@db:5432/app?sslmode=disable",
			"postgres://{{username}}:{{password}}@db:5432/app?sslmode=disable"},
		{postgresPlugin{}, "postgres://admin:s3cr3t@db:5432/app", "postgres://admin:*****@db:5432/app"},
		{postgresPlugin{}, "postgresql://admin:p@ss@db/app", "postgresql://admin:*****@db/app"},
		{postgresPlugin{}, "postgres://admin@db/app?password=s3cr3t&sslmode=disable", "postgres://admin@db/app?password=*****&sslmode=disable"},
		{postgresPlugin{}, "postgres://db/app?user=x&password={{password}}", "postgres://db/app?user=x&password={{password}}"},
		{postgresPlugin{}, "host=db user=admin password=s3cr3t dbname=app", "host=db user=admin password=***** dbname=app"},
		{postgresPlugin{}, "host=db password = 'a b' dbname=app", "host=db password = ***** dbname=app"},
		{postgresPlugin{}, "host=db password={{password}}", "host=db password={{password}}"},
		{mysqlPlugin{}, "{{username}}:{{password}}@tcp(db:3306)/app", "{{username}}:{{password}}@tcp(db:3306)/app"},
		{mysqlPlugin{}, "admin:s3:cr@t@tcp(db:3306)/app?x=y", "admin:*****@tcp(db:3306)/app?x=y"},
		{mysqlPlugin{}, "admin@tcp(db:3306)/app", "admin@tcp(db:3306)/app"},
	} {
		if got := tc.p.redact(tc.in); got != tc.want {
			t.Errorf("%s redact(%q) = %q, want %q", tc.p.name(), tc.in, got, tc.want)
		}
	}
}

// TestRender checks credential substitution and escaping per plugin.
func TestRender(t *testing.T) {
	const pgTpl = "postgres://{{username}}:{{password}}@db/app"
	if got := (postgresPlugin{}).render(pgTpl, "a@b", "p/w:x@y", false); got != "postgres://a%40b:p%2Fw%3Ax%40y@db/app" {
		t.Errorf("postgres escaped = %q", got)
	}
	if got := (postgresPlugin{}).render(pgTpl, "a@b", "p/w", true); got != "postgres://a@b:p/w@db/app" {
		t.Errorf("postgres unescaped = %q", got)
	}
	if got := (postgresPlugin{}).render("host=db user={{username}} password={{password}}", "a", "p/w", false); got != "host=db user=a password=p/w" {
		t.Errorf("postgres key=value = %q", got)
	}
	// MySQL: the driver does not unescape the password, so it is left as is.
	if got := (mysqlPlugin{}).render("{{username}}:{{password}}@tcp(db)/app", "a b", "p/w@x", false); got != "a%20b:p/w@x@tcp(db)/app" {
		t.Errorf("mysql = %q", got)
	}
}

// TestScrub checks secrets are masked in driver messages, and that very
// short strings are not (they would garble every message).
func TestScrub(t *testing.T) {
	err := errString(`syntax error at or near "'Abc-123-xyz'" for user admin`)
	if got := scrub(err, "Abc-123-xyz", "", "ad"); got != `syntax error at or near "'*****'" for user admin` {
		t.Errorf("scrub = %q", got)
	}
	if scrub(nil, "x") != "" {
		t.Error("scrub(nil) not empty")
	}
	ce := connError("error creating database object", err, "Abc-123-xyz")
	if strings.Contains(ce.Error(), "Abc-123-xyz") || !strings.HasPrefix(ce.Error(), "error creating database object: syntax error") {
		t.Errorf("connError = %q", ce)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPluginFor(t *testing.T) {
	for _, n := range []string{postgresPluginName, mysqlPluginName} {
		p, err := pluginFor(n)
		if err != nil || p.name() != n {
			t.Errorf("pluginFor(%q) = %v, %v", n, p, err)
		}
	}
	if _, err := pluginFor("mssql-database-plugin"); err == nil {
		t.Error("unknown plugin accepted")
	}
}

// TestDefaultPassword checks generated passwords follow the default policy
// and differ.
func TestDefaultPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		pw, err := defaultPassword()
		if err != nil {
			t.Fatal(err)
		}
		if !meetsDefaultPolicy(pw) {
			t.Fatalf("%q does not meet the default policy", pw)
		}
		if err := checkPasswordChars(pw); err != nil {
			t.Fatalf("%q: %v", pw, err)
		}
		if seen[pw] {
			t.Fatalf("%q generated twice", pw)
		}
		seen[pw] = true
	}
	for _, bad := range []string{"short-A1", "abcdefghijklmnopqrs-", "ABCDEFGHIJKLMNOPQR1-", "Abcdefghijklmnopqrs1", "Abcdefghijklmnopqr1!"} {
		if meetsDefaultPolicy(bad) {
			t.Errorf("meetsDefaultPolicy(%q) = true", bad)
		}
	}
	for _, bad := range []string{"", "a'b", `a\b`} {
		if checkPasswordChars(bad) == nil {
			t.Errorf("checkPasswordChars(%q) accepted it", bad)
		}
	}
}
