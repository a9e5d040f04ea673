package ship

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/config"
)

// commonKeys are the audit_stream options every stream type accepts:
//
//	device        the file audit device to stream (default: the only one)
//	batch_size    most lines per write (default 1000; ClickHouse 10000)
//	linger        wait this long for a fuller batch (default "20ms")
//	max_backoff   longest wait between retries to a failing sink (default "5s")
//	write_timeout bound on one write attempt (default "30s")
//
// Factories accept them plus their own keys: b.Unknown(append(CommonKeys(), own...)...).
var commonKeys = []string{"device", "batch_size", "linger", "max_backoff", "write_timeout"}

// CommonKeys returns the list above (a copy: callers may change it).
func CommonKeys() []string { return slices.Clone(commonKeys) }

// Env is what a Factory receives besides its block.
type Env struct {
	NodeID  string
	Version string // the Vigil version, for formats that name the product
	Logger  *slog.Logger
	Now     func() time.Time
	// Regulated reports whether a mount point is tagged phi=true or
	// regulated=true (nil: no mount is); OCSF and CEF rate denials there
	// High.
	Regulated func(mount string) bool
}

// Factory builds a sink from its audit_stream block. It validates the
// block — unknown keys and bad values are errors naming file:line — but
// must not connect: the sink connects inside Write, so an unreachable sink
// never stops the server from starting.
type Factory func(b config.Block, env Env) (Sink, error)

// common are the parsed commonKeys.
type common struct {
	Device       string
	BatchSize    int
	Linger       time.Duration
	MaxBackoff   time.Duration
	WriteTimeout time.Duration
}

func parseCommon(b config.Block) (common, error) {
	var c common
	var err error
	c.Device, _ = b.Get("device")
	if c.BatchSize, err = IntOption(b, "batch_size", 1000, 1, 1_000_000); err != nil {
		return c, err
	}
	if c.Linger, err = DurationOption(b, "linger", 20*time.Millisecond); err != nil {
		return c, err
	}
	if c.MaxBackoff, err = DurationOption(b, "max_backoff", 5*time.Second); err != nil {
		return c, err
	}
	if c.WriteTimeout, err = DurationOption(b, "write_timeout", 30*time.Second); err != nil {
		return c, err
	}
	return c, nil
}

// where returns "file:line: " for key (or the block).
func where(b config.Block, key string) string {
	if v, ok := b.Options[key]; ok && v.Line > 0 {
		return v.Where() + ": "
	}
	if b.Line > 0 {
		return fmt.Sprintf("%s:%d: ", b.File, b.Line)
	}
	return ""
}

// Errorf returns a configuration error naming the block and the key's
// position: `config: vigil.hcl:12: audit_stream "kafka" "siem": topic: ...`.
func Errorf(b config.Block, key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		msg = key + ": " + msg
	}
	return fmt.Errorf("config: %saudit_stream %q %q: %s", where(b, key), b.Type, b.Name, msg)
}

// StringOption returns key's value or def.
func StringOption(b config.Block, key, def string) string {
	if v, ok := b.Get(key); ok && v != "" {
		return v
	}
	return def
}

// ListOption returns key as a list: an HCL list, or a comma-separated
// string.
func ListOption(b config.Block, key string) []string {
	v, ok := b.Options[key]
	if !ok {
		return nil
	}
	src := v.List
	if src == nil {
		src = strings.Split(v.Value, ",")
	}
	var out []string
	for _, s := range src {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// IntOption parses key as an integer in [lo, hi], or returns def.
func IntOption(b config.Block, key string, def, lo, hi int) (int, error) {
	v, ok := b.Get(key)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, Errorf(b, key, "expected an integer from %d to %d, got %q", lo, hi, v)
	}
	return n, nil
}

// DurationOption parses key ("250ms", "5s", or seconds), or returns def.
func DurationOption(b config.Block, key string, def time.Duration) (time.Duration, error) {
	v, ok := b.Get(key)
	if !ok || v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		d, err = config.ParseDuration(v)
	}
	if err != nil || d < 0 {
		return 0, Errorf(b, key, "expected a duration such as \"250ms\" or \"5s\", got %q", v)
	}
	return d, nil
}

// BoolOption parses key as a boolean, or returns def.
func BoolOption(b config.Block, key string, def bool) (bool, error) {
	v, ok := b.Get(key)
	if !ok || v == "" {
		return def, nil
	}
	x, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, Errorf(b, key, "expected true or false, got %q", v)
	}
	return x, nil
}
