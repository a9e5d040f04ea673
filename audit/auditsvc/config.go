package auditsvc

import (
	"fmt"
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
	// AllowAPIChanges lets sys/audit enable and disable devices (default true).
	AllowAPIChanges bool
	// RequestHeaders are recorded in request entries (Vault's
	// sys/config/auditing/request-headers), values in clear text.
	RequestHeaders []string
}

// ParseSettings reads an audit_settings block (nil: defaults).
func ParseSettings(b *config.Block) (Settings, error) {
	s := Settings{AllowAPIChanges: true}
	if b == nil {
		return s, nil
	}
	if err := b.Unknown("allow_api_changes", "request_headers"); err != nil {
		return s, fmt.Errorf("config: %w", err)
	}
	if v, ok := b.Options["allow_api_changes"]; ok {
		x, err := strconv.ParseBool(v.Value)
		if err != nil {
			return s, fmt.Errorf("config: %s: audit_settings: allow_api_changes: expected true or false", v.Where())
		}
		s.AllowAPIChanges = x
	}
	if v, ok := b.Options["request_headers"]; ok {
		s.RequestHeaders = v.List
		if len(s.RequestHeaders) == 0 && v.Value != "" {
			s.RequestHeaders = strings.Split(v.Value, ",")
		}
	}
	return s, nil
}
