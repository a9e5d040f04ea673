package pki

import (
	"context"
	"net/url"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// urlsConfig is config/urls: the AIA and CRL distribution point URLs put in
// certificates signed by this mount (not in self-signed roots).
type urlsConfig struct {
	IssuingCertificates   []string `json:"issuing_certificates"`
	CRLDistributionPoints []string `json:"crl_distribution_points"`
	OCSPServers           []string `json:"ocsp_servers"`
}

// crlConfig is config/crl.
type crlConfig struct {
	Expiry      time.Duration `json:"expiry"`
	Disable     bool          `json:"disable"`
	OCSPDisable bool          `json:"ocsp_disable"`
	OCSPExpiry  time.Duration `json:"ocsp_expiry"`
}

// Vault's defaults for config/crl.
const (
	defaultCRLExpiry  = 72 * time.Hour
	defaultOCSPExpiry = 12 * time.Hour
)

// getURLs returns config/urls, or nil when no URL is configured.
func (st *state) getURLs(ctx context.Context) (*urlsConfig, error) {
	var c urlsConfig
	ok, err := storage.GetJSON(ctx, st.storage, urlsConfigKey, &c)
	if err != nil || !ok {
		return nil, err
	}
	if len(c.IssuingCertificates)+len(c.CRLDistributionPoints)+len(c.OCSPServers) == 0 {
		return nil, nil
	}
	return &c, nil
}

// getCRLConfig returns config/crl with defaults filled in.
func (st *state) getCRLConfig(ctx context.Context) (*crlConfig, error) {
	c := crlConfig{Expiry: defaultCRLExpiry, OCSPExpiry: defaultOCSPExpiry}
	if _, err := storage.GetJSON(ctx, st.storage, crlConfigKey, &c); err != nil {
		return nil, err
	}
	if c.Expiry <= 0 {
		c.Expiry = defaultCRLExpiry
	}
	if c.OCSPExpiry < 0 {
		c.OCSPExpiry = defaultOCSPExpiry
	}
	return &c, nil
}

// configURLsRoute is config/urls.
func (b *Backend) configURLsRoute() framework.Route {
	return framework.Route{
		Pattern: `config/urls`,
		Fields: map[string]*framework.FieldSchema{
			"issuing_certificates":    {Type: framework.TypeCommaStringSlice, Description: "URLs of the issuing CA certificate (AIA caIssuers)."},
			"crl_distribution_points": {Type: framework.TypeCommaStringSlice, Description: "URLs of the CRL."},
			"ocsp_servers":            {Type: framework.TypeCommaStringSlice, Description: "URLs of the OCSP responder (AIA OCSP)."},
			"enable_templating":       {Type: framework.TypeBool, Description: "Not supported by Vigil; must be false."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readURLs),
			core.OpUpdate: b.handler(b.writeURLs),
		},
		Help: "Configure the URLs put in issued certificates.",
	}
}

func urlsData(c *urlsConfig) map[string]any {
	if c == nil {
		c = &urlsConfig{}
	}
	return map[string]any{"issuing_certificates": nonNil(c.IssuingCertificates), "crl_distribution_points": nonNil(c.CRLDistributionPoints),
		"ocsp_servers": nonNil(c.OCSPServers), "enable_templating": false}
}

func (b *Backend) readURLs(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := st.getURLs(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: urlsData(c)}, nil
}

// writeURLs updates the fields sent; each must be an absolute URL.
func (b *Backend) writeURLs(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if d.Bool("enable_templating") {
		return nil, core.Invalid("enable_templating is not supported")
	}
	c, err := st.getURLs(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = &urlsConfig{}
	}
	for k, p := range map[string]*[]string{"issuing_certificates": &c.IssuingCertificates,
		"crl_distribution_points": &c.CRLDistributionPoints, "ocsp_servers": &c.OCSPServers} {
		if !d.Has(k) {
			continue
		}
		vals := d.Strings(k)
		for _, v := range vals {
			u, err := url.Parse(v)
			if err != nil || u.Scheme == "" || u.Host == "" {
				return nil, core.Invalid("invalid URL found in Authority Information Access (AIA) parameter %s: %s", k, v)
			}
		}
		*p = nonNil(vals)
	}
	if err := storage.PutJSON(ctx, st.storage, urlsConfigKey, c); err != nil {
		return nil, err
	}
	return &core.Response{Data: urlsData(c)}, nil
}

// configCRLRoute is config/crl.
func (b *Backend) configCRLRoute() framework.Route {
	return framework.Route{
		Pattern: `config/crl`,
		Fields: map[string]*framework.FieldSchema{
			"expiry":       {Type: framework.TypeString, Description: "Validity of a CRL (default 72h)."},
			"disable":      {Type: framework.TypeBool, Description: "Publish empty CRLs."},
			"ocsp_disable": {Type: framework.TypeBool, Description: "Turn the OCSP responder off."},
			"ocsp_expiry":  {Type: framework.TypeString, Description: "Validity of OCSP responses (default 12h; 0 for none)."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readCRLConfig),
			core.OpUpdate: b.handler(b.writeCRLConfig),
		},
		Help: "Configure CRL and OCSP publication.",
	}
}

func crlConfigData(c *crlConfig) map[string]any {
	return map[string]any{"expiry": c.Expiry.String(), "disable": c.Disable, "ocsp_disable": c.OCSPDisable,
		"ocsp_expiry": c.OCSPExpiry.String(), "auto_rebuild": false, "enable_delta": false}
}

func (b *Backend) readCRLConfig(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := st.getCRLConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: crlConfigData(c)}, nil
}

// writeCRLConfig updates the fields sent and rebuilds the CRLs (disable
// takes effect at once).
func (b *Backend) writeCRLConfig(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := st.getCRLConfig(ctx)
	if err != nil {
		return nil, err
	}
	if d.Has("expiry") {
		v, err := framework.ParseDuration(d.String("expiry"))
		if err != nil || v <= 0 {
			return nil, core.Invalid("given expiry could not be decoded: %q", d.String("expiry"))
		}
		c.Expiry = v
	}
	if d.Has("ocsp_expiry") {
		v, err := framework.ParseDuration(d.String("ocsp_expiry"))
		if err != nil || v < 0 {
			return nil, core.Invalid("given ocsp_expiry could not be decoded: %q", d.String("ocsp_expiry"))
		}
		c.OCSPExpiry = v
	}
	if d.Has("disable") {
		c.Disable = d.Bool("disable")
	}
	if d.Has("ocsp_disable") {
		c.OCSPDisable = d.Bool("ocsp_disable")
	}
	if err := storage.PutJSON(ctx, st.storage, crlConfigKey, c); err != nil {
		return nil, err
	}
	if err := b.buildCRLsLocked(ctx, st); err != nil {
		return nil, err
	}
	return &core.Response{Data: crlConfigData(c)}, nil
}
