// Package config parses Vigil's server configuration: Vault-style HCL (or
// the equivalent JSON), read with the same HCL parser Vault and OpenBao use,
// so their configuration files load unchanged.
//
// Every key Vault or OpenBao documents for the top level, listener "tcp",
// storage "raft" (with retry_join), seal, telemetry and audit blocks is
// accepted. Keys Vigil implements take effect; keys it does not implement
// are listed in Config.Warnings (file, line, key and why it changes
// nothing), and the server starts anyway — except keys whose being ignored
// would leave the server less protected than asked (for example
// tls_require_and_verify_client_cert without a CA file, require_request_header,
// x_forwarded_for_authorized_addrs): those are errors. A key no version of
// Vault or OpenBao documents is an error naming the key and line, so typos
// never pass silently.
package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
)

// Config is the server configuration.
type Config struct {
	Storage     *Storage
	Listeners   []Listener
	APIAddr     string
	ClusterAddr string
	UI          bool
	LogLevel    string
	// LogFormat is "standard" (text, the default) or "json".
	LogFormat string
	// LogFile, when set, receives the server's own log as well as standard
	// error, as in Vault (a path ending in "/" names a folder: vigil.log
	// in it). It is rotated by size (LogRotateBytes, 0: never), by age
	// (LogRotateDuration, default 24h) and keeps LogRotateMaxFiles
	// archives (0: all; -1: none is kept beyond the newest one). This is
	// the operational log, not the audit trail.
	LogFile           string
	LogRotateBytes    int64
	LogRotateDuration time.Duration
	LogRotateMaxFiles int
	// PidFile, when set, is written with the server's process id at start
	// and removed at exit.
	PidFile         string
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	// TokenDefaultTTL and TokenMaxTTL bound every token (defaults 1h / 24h).
	TokenDefaultTTL time.Duration
	TokenMaxTTL     time.Duration
	DisableMlock    bool
	ClusterName     string
	// DefaultMaxRequestDuration bounds every request (Vault's
	// default_max_request_duration; 0: the server's default, 90s).
	DefaultMaxRequestDuration time.Duration
	// Audit devices declared in the file.
	Audit []Block
	// AuditStreams declared in the file (kafka, clickhouse).
	AuditStreams []Block
	// AuditSettings holds the audit_settings block, if any.
	AuditSettings *Block
	// AuditWitnesses are the audit_witness "<type>" { ... } blocks: places
	// outside the node that keep a copy of every audit checkpoint.
	AuditWitnesses []Block
	// Telemetry holds the telemetry block, if any.
	Telemetry *Block
	// Seal is the seal in use: the first seal block not marked
	// disabled = true (nil: Shamir).
	Seal *Block
	// Seals are every seal block in file order, each with its type as Type,
	// its options as they were written (values as strings) and, for Vault's
	// multi-seal form, its name in Name. A disabled seal (disabled = true)
	// is the old seal of a seal migration.
	Seals []Block
	// Warnings name each accepted key that has no effect here, with its
	// position and the reason, e.g.
	// `vault.hcl:12: telemetry: statsd_address is not implemented and is
	// ignored: metrics are served at sys/metrics, not pushed to statsd`.
	Warnings []string
}

// Value is a scalar option value with the line it came from.
type Value struct {
	Value string
	List  []string
	// IsList is true when the value was written as a list.
	IsList bool
	Line   int
	File   string
}

// Where returns "file:line" for error messages.
func (v Value) Where() string {
	if v.Line <= 0 {
		return v.File
	}
	return fmt.Sprintf("%s:%d", v.File, v.Line)
}

// Bool interprets the value as a boolean (true, false, 1, 0, ...).
func (v Value) Bool() (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v.Value))
	if err != nil {
		return false, fmt.Errorf("config: %s: expected true or false, got %q", v.Where(), v.Value)
	}
	return b, nil
}

// Block is a labelled block with free-form options (audit devices, streams,
// seals, telemetry).
type Block struct {
	Type    string
	Name    string
	Options map[string]Value
	// Description and Local are an audit block's own settings (OpenBao's
	// declarative audit devices); Local has no effect without replication.
	Description string
	Local       bool
	Line        int
	File        string
}

// Get returns an option's string value.
func (b *Block) Get(k string) (string, bool) {
	v, ok := b.Options[k]
	return v.Value, ok
}

// Keys returns the sorted option names.
func (b *Block) Keys() []string { return sortedKeys(b.Options) }

// Unknown returns an error naming the first option not in allowed.
func (b *Block) Unknown(allowed ...string) error {
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for _, k := range b.Keys() {
		if !ok[k] {
			v := b.Options[k]
			return fmt.Errorf("%s: unknown key %q in %s %q block (allowed: %s)", v.Where(), k, b.Type, b.Name, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// UnauthenticatedMetrics reports whether sys/metrics is served without a
// token: the telemetry block or any listener's telemetry block says so.
func (c *Config) UnauthenticatedMetrics() bool {
	if c.Telemetry != nil {
		if v, ok := c.Telemetry.Options["unauthenticated_metrics_access"]; ok {
			if b, err := v.Bool(); err == nil && b {
				return true
			}
		}
	}
	for _, l := range c.Listeners {
		if l.UnauthenticatedMetricsAccess {
			return true
		}
	}
	return false
}

// Load reads and parses a config file (.hcl or .json).
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, src)
}

// parser holds the state of one Parse.
type parser struct {
	file string
	c    *Config
	// seen top-level scalar keys (a repeated key is an error).
	seen map[string]bool
}

func (p *parser) warn(pos string, format string, args ...any) {
	p.c.Warnings = append(p.c.Warnings, pos+": "+fmt.Sprintf(format, args...))
}

// ignored records the warning for an accepted key without effect.
func (p *parser) ignored(pos, context, key, why string) {
	if context != "" {
		context += ": "
	}
	p.warn(pos, "%s%s is not implemented and is ignored: %s", context, key, why)
}

// Parse parses config source, HCL or JSON (detected from the content, as
// Vault does).
func Parse(filename string, src []byte) (*Config, error) {
	items, err := parseHCL1(filename, src)
	if err != nil {
		return nil, err
	}
	p := &parser{file: filename, c: &Config{LogLevel: "info"}, seen: map[string]bool{}}
	var allowAPIAudit *Value
	for _, it := range items {
		pos := where(filename, it.pos)
		switch it.name {
		case "storage":
			if err := p.storage(it); err != nil {
				return nil, err
			}
		case "listener":
			if err := p.listeners(it); err != nil {
				return nil, err
			}
		case "seal":
			if err := p.seals(it); err != nil {
				return nil, err
			}
		case "telemetry":
			if err := p.telemetry(it); err != nil {
				return nil, err
			}
		case "audit":
			if err := p.audit(it); err != nil {
				return nil, err
			}
		case "audit_stream":
			bs, err := blocksOf(filename, it, 2)
			if err != nil {
				return nil, err
			}
			for _, b := range bs {
				blk, err := p.generic(b, b.labels[0], b.labels[1])
				if err != nil {
					return nil, err
				}
				p.c.AuditStreams = append(p.c.AuditStreams, blk)
			}
		case "audit_witness":
			bs, err := blocksOf(filename, it, 1)
			if err != nil {
				return nil, err
			}
			for _, b := range bs {
				blk, err := p.generic(b, b.labels[0], "")
				if err != nil {
					return nil, err
				}
				p.c.AuditWitnesses = append(p.c.AuditWitnesses, blk)
			}
		case "audit_settings":
			bs, err := blocksOf(filename, it, 0)
			if err != nil {
				return nil, err
			}
			if len(bs) > 1 || p.c.AuditSettings != nil {
				return nil, fmt.Errorf("config: %s: only one audit_settings block is allowed", pos)
			}
			blk, err := p.generic(bs[0], "audit_settings", "")
			if err != nil {
				return nil, err
			}
			p.c.AuditSettings = &blk
		case "user_lockout":
			if err := p.userLockout(it); err != nil {
				return nil, err
			}
		case "api_addr", "cluster_addr", "ui", "log_level", "log_format", "default_lease_ttl", "max_lease_ttl",
			"token_default_ttl", "token_max_ttl", "disable_mlock", "cluster_name", "pid_file", "unsafe_allow_api_audit_creation",
			"default_max_request_duration",
			"log_file", "log_rotate_bytes", "log_rotate_duration", "log_rotate_max_files":
			v, err := scalar(filename, it)
			if err != nil {
				return nil, err
			}
			if p.seen[it.name] {
				return nil, fmt.Errorf("config: %s: %s is set twice", pos, it.name)
			}
			p.seen[it.name] = true
			if it.name == "unsafe_allow_api_audit_creation" {
				allowAPIAudit = &v
				continue
			}
			if err := p.top(it.name, v); err != nil {
				return nil, err
			}
		default:
			why, ok := ignoredTop[it.name]
			if !ok {
				return nil, fmt.Errorf("config: %s: unknown key %q", pos, it.name)
			}
			p.ignored(pos, "", it.name, why)
		}
	}
	if err := p.finish(allowAPIAudit); err != nil {
		return nil, err
	}
	return p.c, nil
}

// top sets one top-level scalar.
func (p *parser) top(key string, v Value) error {
	c := p.c
	switch key {
	case "api_addr":
		c.APIAddr = v.Value
	case "cluster_addr":
		c.ClusterAddr = v.Value
	case "cluster_name":
		c.ClusterName = v.Value
	case "pid_file":
		c.PidFile = v.Value
	case "log_file":
		c.LogFile = v.Value
	case "log_rotate_bytes":
		n, err := strconv.ParseInt(strings.TrimSpace(v.Value), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("config: %s: log_rotate_bytes: expected a number of bytes, got %q", v.Where(), v.Value)
		}
		c.LogRotateBytes = n
	case "log_rotate_max_files":
		n, err := strconv.Atoi(strings.TrimSpace(v.Value))
		if err != nil || n < -1 {
			return fmt.Errorf("config: %s: log_rotate_max_files: expected a number of files (or -1), got %q", v.Where(), v.Value)
		}
		c.LogRotateMaxFiles = n
	case "log_rotate_duration":
		d, err := ParseDuration(v.Value)
		if err != nil || d < 0 {
			return fmt.Errorf("config: %s: log_rotate_duration: expected a duration such as 24h, got %q", v.Where(), v.Value)
		}
		c.LogRotateDuration = d
	case "ui", "disable_mlock":
		b, err := v.Bool()
		if err != nil {
			return err
		}
		if key == "ui" {
			c.UI = b
		} else {
			c.DisableMlock = b
		}
	case "log_level":
		switch strings.ToLower(v.Value) {
		case "trace", "debug", "info", "warn", "warning", "error", "err":
			c.LogLevel = v.Value
		case "":
		default:
			return fmt.Errorf("config: %s: invalid log_level %q", v.Where(), v.Value)
		}
	case "log_format":
		switch strings.ToLower(v.Value) {
		case "", "standard":
			c.LogFormat = "standard"
		case "json":
			c.LogFormat = "json"
		default:
			return fmt.Errorf("config: %s: invalid log_format %q (standard or json)", v.Where(), v.Value)
		}
	case "default_max_request_duration":
		d, err := ParseDuration(v.Value)
		if err != nil {
			return fmt.Errorf("config: %s: %s: %w", v.Where(), key, err)
		}
		if d == 0 {
			return fmt.Errorf("config: %s: default_max_request_duration cannot be 0: every request needs a bound", v.Where())
		}
		c.DefaultMaxRequestDuration = d
	case "default_lease_ttl", "max_lease_ttl", "token_default_ttl", "token_max_ttl":
		d, err := ParseDuration(v.Value)
		if err != nil {
			return fmt.Errorf("config: %s: %s: %w", v.Where(), key, err)
		}
		*map[string]*time.Duration{"default_lease_ttl": &c.DefaultLeaseTTL, "max_lease_ttl": &c.MaxLeaseTTL,
			"token_default_ttl": &c.TokenDefaultTTL, "token_max_ttl": &c.TokenMaxTTL}[key] = d
	}
	return nil
}

// finish applies settings that depend on several blocks.
func (p *parser) finish(allowAPIAudit *Value) error {
	c := p.c
	if allowAPIAudit != nil {
		// OpenBao's switch for enabling audit devices over the API maps to
		// audit_settings' allow_api_changes.
		if _, err := allowAPIAudit.Bool(); err != nil {
			return err
		}
		if c.AuditSettings == nil {
			c.AuditSettings = &Block{Type: "audit_settings", Options: map[string]Value{}, Line: allowAPIAudit.Line, File: allowAPIAudit.File}
		}
		if prev, ok := c.AuditSettings.Options["allow_api_changes"]; ok && prev.Value != allowAPIAudit.Value {
			return fmt.Errorf("config: %s: unsafe_allow_api_audit_creation contradicts audit_settings allow_api_changes at %s", allowAPIAudit.Where(), prev.Where())
		}
		c.AuditSettings.Options["allow_api_changes"] = *allowAPIAudit
	}
	for i := range c.Seals {
		if d, ok := c.Seals[i].Options["disabled"]; ok {
			if b, err := d.Bool(); err != nil {
				return fmt.Errorf("config: %s: seal %q: disabled: expected true or false, got %q", d.Where(), c.Seals[i].Type, d.Value)
			} else if b {
				continue
			}
		}
		c.Seal = &c.Seals[i]
		break
	}
	return nil
}

// generic reads a block of scalar options.
func (p *parser) generic(b block, typ, name string) (Block, error) {
	blk := Block{Type: typ, Name: name, Options: map[string]Value{}, Line: b.pos.Line, File: p.file}
	for _, it := range b.body {
		v, err := scalar(p.file, it)
		if err != nil {
			return Block{}, err
		}
		if _, dup := blk.Options[it.name]; dup {
			return Block{}, fmt.Errorf("config: %s: %s is set twice", v.Where(), it.name)
		}
		blk.Options[it.name] = v
	}
	return blk, nil
}

func (p *parser) seals(it item) error {
	bs, err := blocksOf(p.file, it, 1)
	if err != nil {
		return err
	}
	for _, b := range bs {
		blk, err := p.generic(b, b.labels[0], "")
		if err != nil {
			return err
		}
		if n, ok := blk.Options["name"]; ok {
			blk.Name = n.Value
		}
		p.c.Seals = append(p.c.Seals, blk)
	}
	return nil
}

func (p *parser) telemetry(it item) error {
	bs, err := blocksOf(p.file, it, 0)
	if err != nil {
		return err
	}
	if len(bs) > 1 || p.c.Telemetry != nil {
		return fmt.Errorf("config: %s: only one telemetry block is allowed", where(p.file, it.pos))
	}
	blk, err := p.generic(bs[0], "telemetry", "")
	if err != nil {
		return err
	}
	for _, k := range blk.Keys() {
		v := blk.Options[k]
		if telemetryImplemented[k] {
			continue
		}
		why, ok := ignoredTelemetry[k]
		if !ok {
			return fmt.Errorf("config: %s: unknown key %q in telemetry block", v.Where(), k)
		}
		p.ignored(v.Where(), "telemetry", k, why)
	}
	p.c.Telemetry = &blk
	return nil
}

// audit reads `audit "type" "name" { ... }`: Vigil's form with the device
// options directly in the block, or OpenBao's with description, local and
// an options map. Both may be mixed.
func (p *parser) audit(it item) error {
	bs, err := blocksOf(p.file, it, 2)
	if err != nil {
		return err
	}
	for _, b := range bs {
		blk := Block{Type: b.labels[0], Name: strings.Trim(b.labels[1], "/"), Options: map[string]Value{}, Line: b.pos.Line, File: p.file}
		add := func(k string, v Value) error {
			if _, dup := blk.Options[k]; dup {
				return fmt.Errorf("config: %s: audit %q: option %s is set twice", v.Where(), blk.Name, k)
			}
			if why, ok := ignoredAuditOptions[k]; ok {
				p.ignored(v.Where(), fmt.Sprintf("audit %q", blk.Name), k, why)
				return nil
			}
			blk.Options[k] = v
			return nil
		}
		for _, child := range b.body {
			switch child.name {
			case "options":
				m, err := stringMap(p.file, child)
				if err != nil {
					return err
				}
				for _, k := range sortedKeys(m) {
					if err := add(k, m[k]); err != nil {
						return err
					}
				}
			case "description":
				v, err := scalar(p.file, child)
				if err != nil {
					return err
				}
				blk.Description = v.Value
			case "local":
				v, err := scalar(p.file, child)
				if err != nil {
					return err
				}
				if blk.Local, err = v.Bool(); err != nil {
					return err
				}
			default:
				v, err := scalar(p.file, child)
				if err != nil {
					return err
				}
				if err := add(child.name, v); err != nil {
					return err
				}
			}
		}
		p.c.Audit = append(p.c.Audit, blk)
	}
	return nil
}

// userLockout accepts user_lockout blocks that turn lockout off (Vigil has
// no lockout, so that is what happens). A block asking for lockout is
// refused: ignoring it would leave passwords open to guessing the operator
// meant to stop.
func (p *parser) userLockout(it item) error {
	bs, err := blocksOf(p.file, it, 1)
	if err != nil {
		return err
	}
	for _, b := range bs {
		blk, err := p.generic(b, "user_lockout", b.labels[0])
		if err != nil {
			return err
		}
		if v, ok := blk.Options["disable_lockout"]; ok {
			if off, err := v.Bool(); err != nil {
				return err
			} else if off {
				continue
			}
		}
		return fmt.Errorf("config: %s:%d: user_lockout %q: login lockout is not implemented; refusing to start without the protection this block asks for (set disable_lockout = true to accept that)", p.file, blk.Line, blk.Name)
	}
	return nil
}

// ParseDuration parses "768h", "30m", "7d" or a number of seconds
// (core.ParseDuration).
func ParseDuration(s string) (time.Duration, error) { return core.ParseDuration(s) }
