package audit

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/core"
)

// Device types.
const (
	TypeFile   = "file"
	TypeStdout = "stdout"
)

// DeviceConfig is one device's parsed options. Options come from a config
// block (`audit "file" "name" { ... }`) or from the sys/audit API; both use
// the same keys and are validated by ParseDeviceOptions.
type DeviceConfig struct {
	Name        string
	Type        string
	Description string
	Local       bool
	// Options are the raw options as given, shown by sys/audit.
	Options map[string]string

	// Path is the active file (file devices; option file_path or path).
	Path          string
	Fsync         chain.FsyncMode
	FsyncInterval time.Duration
	HMACAccessor  bool // default true
	LogRaw        bool
	MaxSizeMB     int
	MaxAgeDays    int  // rotate once the active segment is this old
	MaxBackups    int  // retention: rotated segments to keep (0: all)
	RetainDays    int  // retention: delete rotated segments older than this (0: never)
	Compress      bool // gzip rotated segments

	CheckpointEvery    int
	CheckpointInterval time.Duration
	// WriteTimeout bounds how long one entry may take to record (default 5s);
	// a device slower than this is treated as failed for that entry.
	WriteTimeout time.Duration

	// Disk watching (file devices).
	Thresholds   diskwatch.Thresholds
	ReserveBytes int64 // emergency reserve (default 64 MiB; 0 disables)
}

// FsyncName names a file device's fsync mode as configured.
func FsyncName(m chain.FsyncMode) string {
	switch m {
	case chain.FsyncInterval:
		return "interval"
	case chain.FsyncNone:
		return "none"
	}
	return "always"
}

// fileKeys are the options a file device accepts.
var fileKeys = []string{
	"file_path", "path", "fsync", "fsync_interval", "hmac_accessor", "log_raw",
	"max_size_mb", "max_age_days", "max_backups", "retain_days", "compress",
	"checkpoint_every", "checkpoint_interval", "write_timeout",
	"disk_warn_percent", "disk_critical_percent", "disk_warn_free_bytes", "disk_critical_free_bytes",
	"reserve_bytes", "format", "mode", "prefix", "elide_list_responses",
}

var stdoutKeys = []string{"hmac_accessor", "log_raw", "write_timeout", "format", "prefix", "elide_list_responses"}

// DefaultReserveBytes is the default emergency reserve per device folder.
const DefaultReserveBytes = 64 << 20

// DefaultWriteTimeout bounds each device write.
const DefaultWriteTimeout = 5 * time.Second

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// reservedNames are sys/audit/<name> paths used by Vigil's own routes.
var reservedNames = map[string]bool{"checkpoint-key": true, "verify": true, "checkpoints": true, "relink": true,
	"proof": true, "witness": true, "witnesses": true, "query": true, "settings": true}

// ValidName checks a device name (the Vault "path" without its slash).
func ValidName(name string) error {
	if !nameRe.MatchString(name) {
		return core.Invalid("invalid audit device path %q: use letters, digits, '.', '_' and '-' (at most 128)", name)
	}
	if reservedNames[name] {
		return core.Invalid("audit device path %q is reserved", name)
	}
	return nil
}

// ParseDeviceOptions validates a device's type and options. where prefixes
// errors (e.g. "vigil.hcl:12: ") and keyWhere, if set, gives the position
// of one option for error messages. Errors are *core.Error with
// CodeInvalid and name the offending key.
func ParseDeviceOptions(name, typ string, opts map[string]string, where func(key string) string) (*DeviceConfig, error) {
	if where == nil {
		where = func(string) string { return "" }
	}
	if err := ValidName(name); err != nil {
		return nil, err
	}
	dc := &DeviceConfig{Name: name, Type: typ, Options: opts, HMACAccessor: true, WriteTimeout: DefaultWriteTimeout,
		ReserveBytes: DefaultReserveBytes, Thresholds: diskwatch.DefaultThresholds()}
	var allowed []string
	switch typ {
	case TypeFile:
		allowed = fileKeys
	case TypeStdout:
		allowed = stdoutKeys
	default:
		return nil, core.Invalid("%sunknown audit device type %q (supported: file, stdout)", where(""), typ)
	}
	ok := map[string]bool{}
	for _, k := range allowed {
		ok[k] = true
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !ok[k] {
			return nil, core.Invalid("%sunknown option %q for audit device %q of type %s (allowed: %s)", where(k), k, name, typ, strings.Join(allowed, ", "))
		}
	}
	bad := func(k, why string) error {
		return core.Invalid("%saudit device %q: option %s=%q: %s", where(k), name, k, opts[k], why)
	}
	getBool := func(k string, dst *bool) error {
		v, present := opts[k]
		if !present {
			return nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad(k, "expected true or false")
		}
		*dst = b
		return nil
	}
	getInt := func(k string, dst *int, min int) error {
		v, present := opts[k]
		if !present {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return bad(k, fmt.Sprintf("expected an integer ≥ %d", min))
		}
		*dst = n
		return nil
	}
	getInt64 := func(k string, dst *int64) error {
		v, present := opts[k]
		if !present {
			return nil
		}
		n, err := parseBytes(v)
		if err != nil {
			return bad(k, err.Error())
		}
		*dst = n
		return nil
	}
	getDur := func(k string, dst *time.Duration) error {
		v, present := opts[k]
		if !present {
			return nil
		}
		d, err := core.ParseDuration(v)
		if err != nil || d < 0 {
			return bad(k, "expected a duration such as 10ms, 1s or 5m")
		}
		*dst = d
		return nil
	}
	getPct := func(k string, dst *float64) error {
		v, present := opts[k]
		if !present {
			return nil
		}
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil || f <= 0 || f > 100 {
			return bad(k, "expected a percentage in (0, 100]")
		}
		*dst = f
		return nil
	}
	if f, present := opts["format"]; present && f != "json" {
		return nil, bad("format", "only \"json\" is supported")
	}
	if _, present := opts["prefix"]; present {
		return nil, bad("prefix", "a line prefix would break the hash chain and JSON parsers; not supported")
	}
	if err := firstErr(getBool("hmac_accessor", &dc.HMACAccessor), getBool("log_raw", &dc.LogRaw), getDur("write_timeout", &dc.WriteTimeout)); err != nil {
		return nil, err
	}
	if dc.WriteTimeout == 0 {
		dc.WriteTimeout = DefaultWriteTimeout
	}
	if typ != TypeFile {
		return dc, nil
	}
	dc.Path = opts["file_path"]
	if p, present := opts["path"]; present {
		if dc.Path != "" && dc.Path != p {
			return nil, bad("path", "conflicts with file_path")
		}
		dc.Path = p
	}
	switch {
	case dc.Path == "":
		return nil, core.Invalid("%saudit device %q: file_path (or path) is required", where(""), name)
	case dc.Path == "stdout" || dc.Path == "discard":
		return nil, core.Invalid("%saudit device %q: use the stdout device type instead of file_path=%s", where("file_path"), name, dc.Path)
	case !filepath.IsAbs(dc.Path):
		return nil, core.Invalid("%saudit device %q: file_path %q must be absolute", where("file_path"), name, dc.Path)
	}
	dc.Path = filepath.Clean(dc.Path)
	switch v := opts["fsync"]; v {
	case "", "always":
		dc.Fsync = chain.FsyncAlways
	case "interval":
		dc.Fsync = chain.FsyncInterval
	case "none":
		dc.Fsync = chain.FsyncNone
	default:
		return nil, bad("fsync", "expected always, interval or none")
	}
	var mode string
	if m, present := opts["mode"]; present {
		mode = m
		if mode != "0600" && mode != "600" {
			return nil, bad("mode", "audit files are always created 0600")
		}
	}
	err := firstErr(
		getDur("fsync_interval", &dc.FsyncInterval),
		getInt("max_size_mb", &dc.MaxSizeMB, 1), getInt("max_age_days", &dc.MaxAgeDays, 0),
		getInt("max_backups", &dc.MaxBackups, 0), getInt("retain_days", &dc.RetainDays, 0),
		getBool("compress", &dc.Compress), getInt("checkpoint_every", &dc.CheckpointEvery, -1),
		getDur("checkpoint_interval", &dc.CheckpointInterval),
		getPct("disk_warn_percent", &dc.Thresholds.WarnUsedPercent), getPct("disk_critical_percent", &dc.Thresholds.CriticalUsedPercent),
		getInt64("disk_warn_free_bytes", &dc.Thresholds.WarnFreeBytes), getInt64("disk_critical_free_bytes", &dc.Thresholds.CriticalFreeBytes),
		getInt64("reserve_bytes", &dc.ReserveBytes),
	)
	if err != nil {
		return nil, err
	}
	if v, present := opts["checkpoint_every"]; present && v == "0" {
		return nil, bad("checkpoint_every", "use -1 to disable checkpoints by count")
	}
	if dc.Fsync != chain.FsyncInterval && opts["fsync_interval"] != "" {
		return nil, bad("fsync_interval", "only meaningful with fsync = \"interval\"")
	}
	if dc.Thresholds.WarnUsedPercent >= dc.Thresholds.CriticalUsedPercent {
		return nil, bad("disk_warn_percent", "must be below disk_critical_percent")
	}
	return dc, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// parseBytes parses "64MiB", "1GB", "1048576".
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suf)), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("expected a byte count such as 1048576, 64MiB or 2GB")
	}
	return n * mult, nil
}
