package kv

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// disabledDeleteVersionAfter is what a negative delete_version_after in the
// mount configuration is stored as: it turns the feature off for every key.
const disabledDeleteVersionAfter = -time.Second

// config is a v2 mount's configuration, stored at "config".
type config struct {
	// MaxVersions is the mount-wide number of versions to keep; 0 means 10.
	MaxVersions int  `json:"max_versions"`
	CASRequired bool `json:"cas_required"`
	// DeleteVersionAfter is 0 (unset), positive, or
	// disabledDeleteVersionAfter.
	DeleteVersionAfter time.Duration `json:"delete_version_after"`
}

// loadConfig returns the mount configuration (zero values when never set).
func loadConfig(ctx context.Context, s storage.Storage) (*config, error) {
	var c config
	if _, err := storage.GetJSON(ctx, s, configKey, &c); err != nil {
		return nil, fmt.Errorf("kv: read config: %w", err)
	}
	return &c, nil
}

// configRoute serves "config": read and write the mount-wide settings.
func (b *Backend) configRoute() framework.Route {
	return framework.Route{
		Pattern: "config",
		Fields: map[string]*framework.FieldSchema{
			"max_versions": {Type: framework.TypeInt, Description: "The number of versions to keep for each key. Defaults to 10."},
			"cas_required": {Type: framework.TypeBool, Description: "If true, every write must carry the cas option."},
			"delete_version_after": {Type: framework.TypeSignedDurationSecond, Description: "How long after creation a version is " +
				"soft-deleted. A negative duration disables it on all keys; zero clears the setting."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.configRead,
			core.OpUpdate: b.configWrite,
		},
		Help: "Configures settings applied to every key of the KV store.",
	}
}

func (b *Backend) configRead(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	c, err := loadConfig(ctx, st.storage)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{
		"max_versions":         c.MaxVersions,
		"cas_required":         c.CASRequired,
		"delete_version_after": c.DeleteVersionAfter.String(),
	}}, nil
}

// configWrite changes only the fields present; a write with none is a no-op.
func (b *Backend) configWrite(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	if !d.Has("max_versions") && !d.Has("cas_required") && !d.Has("delete_version_after") {
		return nil, nil
	}
	if d.Has("max_versions") && d.Int("max_versions") < 0 {
		return nil, core.Invalid("max_versions must not be negative")
	}
	b.configMu.Lock()
	defer b.configMu.Unlock()
	c, err := loadConfig(ctx, st.storage)
	if err != nil {
		return nil, err
	}
	if d.Has("max_versions") {
		c.MaxVersions = d.Int("max_versions")
	}
	if d.Has("cas_required") {
		c.CASRequired = d.Bool("cas_required")
	}
	if d.Has("delete_version_after") {
		switch dva := d.Duration("delete_version_after"); {
		case dva < 0:
			c.DeleteVersionAfter = disabledDeleteVersionAfter
		default:
			c.DeleteVersionAfter = dva.Truncate(time.Second)
		}
	}
	if err := storage.PutJSON(ctx, st.storage, configKey, c); err != nil {
		return nil, fmt.Errorf("kv: write config: %w", err)
	}
	return nil, nil
}
