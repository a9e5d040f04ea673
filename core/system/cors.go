package system

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// corsKey is where sys/config/cors is kept (in the sys/ view).
const corsKey = "config/cors"

// CORSConfig is sys/config/cors: which browser origins may call the API.
type CORSConfig struct {
	Enabled        bool     `json:"enabled"`
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	AllowedHeaders []string `json:"allowed_headers,omitempty"`
}

// StdCORSHeaders are the request headers always allowed, Vault's list.
var StdCORSHeaders = []string{"Content-Type", "X-Requested-With", "X-Vault-AWS-IAM-Server-ID", "X-Vault-MFA",
	"X-Vault-No-Request-Forwarding", "X-Vault-Wrap-Format", "X-Vault-Wrap-TTL", "X-Vault-Policy-Override",
	"Authorization", "X-Vault-Token"}

// corsCache holds the configuration the HTTP layer reads on every request.
type corsCache struct {
	mu     sync.Mutex
	loaded bool
	cur    CORSConfig
}

func (b *Backend) corsRoute() framework.Route {
	return framework.Route{Pattern: `config/cors`, Sudo: true,
		Fields: map[string]*framework.FieldSchema{
			"allowed_origins": {Type: framework.TypeCommaStringSlice},
			"allowed_headers": {Type: framework.TypeCommaStringSlice},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readCORS, core.OpUpdate: b.writeCORS, core.OpDelete: b.deleteCORS},
		Help:       "Cross-origin resource sharing for browser clients."}
}

// CORS returns the current configuration for the HTTP layer. It reads the
// barrier only after a change (or the first time); while sealed it returns
// the last configuration it knew (disabled before any).
func (b *Backend) CORS(ctx context.Context) CORSConfig {
	b.cors.mu.Lock()
	defer b.cors.mu.Unlock()
	if !b.cors.loaded && b.storage != nil {
		var c CORSConfig
		if _, err := storage.GetJSON(ctx, b.storage, corsKey, &c); err == nil {
			b.cors.cur, b.cors.loaded = c, true
		}
	}
	return b.cors.cur
}

// InvalidateCORS makes the next CORS call read the stored configuration
// (a change applied by another node, a snapshot restore, an unseal).
func (b *Backend) InvalidateCORS() {
	b.cors.mu.Lock()
	b.cors.loaded = false
	b.cors.mu.Unlock()
}

func (b *Backend) readCORS(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	var c CORSConfig
	if _, err := storage.GetJSON(ctx, b.storage, corsKey, &c); err != nil {
		return nil, err
	}
	data := map[string]any{"enabled": c.Enabled}
	if c.Enabled {
		data["allowed_origins"] = c.AllowedOrigins
		data["allowed_headers"] = c.AllowedHeaders
	}
	return &core.Response{Data: data, Legacy: true}, nil
}

func (b *Backend) writeCORS(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	var origins []string
	for _, o := range d.Strings("allowed_origins") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	if len(origins) == 0 {
		return nil, core.Invalid("allowed_origins must name at least one origin (or \"*\")")
	}
	if slices.Contains(origins, "*") && len(origins) > 1 {
		return nil, core.Invalid("to allow all origins the '*' must be the only value for allowed_origins")
	}
	headers := slices.Clone(StdCORSHeaders)
	for _, h := range d.Strings("allowed_headers") {
		if h = strings.TrimSpace(h); h != "" && !slices.ContainsFunc(headers, func(x string) bool { return strings.EqualFold(x, h) }) {
			headers = append(headers, h)
		}
	}
	c := CORSConfig{Enabled: true, AllowedOrigins: origins, AllowedHeaders: headers}
	if err := storage.PutJSON(ctx, b.storage, corsKey, c); err != nil {
		return nil, err
	}
	b.InvalidateCORS()
	return nil, nil
}

func (b *Backend) deleteCORS(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if err := b.storage.Delete(ctx, corsKey); err != nil {
		return nil, err
	}
	b.InvalidateCORS()
	return nil, nil
}
