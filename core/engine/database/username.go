package database

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
)

// usernameData is what a username_template sees, as in Vault.
type usernameData struct {
	DisplayName string
	RoleName    string
}

// usernameFuncs returns the template functions Vault's username templates
// offer (sdk/helper/template). Piped values come last: `.RoleName | truncate 8`
// is truncate(8, .RoleName). randomFn supplies random strings and now the
// clock, so tests can pin both.
func usernameFuncs(now time.Time, randomFn func(n int, charset string) (string, error)) template.FuncMap {
	return template.FuncMap{
		"random": func(args ...any) (string, error) {
			if len(args) == 0 || len(args) > 2 {
				return "", fmt.Errorf("random: want a length and an optional charset")
			}
			n, err := toInt(args[0])
			if err != nil || n <= 0 || n > 1024 {
				return "", fmt.Errorf("random: invalid length %v", args[0])
			}
			charset := alphanumeric
			if len(args) == 2 {
				cs, ok := args[1].(string)
				if !ok || cs == "" {
					return "", fmt.Errorf("random: charset must be a non-empty string")
				}
				charset = cs
			}
			return randomFn(n, charset)
		},
		"truncate": func(maxLen int, s string) (string, error) {
			if maxLen <= 0 {
				return "", fmt.Errorf("truncate: max length must be positive")
			}
			if len(s) > maxLen {
				s = s[:maxLen]
			}
			return s, nil
		},
		"truncate_sha256": func(maxLen int, s string) (string, error) {
			if maxLen <= 8 {
				return "", fmt.Errorf("truncate_sha256: max length must be greater than 8")
			}
			if len(s) <= maxLen {
				return s, nil
			}
			sum := sha256.Sum256([]byte(s))
			return s[:maxLen-8] + hex.EncodeToString(sum[:])[:8], nil
		},
		"sha256":           func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) },
		"base64":           func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"uppercase":        strings.ToUpper,
		"lowercase":        strings.ToLower,
		"replace":          func(find, repl, s string) string { return strings.ReplaceAll(s, find, repl) },
		"uuid":             func() (string, error) { u, err := uuid.NewRandom(); return u.String(), err },
		"unix_time":        func() string { return strconv.FormatInt(now.Unix(), 10) },
		"unix_time_millis": func() string { return strconv.FormatInt(now.UnixMilli(), 10) },
		"timestamp":        func(layout string) string { return now.UTC().Format(layout) },
	}
}

func toInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case string:
		return strconv.Atoi(x)
	}
	return 0, fmt.Errorf("not an integer: %v", v)
}

// parseUsernameTemplate parses tpl with Vault's functions (their bodies are
// bound at execution), returning a CodeInvalid error for a bad template.
func parseUsernameTemplate(tpl string) (*template.Template, error) {
	t, err := template.New("username").Option("missingkey=error").
		Funcs(usernameFuncs(time.Time{}, randomString)).Parse(tpl)
	if err != nil {
		return nil, core.Invalid("invalid username_template: %s", err)
	}
	return t, nil
}

// renderUsername executes tpl for a display name and role name at now and
// validates the result for the plugin (no quoting characters, within the
// server's length limit). Display and role names are first reduced to
// characters that are safe in quoted identifiers (others become "_"), since
// display names come from auth methods and statements are not escaped.
func renderUsername(tpl string, p plugin, displayName, roleName string, now time.Time,
	randomFn func(n int, charset string) (string, error)) (string, error) {
	t, err := parseUsernameTemplate(tpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	data := usernameData{DisplayName: safeNamePart(displayName), RoleName: safeNamePart(roleName)}
	if err := t.Funcs(usernameFuncs(now, randomFn)).Execute(&b, data); err != nil {
		return "", core.Invalid("username_template: %s", err)
	}
	name := strings.TrimSpace(b.String())
	if err := checkIdentifier("generated username", name, p.maxUsernameLen()); err != nil {
		return "", err
	}
	return name, nil
}

// safeNamePart keeps letters, digits and "_.-@" and replaces anything else
// with "_".
func safeNamePart(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_.-@", r):
			return r
		}
		return '_'
	}, s)
}
