package database

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fixedRandom returns the first n characters of a fixed string, so
// username templates have known answers.
func fixedRandom(n int, _ string) (string, error) {
	const s = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
	if n > len(s) {
		return "", errors.New("too long")
	}
	return s[:n], nil
}

var templateTime = time.Unix(1893553445, 0) // 2030-01-02 03:04:05 UTC

// TestDefaultUsernameTemplates pins Vault's default user names for both
// plugins: display name and role name truncated, then the whole name cut to
// the server's limit (63 for PostgreSQL, 32 for MySQL).
func TestDefaultUsernameTemplates(t *testing.T) {
	for _, tc := range []struct {
		plugin        plugin
		display, role string
		want          string
	}{
		{postgresPlugin{}, "root", "readonly", "v-root-readonly-AbCdEfGhIjKlMnOpQrSt-1893553445"},
		{postgresPlugin{}, "userpass-alice", "analytics-readers", "v-userpass-analytic-AbCdEfGhIjKlMnOpQrSt-1893553445"},
		{mysqlPlugin{}, "root", "readonly", "v-root-readonly-AbCdEfGhIjKlMnOp"},
		{mysqlPlugin{}, "userpass-alice", "analytics-readers", "v-userpass-a-analytics--AbCdEfGh"},
		// Characters that could break out of a quoted identifier are replaced.
		{postgresPlugin{}, `o'h"x`, "r", "v-o_h_x-r-AbCdEfGhIjKlMnOpQrSt-1893553445"},
	} {
		got, err := renderUsername(tc.plugin.defaultUsernameTemplate(), tc.plugin, tc.display, tc.role, templateTime, fixedRandom)
		if err != nil {
			t.Errorf("%s %s/%s: %v", tc.plugin.name(), tc.display, tc.role, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s %s/%s = %q, want %q", tc.plugin.name(), tc.display, tc.role, got, tc.want)
		}
		if len(got) > tc.plugin.maxUsernameLen() {
			t.Errorf("%q is longer than %d", got, tc.plugin.maxUsernameLen())
		}
	}
}

// TestDefaultUsernameLengthLimit checks the longest display and role names
// still give names within the limit, with real randomness.
func TestDefaultUsernameLengthLimit(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, p := range []plugin{postgresPlugin{}, mysqlPlugin{}} {
		got, err := renderUsername(p.defaultUsernameTemplate(), p, long, long, time.Now(), randomString)
		if err != nil {
			t.Fatal(err)
		}
		// PostgreSQL's default caps each part (at most 51 characters);
		// MySQL's is cut to its 32-character limit.
		want := map[string]int{postgresPluginName: 51, mysqlPluginName: 32}[p.name()]
		if len(got) != want || len(got) > p.maxUsernameLen() {
			t.Errorf("%s: %q has length %d, want %d (limit %d)", p.name(), got, len(got), want, p.maxUsernameLen())
		}
	}
}

func TestCustomUsernameTemplates(t *testing.T) {
	p := postgresPlugin{}
	for _, tc := range []struct{ tpl, want string }{
		{`{{ .RoleName | uppercase }}_{{ random 4 }}`, "RO_AbCd"},
		{`{{ printf "%s-%s" .DisplayName .RoleName | replace "-" "_" }}`, "root_ro"},
		{`u-{{ unix_time }}-{{ unix_time_millis }}`, "u-1893553445-1893553445000"},
		{`{{ timestamp "20060102" }}`, "20300102"},
		{`{{ .RoleName | sha256 | truncate 8 }}`, "7ef9ec0c"},
		{`{{ "abcdefghijkl" | truncate_sha256 10 }}`, "ab" + "d682ed4c"},
		{`{{ .RoleName | base64 }}`, "cm8="},
	} {
		got, err := renderUsername(tc.tpl, p, "root", "ro", templateTime, fixedRandom)
		if err != nil {
			t.Errorf("%s: %v", tc.tpl, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %q, want %q", tc.tpl, got, tc.want)
		}
	}
	for _, bad := range []string{
		`{{ .Nope }}`,                         // unknown field
		`{{ "it's" }}`,                        // quote in the result
		`{{ random 0 }}`,                      // bad length
		`{{ printf "%070d" 1 }}`,              // too long for PostgreSQL
		`{{ .RoleName | truncate_sha256 4 }}`, // bad limit
		`{{`,                                  // parse error
		`{{ "" }}`,                            // empty
	} {
		if got, err := renderUsername(bad, p, "root", "ro", templateTime, fixedRandom); err == nil {
			t.Errorf("%s rendered %q; want an error", bad, got)
		}
	}
}
