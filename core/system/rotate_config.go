package system

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Automatic barrier key rotation limits, Vault's.
const (
	// MaxOperationsCeiling is the most encryptions one AES-GCM key with
	// random nonces should do (about 2^32 * 0.9), and the default.
	MaxOperationsCeiling int64 = 3_865_470_566
	minMaxOperations     int64 = 1_000_000
	minRotationInterval        = 24 * time.Hour
	rotateConfigKey            = "rotate/config"
)

// RotationConfig is sys/rotate/config: when the barrier key rotates by
// itself. The server checks it about once a minute.
type RotationConfig struct {
	Enabled       bool          `json:"enabled"`
	Interval      time.Duration `json:"interval"`       // 0: no time-based rotation
	MaxOperations int64         `json:"max_operations"` // encryptions with one key
}

// Due reports whether a key installed at installed, which this node has
// used for encryptions values, should be rotated at now.
func (c RotationConfig) Due(now, installed time.Time, encryptions uint64) bool {
	if !c.Enabled {
		return false
	}
	if c.Interval > 0 && !installed.IsZero() && now.Sub(installed) >= c.Interval {
		return true
	}
	return c.MaxOperations > 0 && encryptions >= uint64(c.MaxOperations)
}

func (b *Backend) rotateConfigRoute() framework.Route {
	return framework.Route{Pattern: `rotate/config`,
		Fields: map[string]*framework.FieldSchema{
			"enabled":        {Type: framework.TypeBool},
			"interval":       {Type: framework.TypeDurationSecond},
			"max_operations": {Type: framework.TypeInt64},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRotateConfig, core.OpUpdate: b.writeRotateConfig},
		Help:       "When the barrier key rotates automatically."}
}

// RotationConfig returns the stored configuration (Vault's defaults when
// none was written).
func (b *Backend) RotationConfig(ctx context.Context) (RotationConfig, error) {
	c := RotationConfig{Enabled: true, MaxOperations: MaxOperationsCeiling}
	if b.storage == nil {
		return c, nil
	}
	_, err := storage.GetJSON(ctx, b.storage, rotateConfigKey, &c)
	return c, err
}

func (b *Backend) readRotateConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.RotationConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"enabled": c.Enabled, "interval": secs(c.Interval), "max_operations": c.MaxOperations}}, nil
}

func (b *Backend) writeRotateConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := b.RotationConfig(ctx)
	if err != nil {
		return nil, err
	}
	if d.Has("enabled") {
		c.Enabled = d.Bool("enabled")
	}
	if d.Has("interval") {
		c.Interval = d.Duration("interval")
		if c.Interval != 0 && c.Interval < minRotationInterval {
			return nil, core.Invalid("interval must be 0 (none) or at least %s", minRotationInterval)
		}
	}
	if d.Has("max_operations") {
		c.MaxOperations = d.Int64("max_operations")
		if c.MaxOperations < minMaxOperations || c.MaxOperations > MaxOperationsCeiling {
			return nil, core.Invalid("max_operations must be between %d and %d", minMaxOperations, MaxOperationsCeiling)
		}
	}
	return nil, storage.PutJSON(ctx, b.storage, rotateConfigKey, c)
}
