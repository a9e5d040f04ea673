package kubernetes

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// config is how the mount reaches and trusts the cluster.
type config struct {
	Host             string   `json:"kubernetes_host"`
	CACert           string   `json:"kubernetes_ca_cert,omitempty"`
	ReviewerJWT      string   `json:"token_reviewer_jwt,omitempty"`
	PEMKeys          []string `json:"pem_keys,omitempty"`
	Issuer           string   `json:"issuer,omitempty"`
	DisableIssCheck  bool     `json:"disable_iss_validation"`
	DisableLocalCA   bool     `json:"disable_local_ca_jwt"`
	LocalValidation  bool     `json:"local_jwt_validation"`
	DiscoveryURL     string   `json:"oidc_discovery_url,omitempty"`
	DiscoveryCAPEM   string   `json:"oidc_discovery_ca_pem,omitempty"`
	UseAnnotationsMD bool     `json:"use_annotations_as_alias_metadata"`
}

func (b *Backend) configRoute() framework.Route {
	return framework.Route{Pattern: `config`, Fields: map[string]*framework.FieldSchema{
		"kubernetes_host":                   {Type: framework.TypeString},
		"kubernetes_ca_cert":                {Type: framework.TypeString},
		"token_reviewer_jwt":                {Type: framework.TypeString},
		"pem_keys":                          {Type: framework.TypeCommaStringSlice},
		"issuer":                            {Type: framework.TypeString},
		"disable_iss_validation":            {Type: framework.TypeBool},
		"disable_local_ca_jwt":              {Type: framework.TypeBool},
		"local_jwt_validation":              {Type: framework.TypeBool},
		"oidc_discovery_url":                {Type: framework.TypeString},
		"oidc_discovery_ca_pem":             {Type: framework.TypeString},
		"use_annotations_as_alias_metadata": {Type: framework.TypeBool},
	}, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readConfig, core.OpUpdate: b.writeConfig},
		Help: "Configure how service account tokens are validated."}
}

func (b *Backend) getConfig(ctx context.Context) (*config, error) {
	var c config
	ok, err := storage.GetJSON(ctx, b.env.Storage, "config", &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func (b *Backend) readConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.getConfig(ctx)
	if err != nil || c == nil {
		return nil, err
	}
	keys := c.PEMKeys
	if keys == nil {
		keys = []string{}
	}
	// The token reviewer JWT is a credential: never returned.
	return &core.Response{Data: map[string]any{
		"kubernetes_host": c.Host, "kubernetes_ca_cert": c.CACert, "pem_keys": keys, "issuer": c.Issuer,
		"disable_iss_validation": c.DisableIssCheck, "disable_local_ca_jwt": c.DisableLocalCA,
		"local_jwt_validation": c.LocalValidation, "oidc_discovery_url": c.DiscoveryURL,
		"oidc_discovery_ca_pem": c.DiscoveryCAPEM, "use_annotations_as_alias_metadata": c.UseAnnotationsMD,
	}}, nil
}

func (b *Backend) writeConfig(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := b.getConfig(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = &config{DisableIssCheck: true}
	}
	for k, dst := range map[string]*string{"kubernetes_host": &c.Host, "kubernetes_ca_cert": &c.CACert,
		"token_reviewer_jwt": &c.ReviewerJWT, "issuer": &c.Issuer, "oidc_discovery_url": &c.DiscoveryURL,
		"oidc_discovery_ca_pem": &c.DiscoveryCAPEM} {
		if d.Has(k) {
			*dst = d.String(k)
		}
	}
	for k, dst := range map[string]*bool{"disable_iss_validation": &c.DisableIssCheck, "disable_local_ca_jwt": &c.DisableLocalCA,
		"local_jwt_validation": &c.LocalValidation, "use_annotations_as_alias_metadata": &c.UseAnnotationsMD} {
		if d.Has(k) {
			*dst = d.Bool(k)
		}
	}
	if d.Has("pem_keys") {
		c.PEMKeys = d.Strings("pem_keys")
	}
	if c.UseAnnotationsMD {
		return nil, core.Invalid("use_annotations_as_alias_metadata is not supported: it needs reading service accounts from the API server")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.LocalValidation {
		// Fetch the keys now: a wrong issuer or URL is reported to the
		// operator, not to the first pod logging in.
		lv, err := newLocalValidator(b.ctx, c, b.env.Now)
		if err != nil {
			return nil, core.Invalid("%v", err)
		}
		b.local = lv
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, "config", c)
}

func (c *config) validate() error {
	if c.Host == "" {
		return core.Invalid("kubernetes_host is required")
	}
	u, err := url.Parse(c.Host)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return core.Invalid("kubernetes_host %q is not an http(s) URL", c.Host)
	}
	if c.CACert != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(c.CACert)) {
			return core.Invalid("kubernetes_ca_cert holds no PEM certificate")
		}
	}
	for i, k := range c.PEMKeys {
		if _, err := parsePublicKey(k); err != nil {
			return core.Invalid("pem_keys[%d]: %v", i, err)
		}
	}
	if c.LocalValidation && len(c.PEMKeys) == 0 && c.discoveryURL() == "" {
		return core.Invalid("local_jwt_validation needs pem_keys, oidc_discovery_url or issuer (whose discovery document is used)")
	}
	return nil
}

func (c *config) discoveryURL() string {
	if c.DiscoveryURL != "" {
		return c.DiscoveryURL
	}
	return c.Issuer
}

func fingerprint(c *config) [32]byte {
	b, _ := json.Marshal(c)
	return sha256.Sum256(b)
}

// httpClient trusts caPEM (when set) instead of the system roots.
func httpClient(caPEM string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("the CA PEM holds no certificate")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// parsePublicKey reads a PEM public key (PKIX or PKCS#1) or certificate.
func parsePublicKey(p string) (any, error) {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return nil, errors.New("not PEM encoded")
	}
	switch blk.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(blk.Bytes)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a public key: %w", err)
	}
	return k, nil
}
