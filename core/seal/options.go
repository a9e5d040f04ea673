package seal

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// Options are a seal block's settings (config `seal "type" { key = value }`),
// with Vault's environment variables as fallbacks.
type Options struct {
	Type   string
	Values map[string]string
	// Where names the block for error messages ("vigil.hcl:12").
	Where string
	// Getenv looks environment variables up; nil means os.Getenv.
	Getenv func(string) string
}

// Factory builds a seal of one type from its options. It must not contact
// the seal's backend: the server starts (sealed) even when it is down, and
// the Manager reports and retries.
type Factory func(ctx context.Context, o Options) (Seal, error)

// Get returns the value of key, else of the first set environment variable.
func (o Options) Get(key string, env ...string) string {
	if v, ok := o.Values[key]; ok {
		return v
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, e := range env {
		if v := getenv(e); v != "" {
			return v
		}
	}
	return ""
}

// Bool parses a boolean option ("true", "1", ...); def when unset.
func (o Options) Bool(key string, def bool, env ...string) (bool, error) {
	v := o.Get(key, env...)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, o.Errorf("%s: want true or false, got %q", key, v)
	}
	return b, nil
}

// Require returns an error naming the key (and its variables) when unset.
func (o Options) Require(key string, env ...string) (string, error) {
	v := o.Get(key, env...)
	if v == "" {
		hint := ""
		if len(env) > 0 {
			hint = " (or " + strings.Join(env, ", ") + ")"
		}
		return "", o.Errorf("%s is required%s", key, hint)
	}
	return v, nil
}

// Known returns an error naming the first key not in allowed. "disabled"
// is always allowed.
func (o Options) Known(allowed ...string) error {
	ok := map[string]bool{"disabled": true}
	for _, a := range allowed {
		ok[a] = true
	}
	keys := make([]string, 0, len(o.Values))
	for k := range o.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !ok[k] {
			sort.Strings(allowed)
			return o.Errorf("unknown key %q (allowed: %s, disabled)", k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// Errorf is a core.CodeInvalid error prefixed with the block.
func (o Options) Errorf(format string, args ...any) error {
	prefix := "seal \"" + o.Type + "\""
	if o.Where != "" {
		prefix = o.Where + ": " + prefix
	}
	return core.Invalid(prefix+": "+format, args...)
}
