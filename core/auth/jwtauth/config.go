package jwtauth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// config is the mount's key source and OIDC client. Exactly one key source
// is set: OIDC discovery, a JWKS URL, or static public keys.
type config struct {
	OIDCDiscoveryURL   string   `json:"oidc_discovery_url,omitempty"`
	OIDCDiscoveryCAPEM string   `json:"oidc_discovery_ca_pem,omitempty"`
	OIDCClientID       string   `json:"oidc_client_id,omitempty"`
	OIDCClientSecret   string   `json:"oidc_client_secret,omitempty"`
	OIDCResponseMode   string   `json:"oidc_response_mode,omitempty"`
	OIDCResponseTypes  []string `json:"oidc_response_types,omitempty"`
	JWKSURL            string   `json:"jwks_url,omitempty"`
	JWKSCAPEM          string   `json:"jwks_ca_pem,omitempty"`
	PubKeys            []string `json:"jwt_validation_pubkeys,omitempty"`
	SupportedAlgs      []string `json:"jwt_supported_algs,omitempty"`
	BoundIssuer        string   `json:"bound_issuer,omitempty"`
	DefaultRole        string   `json:"default_role,omitempty"`
}

// allAlgs are the signing algorithms accepted when jwt_supported_algs is
// empty (with discovery: what the provider advertises).
var allAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

func (b *Backend) configRoute() framework.Route {
	return framework.Route{Pattern: `config`, Fields: map[string]*framework.FieldSchema{
		"oidc_discovery_url":     {Type: framework.TypeString},
		"oidc_discovery_ca_pem":  {Type: framework.TypeString},
		"oidc_client_id":         {Type: framework.TypeString},
		"oidc_client_secret":     {Type: framework.TypeString},
		"oidc_response_mode":     {Type: framework.TypeString},
		"oidc_response_types":    {Type: framework.TypeCommaStringSlice},
		"jwks_url":               {Type: framework.TypeString},
		"jwks_ca_pem":            {Type: framework.TypeString},
		"jwt_validation_pubkeys": {Type: framework.TypeCommaStringSlice},
		"jwt_supported_algs":     {Type: framework.TypeCommaStringSlice},
		"bound_issuer":           {Type: framework.TypeString},
		"default_role":           {Type: framework.TypeLowerCaseString},
	}, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readConfig, core.OpUpdate: b.writeConfig},
		Help: "Configure the JWT key source and the OIDC client."}
}

func (b *Backend) readConfig(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	c, err := b.getConfig(ctx)
	if err != nil || c == nil {
		return nil, err
	}
	strs := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	// The client secret is never returned.
	return &core.Response{Data: map[string]any{
		"oidc_discovery_url": c.OIDCDiscoveryURL, "oidc_discovery_ca_pem": c.OIDCDiscoveryCAPEM,
		"oidc_client_id": c.OIDCClientID, "oidc_response_mode": c.OIDCResponseMode,
		"oidc_response_types": strs(c.OIDCResponseTypes), "jwks_url": c.JWKSURL, "jwks_ca_pem": c.JWKSCAPEM,
		"jwt_validation_pubkeys": strs(c.PubKeys), "jwt_supported_algs": strs(c.SupportedAlgs),
		"bound_issuer": c.BoundIssuer, "default_role": c.DefaultRole, "provider_config": map[string]any{},
		"namespace_in_state": false,
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
		c = &config{}
	}
	for k, dst := range map[string]*string{
		"oidc_discovery_url": &c.OIDCDiscoveryURL, "oidc_discovery_ca_pem": &c.OIDCDiscoveryCAPEM,
		"oidc_client_id": &c.OIDCClientID, "oidc_client_secret": &c.OIDCClientSecret,
		"oidc_response_mode": &c.OIDCResponseMode, "jwks_url": &c.JWKSURL, "jwks_ca_pem": &c.JWKSCAPEM,
		"bound_issuer": &c.BoundIssuer, "default_role": &c.DefaultRole,
	} {
		if d.Has(k) {
			*dst = d.String(k)
		}
	}
	for k, dst := range map[string]*[]string{"oidc_response_types": &c.OIDCResponseTypes,
		"jwt_validation_pubkeys": &c.PubKeys, "jwt_supported_algs": &c.SupportedAlgs} {
		if d.Has(k) {
			*dst = d.Strings(k)
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	// Build the checker now: an unreachable provider or a bad key is
	// reported to the operator, not to the first user logging in.
	chk, err := newChecker(b.ctx, c, b.env.Now)
	if err != nil {
		return nil, core.Invalid("%v", err)
	}
	if err := storage.PutJSON(ctx, b.env.Storage, "config", c); err != nil {
		return nil, err
	}
	b.checker = chk
	return nil, nil
}

func (c *config) validate() error {
	n := 0
	for _, set := range []bool{c.OIDCDiscoveryURL != "", c.JWKSURL != "", len(c.PubKeys) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return core.Invalid("exactly one of oidc_discovery_url, jwks_url or jwt_validation_pubkeys must be set")
	case n > 1:
		return core.Invalid("only one of oidc_discovery_url, jwks_url or jwt_validation_pubkeys may be set")
	case c.OIDCClientID != "" && c.OIDCDiscoveryURL == "":
		return core.Invalid("oidc_client_id is only used with oidc_discovery_url")
	case c.OIDCClientSecret != "" && c.OIDCClientID == "":
		return core.Invalid("oidc_client_secret needs oidc_client_id")
	}
	switch c.OIDCResponseMode {
	case "", "query":
	case "form_post":
		return core.Invalid("oidc_response_mode form_post is not supported; use query")
	default:
		return core.Invalid("invalid oidc_response_mode %q: must be query", c.OIDCResponseMode)
	}
	for _, t := range c.OIDCResponseTypes {
		if t != "code" {
			return core.Invalid("invalid oidc_response_types %q: only code is supported", t)
		}
	}
	for _, a := range c.SupportedAlgs {
		if !slices.Contains(allAlgs, a) {
			return core.Invalid("unsupported signing algorithm %q in jwt_supported_algs", a)
		}
	}
	return nil
}

// checker verifies JWT signatures and issuers for one stored config. It is
// immutable and safe for concurrent use.
type checker struct {
	fingerprint [32]byte
	verifier    *oidc.IDTokenVerifier
	provider    *oidc.Provider // discovery only
	client      *http.Client
	cfg         config
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

// newChecker builds the verifier for c. With discovery it fetches the
// provider's metadata (so it fails when the provider is unreachable or
// names another issuer); with a JWKS URL it fetches the key set once.
// ctx must outlive the checker: later key refreshes use it.
func newChecker(ctx context.Context, c *config, now func() time.Time) (*checker, error) {
	chk := &checker{fingerprint: fingerprint(c), cfg: *c}
	vc := &oidc.Config{SkipClientIDCheck: true, SkipExpiryCheck: true, SupportedSigningAlgs: c.SupportedAlgs, Now: now}
	switch {
	case c.OIDCDiscoveryURL != "":
		hc, err := httpClient(c.OIDCDiscoveryCAPEM)
		if err != nil {
			return nil, fmt.Errorf("oidc_discovery_ca_pem: %w", err)
		}
		pctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, hc), 30*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(pctx, c.OIDCDiscoveryURL)
		if err != nil {
			return nil, fmt.Errorf("error checking oidc discovery URL: %w", err)
		}
		// The provider's key set fetches with the context given here.
		chk.provider, chk.client = p, hc
		chk.verifier = p.VerifierContext(oidc.ClientContext(ctx, hc), vc)
	case c.JWKSURL != "":
		hc, err := httpClient(c.JWKSCAPEM)
		if err != nil {
			return nil, fmt.Errorf("jwks_ca_pem: %w", err)
		}
		if len(vc.SupportedSigningAlgs) == 0 {
			vc.SupportedSigningAlgs = allAlgs
		}
		ks := oidc.NewRemoteKeySet(oidc.ClientContext(ctx, hc), c.JWKSURL)
		if err := probeJWKS(ctx, hc, c.JWKSURL); err != nil {
			return nil, err
		}
		vc.SkipIssuerCheck = c.BoundIssuer == ""
		chk.verifier, chk.client = oidc.NewVerifier(c.BoundIssuer, ks, vc), hc
	default:
		keys := make([]crypto.PublicKey, 0, len(c.PubKeys))
		for i, p := range c.PubKeys {
			k, err := parsePublicKey(p)
			if err != nil {
				return nil, fmt.Errorf("jwt_validation_pubkeys[%d]: %w", i, err)
			}
			keys = append(keys, k)
		}
		if len(vc.SupportedSigningAlgs) == 0 {
			vc.SupportedSigningAlgs = allAlgs
		}
		vc.SkipIssuerCheck = c.BoundIssuer == ""
		chk.verifier = oidc.NewVerifier(c.BoundIssuer, &oidc.StaticKeySet{PublicKeys: keys}, vc)
	}
	return chk, nil
}

// probeJWKS fetches the key set once so a wrong URL is reported at once.
func probeJWKS(ctx context.Context, hc *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("jwks_url: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("error checking jwks_url: %w", err)
	}
	defer resp.Body.Close()
	var v struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("error checking jwks_url: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&v); err != nil || len(v.Keys) == 0 {
		return fmt.Errorf("error checking jwks_url: not a JSON web key set with keys")
	}
	return nil
}

// parsePublicKey reads a PEM public key (PKIX) or certificate.
func parsePublicKey(p string) (crypto.PublicKey, error) {
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
	return x509.ParsePKIXPublicKey(blk.Bytes)
}

// currentChecker returns the checker for the stored config, rebuilding it
// when the config changed (on this node or another cluster node).
func (b *Backend) currentChecker(ctx context.Context) (*checker, error) {
	c, err := b.getConfig(ctx)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.Invalid("the auth method is not configured: write its config first")
	}
	fp := fingerprint(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.checker != nil && b.checker.fingerprint == fp {
		return b.checker, nil
	}
	chk, err := newChecker(b.ctx, c, b.env.Now)
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "cannot reach the key source: %v", err)
	}
	b.checker = chk
	return chk, nil
}
