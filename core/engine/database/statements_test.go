package database

import (
	"reflect"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"one per element", []string{"CREATE ROLE a", "GRANT x TO a"}, []string{"CREATE ROLE a", "GRANT x TO a"}},
		{"semicolons split", []string{"CREATE ROLE a;  GRANT x TO a; "}, []string{"CREATE ROLE a", "GRANT x TO a"}},
		{"blank dropped", []string{"", " ; ;", "SELECT 1"}, []string{"SELECT 1"}},
		{"dollar quoted kept whole", []string{"DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;"},
			[]string{"DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;"}},
		{"nil", nil, nil},
	} {
		if got := splitStatements(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: splitStatements(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
	if hasStatements([]string{" ; "}) || !hasStatements([]string{"x"}) {
		t.Error("hasStatements is wrong")
	}
}

// TestSubstituteAfterSplit checks a ";" in a substituted value cannot split
// a statement, because splitting happens on the template.
func TestSubstituteAfterSplit(t *testing.T) {
	vars := userVars("v-a", "p;w", "2030-01-02 03:04:05+0000")
	var got []string
	for _, q := range splitStatements([]string{`CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT r TO "{{username}}"`}) {
		got = append(got, substitute(q, vars))
	}
	want := []string{
		`CREATE ROLE "v-a" PASSWORD 'p;w' VALID UNTIL '2030-01-02 03:04:05+0000'`,
		`GRANT r TO "v-a"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := substitute("{{other}} {{password}}", userVars("n", "", "")); got != "{{other}} {{password}}" {
		t.Errorf("unknown or unset placeholders must stay: %q", got)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "anything", true},
		{"app", "app", true},
		{"app", "app2", false},
		{"app-*", "app-web", true},
		{"app-*", "ap", false},
		{"*-ro", "web-ro", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxcyyb", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
	c := &connConfig{AllowedRoles: []string{"ro", "app-*"}}
	if !c.roleAllowed("ro") || !c.roleAllowed("app-x") || c.roleAllowed("rw") || (&connConfig{}).roleAllowed("ro") {
		t.Error("roleAllowed is wrong")
	}
}

func TestCheckIdentifier(t *testing.T) {
	for _, bad := range []string{"", `a'b`, `a"b`, "a`b", `a\b`, "a;b", "a\x00b", "a\nb"} {
		if err := checkIdentifier("username", bad, 0); err == nil {
			t.Errorf("checkIdentifier(%q) accepted it", bad)
		}
	}
	if err := checkIdentifier("username", "v-token-ro-AbC.d_e@f", 63); err != nil {
		t.Errorf("good name refused: %v", err)
	}
	if err := checkIdentifier("username", "abcd", 3); err == nil {
		t.Error("too long name accepted")
	}
}
