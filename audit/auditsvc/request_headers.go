package auditsvc

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// keyRequestHeaders holds sys/config/auditing/request-headers: lowercase
// header name → whether its values are HMAC'd.
const keyRequestHeaders = "sys/audit/config/request-headers"

type headerConfig map[string]headerSetting

type headerSetting struct {
	HMAC bool `json:"hmac"`
}

// requestHeaderRoutes are Vault's sys/config/auditing/request-headers
// (sudo): the request headers every device records, HMAC'd when asked. A
// change applies to the next entry written.
func (r routes) requestHeaderRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `config/auditing/request-headers/?`, Sudo: true,
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.listHeaders, core.OpList: r.listHeaders},
			Help:       "Request headers recorded in audit entries."},
		{Pattern: `config/auditing/request-headers/(?P<header>[^/]+)`, Sudo: true,
			Fields: map[string]*framework.FieldSchema{"header": {Type: framework.TypeString}, "hmac": {Type: framework.TypeBool}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.readHeader, core.OpUpdate: r.writeHeader,
				core.OpDelete: r.deleteHeader},
			Help: "A request header recorded in audit entries."},
	}
}

// headerRules returns the configured headers, for the formatter.
func (a *Subsystem) headerRules() []vault.HeaderRule {
	if p := a.headers.Load(); p != nil {
		return *p
	}
	return nil
}

// loadHeaders reads the configuration from the barrier into memory.
func (a *Subsystem) loadHeaders(ctx context.Context) error {
	var cfg headerConfig
	if _, err := storage.GetJSON(ctx, a.st.s, keyRequestHeaders, &cfg); err != nil {
		return err
	}
	a.setHeaders(cfg)
	return nil
}

func (a *Subsystem) setHeaders(cfg headerConfig) {
	rules := make([]vault.HeaderRule, 0, len(cfg))
	for name, s := range cfg {
		rules = append(rules, vault.HeaderRule{Name: http.CanonicalHeaderKey(name), HMAC: s.HMAC})
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].Name < rules[j].Name })
	a.headers.Store(&rules)
}

func (r routes) headerConfig(ctx context.Context) (headerConfig, error) {
	cfg := headerConfig{}
	_, err := storage.GetJSON(ctx, r.a.st.s, keyRequestHeaders, &cfg)
	return cfg, err
}

func (r routes) listHeaders(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	cfg, err := r.headerConfig(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for name, s := range cfg {
		out[name] = map[string]any{"hmac": s.HMAC}
	}
	return &core.Response{Data: map[string]any{"headers": out}, Legacy: true}, nil
}

func headerName(d *framework.FieldData) (string, error) {
	h := strings.TrimSpace(d.String("header"))
	if h == "" {
		return "", core.Invalid("missing header name")
	}
	return h, nil
}

func (r routes) readHeader(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	h, err := headerName(d)
	if err != nil {
		return nil, err
	}
	cfg, err := r.headerConfig(ctx)
	if err != nil {
		return nil, err
	}
	s, ok := cfg[strings.ToLower(h)]
	if !ok {
		return nil, nil
	}
	return &core.Response{Data: map[string]any{h: map[string]any{"hmac": s.HMAC}}, Legacy: true}, nil
}

func (r routes) writeHeader(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	h, err := headerName(d)
	if err != nil {
		return nil, err
	}
	if k := http.CanonicalHeaderKey(h); k == "X-Vault-Token" || k == "Authorization" {
		return nil, core.Invalid("%s carries the client token and is never recorded as a header (the token is, HMAC'd)", k)
	}
	return nil, r.updateHeaders(ctx, func(cfg headerConfig) { cfg[strings.ToLower(h)] = headerSetting{HMAC: d.Bool("hmac")} })
}

func (r routes) deleteHeader(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	h, err := headerName(d)
	if err != nil {
		return nil, err
	}
	return nil, r.updateHeaders(ctx, func(cfg headerConfig) { delete(cfg, strings.ToLower(h)) })
}

// updateHeaders changes the stored configuration and what the formatter
// uses, under the subsystem's lock.
func (r routes) updateHeaders(ctx context.Context, f func(headerConfig)) error {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	cfg, err := r.headerConfig(ctx)
	if err != nil {
		return err
	}
	f(cfg)
	if err := storage.PutJSON(ctx, r.a.st.s, keyRequestHeaders, cfg); err != nil {
		return err
	}
	r.a.setHeaders(cfg)
	return nil
}
