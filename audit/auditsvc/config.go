package auditsvc

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/core/config"
)

// FromBlock parses a config-file device block; errors name the key and line.
func FromBlock(b config.Block) (*audit.DeviceConfig, error) {
	opts := make(map[string]string, len(b.Options))
	for k, v := range b.Options {
		opts[k] = v.Value
	}
	where := func(key string) string {
		if v, ok := b.Options[key]; ok && v.Line > 0 {
			return v.Where() + ": "
		}
		if b.File != "" {
			return fmt.Sprintf("%s:%d: ", b.File, b.Line)
		}
		return ""
	}
	return audit.ParseDeviceOptions(b.Name, b.Type, opts, where)
}

// Settings are the audit_settings block.
type Settings struct {
	// AllowAPIChanges lets sys/audit enable and disable devices (default
	// false; true in -dev).
	AllowAPIChanges bool
	// AllowedDirs are the folders under which a file device enabled through
	// the API may write (absolute, cleaned). None: API-enabled file devices
	// are refused. In -dev, the dev data folder.
	AllowedDirs []string
	// RequireAudit refuses every request but sealing and the audit device
	// configuration while no durable device is enabled (default true;
	// false in -dev).
	RequireAudit bool
	// RequestHeaders are recorded in request entries (Vault's
	// sys/config/auditing/request-headers), values in clear text.
	RequestHeaders []string
}

// ProductionSettings are the defaults outside -dev.
func ProductionSettings() Settings { return Settings{RequireAudit: true} }

// DevSettings are the defaults of `vigil server -dev` with its data in dir.
func DevSettings(dir string) Settings {
	s := Settings{AllowAPIChanges: true}
	if dir != "" {
		s.AllowedDirs = []string{filepath.Clean(dir)}
	}
	return s
}

// ParseSettings reads an audit_settings block (nil: defaults) with the
// production defaults.
func ParseSettings(b *config.Block) (Settings, error) {
	return ParseSettingsWith(b, ProductionSettings())
}

// ParseSettingsWith reads an audit_settings block over the defaults def.
// Errors name the key and its line.
func ParseSettingsWith(b *config.Block, def Settings) (Settings, error) {
	s := def
	if b == nil {
		return s, nil
	}
	if err := b.Unknown("allow_api_changes", "allowed_dirs", "require_audit", "request_headers"); err != nil {
		return s, fmt.Errorf("config: %w", err)
	}
	for key, dst := range map[string]*bool{"allow_api_changes": &s.AllowAPIChanges, "require_audit": &s.RequireAudit} {
		if v, ok := b.Options[key]; ok {
			x, err := strconv.ParseBool(v.Value)
			if err != nil {
				return s, fmt.Errorf("config: %s: audit_settings: %s: expected true or false", v.Where(), key)
			}
			*dst = x
		}
	}
	if v, ok := b.Options["allowed_dirs"]; ok {
		dirs := v.List
		if len(dirs) == 0 && v.Value != "" {
			dirs = strings.Split(v.Value, ",")
		}
		s.AllowedDirs = nil
		for _, d := range dirs {
			d = strings.TrimSpace(d)
			if !filepath.IsAbs(d) {
				return s, fmt.Errorf("config: %s: audit_settings: allowed_dirs: %q is not an absolute path", v.Where(), d)
			}
			s.AllowedDirs = append(s.AllowedDirs, filepath.Clean(d))
		}
	}
	if v, ok := b.Options["request_headers"]; ok {
		s.RequestHeaders = v.List
		if len(s.RequestHeaders) == 0 && v.Value != "" {
			s.RequestHeaders = strings.Split(v.Value, ",")
		}
	}
	return s, nil
}
