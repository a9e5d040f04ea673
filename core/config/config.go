// Package config parses Vigil's server configuration: Vault-style HCL (or
// the equivalent JSON). Unknown keys are errors that name the key and line.
package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/vigilsec/vigil/core"
)

// Config is the server configuration.
type Config struct {
	Storage         *Storage
	Listeners       []Listener
	APIAddr         string
	ClusterAddr     string
	UI              bool
	LogLevel        string
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	// TokenDefaultTTL and TokenMaxTTL bound every token (defaults 1h / 24h).
	TokenDefaultTTL time.Duration
	TokenMaxTTL     time.Duration
	DisableMlock    bool
	ClusterName     string
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
	// Extra holds other labelled blocks that later subsystems read, by type.
	Seal *Block
}

// Storage is the storage stanza.
type Storage struct {
	Type   string
	Path   string
	NodeID string
	// Retry join and other cluster options, kept raw for the cluster code.
	Options map[string]Value
	// RetryJoin are the retry_join blocks, in order.
	RetryJoin []RetryJoin
	// RetryJoinAsNonVoter is retry_join_as_non_voter.
	RetryJoinAsNonVoter bool
}

// RetryJoin is one retry_join block of storage "raft".
type RetryJoin struct {
	LeaderAPIAddr        string
	AutoJoin             string
	AutoJoinScheme       string
	AutoJoinPort         int
	LeaderTLSServerName  string
	LeaderCACertFile     string
	LeaderClientCertFile string
	LeaderClientKeyFile  string
	LeaderCACert         string
	LeaderClientCert     string
	LeaderClientKey      string
	Line                 int
	File                 string
}

// Listener is one listener stanza.
type Listener struct {
	Type        string
	Address     string
	TLSCertFile string
	TLSKeyFile  string
	TLSDisable  bool
	// MaxRequestSize in bytes (0: default 32 MiB).
	MaxRequestSize int64
	// HTTP timeouts (Vault's http_*_timeout keys). Zero means the
	// server's default; see core/server.ListenerTimeouts. A negative value
	// (written "0" in the file) turns the limit off, as in Vault.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// Value is a scalar option value with the line it came from.
type Value struct {
	Value string
	List  []string
	Line  int
	File  string
}

// Where returns "file:line" for error messages.
func (v Value) Where() string { return fmt.Sprintf("%s:%d", v.File, v.Line) }

// Block is a labelled block with free-form options (audit devices, streams).
type Block struct {
	Type    string
	Name    string
	Options map[string]Value
	Line    int
	File    string
}

// Get returns an option's string value.
func (b *Block) Get(k string) (string, bool) {
	v, ok := b.Options[k]
	return v.Value, ok
}

// Keys returns the sorted option names.
func (b *Block) Keys() []string {
	out := make([]string, 0, len(b.Options))
	for k := range b.Options {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

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

type rawConfig struct {
	Storage         []rawStorage  `hcl:"storage,block"`
	Listeners       []rawListener `hcl:"listener,block"`
	APIAddr         *string       `hcl:"api_addr"`
	ClusterAddr     *string       `hcl:"cluster_addr"`
	UI              *bool         `hcl:"ui"`
	LogLevel        *string       `hcl:"log_level"`
	DefaultLeaseTTL *string       `hcl:"default_lease_ttl"`
	MaxLeaseTTL     *string       `hcl:"max_lease_ttl"`
	TokenDefaultTTL *string       `hcl:"token_default_ttl"`
	TokenMaxTTL     *string       `hcl:"token_max_ttl"`
	DisableMlock    *bool         `hcl:"disable_mlock"`
	ClusterName     *string       `hcl:"cluster_name"`
	Audit           []rawBlock2   `hcl:"audit,block"`
	AuditStreams    []rawBlock2   `hcl:"audit_stream,block"`
	AuditSettings   []rawBlock0   `hcl:"audit_settings,block"`
	AuditWitnesses  []rawBlock1   `hcl:"audit_witness,block"`
	Telemetry       []rawBlock0   `hcl:"telemetry,block"`
	Seal            []rawBlock1   `hcl:"seal,block"`
}

type rawStorage struct {
	Type   string   `hcl:"type,label"`
	Path   *string  `hcl:"path"`
	NodeID *string  `hcl:"node_id"`
	Remain hcl.Body `hcl:",remain"`
}

type rawListener struct {
	Type           string  `hcl:"type,label"`
	Address        *string `hcl:"address"`
	TLSCertFile    *string `hcl:"tls_cert_file"`
	TLSKeyFile     *string `hcl:"tls_key_file"`
	TLSDisable     *bool   `hcl:"tls_disable"`
	MaxRequestSize *int64  `hcl:"max_request_size"`

	HTTPReadHeaderTimeout *string `hcl:"http_read_header_timeout"`
	HTTPReadTimeout       *string `hcl:"http_read_timeout"`
	HTTPWriteTimeout      *string `hcl:"http_write_timeout"`
	HTTPIdleTimeout       *string `hcl:"http_idle_timeout"`
}

type rawBlock2 struct {
	Type   string   `hcl:"type,label"`
	Name   string   `hcl:"name,label"`
	Remain hcl.Body `hcl:",remain"`
}

type rawBlock1 struct {
	Type   string   `hcl:"type,label"`
	Remain hcl.Body `hcl:",remain"`
}

type rawBlock0 struct {
	Remain hcl.Body `hcl:",remain"`
}

// Load reads and parses a config file (.hcl or .json).
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, src)
}

// Parse parses config source. JSON is detected by the .json extension or a
// leading '{'.
func Parse(filename string, src []byte) (*Config, error) {
	p := hclparse.NewParser()
	var f *hcl.File
	var diags hcl.Diagnostics
	trimmed := strings.TrimSpace(string(src))
	if filepath.Ext(filename) == ".json" || strings.HasPrefix(trimmed, "{") {
		f, diags = p.ParseJSON(src, filename)
	} else {
		f, diags = p.ParseHCL(src, filename)
	}
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	var raw rawConfig
	if diags := gohcl.DecodeBody(f.Body, nil, &raw); diags.HasErrors() {
		return nil, diagErr(diags)
	}
	c := &Config{LogLevel: "info"}
	if len(raw.Storage) > 1 {
		return nil, fmt.Errorf("config: %s: only one storage block is allowed", filename)
	}
	for _, s := range raw.Storage {
		if s.Type != "raft" {
			return nil, fmt.Errorf("config: %s: unsupported storage type %q (only \"raft\" is supported)", filename, s.Type)
		}
		st := &Storage{Type: s.Type, Path: deref(s.Path), NodeID: deref(s.NodeID)}
		opts, err := attrs(s.Remain, filename)
		if err != nil {
			return nil, err
		}
		st.Options = opts
		for k, v := range opts {
			switch k {
			case "performance_multiplier", "trailing_logs", "snapshot_threshold", "snapshot_interval", "raft_bind_addr":
			default:
				return nil, fmt.Errorf("config: %s: unknown key %q in storage \"raft\" block", v.Where(), k)
			}
		}
		c.Storage = st
	}
	for _, l := range raw.Listeners {
		if l.Type != "tcp" {
			return nil, fmt.Errorf("config: %s: unsupported listener type %q (only \"tcp\")", filename, l.Type)
		}
		li := Listener{Type: l.Type, Address: deref(l.Address), TLSCertFile: deref(l.TLSCertFile), TLSKeyFile: deref(l.TLSKeyFile)}
		if l.TLSDisable != nil {
			li.TLSDisable = *l.TLSDisable
		}
		if l.MaxRequestSize != nil {
			li.MaxRequestSize = *l.MaxRequestSize
		}
		if li.Address == "" {
			li.Address = "127.0.0.1:8200"
		}
		for _, d := range []struct {
			in  *string
			out *time.Duration
			key string
		}{{l.HTTPReadHeaderTimeout, &li.ReadHeaderTimeout, "http_read_header_timeout"}, {l.HTTPReadTimeout, &li.ReadTimeout, "http_read_timeout"},
			{l.HTTPWriteTimeout, &li.WriteTimeout, "http_write_timeout"}, {l.HTTPIdleTimeout, &li.IdleTimeout, "http_idle_timeout"}} {
			if d.in == nil {
				continue
			}
			v, err := ParseDuration(*d.in)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("config: %s: listener %q: %s: invalid duration %q", filename, li.Address, d.key, *d.in)
			}
			if v == 0 {
				if d.key == "http_read_header_timeout" {
					return nil, fmt.Errorf("config: %s: listener %q: http_read_header_timeout cannot be 0: a client could hold a connection forever without sending a request", filename, li.Address)
				}
				v = -1 // "0" in the file: no limit
			}
			*d.out = v
		}
		if !li.TLSDisable && (li.TLSCertFile == "" || li.TLSKeyFile == "") {
			return nil, fmt.Errorf("config: %s: listener %q: tls_cert_file and tls_key_file are required unless tls_disable = true", filename, li.Address)
		}
		c.Listeners = append(c.Listeners, li)
	}
	c.APIAddr, c.ClusterAddr, c.LogLevel = deref(raw.APIAddr), deref(raw.ClusterAddr), derefOr(raw.LogLevel, "info")
	if raw.UI != nil {
		c.UI = *raw.UI
	}
	if raw.DisableMlock != nil {
		c.DisableMlock = *raw.DisableMlock
	}
	c.ClusterName = deref(raw.ClusterName)
	switch strings.ToLower(c.LogLevel) {
	case "trace", "debug", "info", "warn", "warning", "error", "err":
	default:
		return nil, fmt.Errorf("config: %s: invalid log_level %q", filename, c.LogLevel)
	}
	for _, d := range []struct {
		in  *string
		out *time.Duration
		key string
	}{{raw.DefaultLeaseTTL, &c.DefaultLeaseTTL, "default_lease_ttl"}, {raw.MaxLeaseTTL, &c.MaxLeaseTTL, "max_lease_ttl"},
		{raw.TokenDefaultTTL, &c.TokenDefaultTTL, "token_default_ttl"}, {raw.TokenMaxTTL, &c.TokenMaxTTL, "token_max_ttl"}} {
		if d.in == nil {
			continue
		}
		v, err := ParseDuration(*d.in)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %s: %w", filename, d.key, err)
		}
		*d.out = v
	}
	for _, b := range raw.Audit {
		blk, err := block(b.Type, b.Name, b.Remain, filename)
		if err != nil {
			return nil, err
		}
		c.Audit = append(c.Audit, blk)
	}
	for _, b := range raw.AuditStreams {
		blk, err := block(b.Type, b.Name, b.Remain, filename)
		if err != nil {
			return nil, err
		}
		c.AuditStreams = append(c.AuditStreams, blk)
	}
	for _, b := range raw.AuditWitnesses {
		blk, err := block(b.Type, "", b.Remain, filename)
		if err != nil {
			return nil, err
		}
		c.AuditWitnesses = append(c.AuditWitnesses, blk)
	}
	if len(raw.AuditSettings) > 0 {
		blk, err := block("audit_settings", "", raw.AuditSettings[0].Remain, filename)
		if err != nil {
			return nil, err
		}
		c.AuditSettings = &blk
	}
	if len(raw.Telemetry) > 0 {
		blk, err := block("telemetry", "", raw.Telemetry[0].Remain, filename)
		if err != nil {
			return nil, err
		}
		c.Telemetry = &blk
	}
	if len(raw.Seal) > 0 {
		blk, err := block(raw.Seal[0].Type, "", raw.Seal[0].Remain, filename)
		if err != nil {
			return nil, err
		}
		c.Seal = &blk
	}
	return c, nil
}

func block(typ, name string, body hcl.Body, filename string) (Block, error) {
	opts, err := attrs(body, filename)
	if err != nil {
		return Block{}, err
	}
	line := 0
	if body != nil {
		line = body.MissingItemRange().Start.Line
	}
	return Block{Type: typ, Name: name, Options: opts, Line: line, File: filename}, nil
}

// attrs reads a body's attributes as strings (lists as List). Nested blocks
// are rejected with their position.
func attrs(body hcl.Body, filename string) (map[string]Value, error) {
	out := map[string]Value{}
	if body == nil {
		return out, nil
	}
	as, diags := body.JustAttributes()
	if diags.HasErrors() {
		return nil, diagErr(diags)
	}
	for name, a := range as {
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			return nil, diagErr(d)
		}
		val := Value{Line: a.Range.Start.Line, File: a.Range.Filename}
		if v.IsNull() {
			out[name] = val
			continue
		}
		ty := v.Type()
		switch {
		case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
			for it := v.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				sv, err := convert.Convert(ev, cty.String)
				if err != nil {
					return nil, fmt.Errorf("config: %s:%d: %s: list elements must be strings", a.Range.Filename, a.Range.Start.Line, name)
				}
				val.List = append(val.List, sv.AsString())
			}
			val.Value = strings.Join(val.List, ",")
		default:
			sv, err := convert.Convert(v, cty.String)
			if err != nil {
				return nil, fmt.Errorf("config: %s:%d: %s: expected a string, number or bool", a.Range.Filename, a.Range.Start.Line, name)
			}
			val.Value = sv.AsString()
		}
		out[name] = val
	}
	return out, nil
}

func diagErr(diags hcl.Diagnostics) error {
	var parts []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		loc := ""
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d: ", d.Subject.Filename, d.Subject.Start.Line)
		}
		parts = append(parts, loc+d.Summary+": "+d.Detail)
	}
	return fmt.Errorf("config: %s", strings.Join(parts, "; "))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefOr(s *string, def string) string {
	if s == nil || *s == "" {
		return def
	}
	return *s
}

// ParseDuration parses "768h", "30m", "7d" or a number of seconds
// (core.ParseDuration).
func ParseDuration(s string) (time.Duration, error) { return core.ParseDuration(s) }
