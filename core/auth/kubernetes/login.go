package kubernetes

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	glob "github.com/ryanuber/go-glob"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// serviceAccount is who a validated token belongs to.
type serviceAccount struct {
	Namespace, Name, UID, SecretName, PodName string
}

// denied is a login refused for what the token says or whom it names.
func denied(format string, args ...any) error {
	return core.Errorf(core.CodePermissionDenied, format, args...)
}

// login checks the client address against the role's token_bound_cidrs,
// validates the token (TokenReview, or locally), then binds the service
// account's namespace and name to the role.
func (b *Backend) login(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name, jwt := d.String("role"), d.String("jwt")
	if name == "" {
		return nil, core.Invalid("missing role")
	}
	if jwt == "" {
		return nil, core.Invalid("missing jwt")
	}
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("invalid role name %q", name)
	}
	// Checked before the token is reviewed, as Vault does: the answer then
	// says nothing about the token, and no TokenReview is sent for a
	// client the role refuses.
	if err := r.CheckLoginAddr(req); err != nil {
		return nil, err
	}
	cfg, err := b.getConfig(ctx)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, core.Invalid("the auth method is not configured: write its config first")
	}
	var sa *serviceAccount
	if cfg.LocalValidation {
		lv, err := b.localValidator(cfg)
		if err != nil {
			return nil, err
		}
		sa, err = lv.validate(ctx, cfg, r, jwt)
		if err != nil {
			return nil, err
		}
	} else {
		sa, err = review(ctx, cfg, r, jwt)
		if err != nil {
			return nil, err
		}
	}
	if !globAny(r.BoundNamespaces, sa.Namespace) {
		return nil, denied("namespace %q not authorized", sa.Namespace)
	}
	if !globAny(r.BoundNames, sa.Name) {
		return nil, denied("service account name %q not authorized", sa.Name)
	}
	alias := sa.UID
	if r.AliasNameSource == aliasByName {
		alias = sa.Namespace + "/" + sa.Name
	}
	if alias == "" {
		return nil, denied("the token carries no service account uid; set the role's alias_name_source to %s", aliasByName)
	}
	meta := map[string]string{"service_account_name": sa.Name, "service_account_namespace": sa.Namespace,
		"service_account_uid": sa.UID, "service_account_secret_name": sa.SecretName}
	if sa.PodName != "" {
		meta["service_account_pod_name"] = sa.PodName
	}
	tokMeta := map[string]string{"role": name}
	for k, v := range meta {
		tokMeta[k] = v
	}
	a := r.Params.Auth(sa.Namespace+"-"+sa.Name, tokMeta)
	a.Alias = &core.Alias{Name: alias, Metadata: meta}
	a.InternalData = map[string]any{"role": name}
	return &core.Response{Auth: a}, nil
}

func globAny(patterns []string, v string) bool {
	for _, p := range patterns {
		if p == "*" || p == v || glob.Glob(p, v) {
			return true
		}
	}
	return false
}

// parseUsername splits "system:serviceaccount:<namespace>:<name>".
func parseUsername(u string) (ns, name string, ok bool) {
	parts := strings.Split(u, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || parts[2] == "" || parts[3] == "" {
		return "", "", false
	}
	return parts[2], parts[3], true
}

// review asks the cluster's TokenReview API whether jwt is a valid
// service account token (for the role's audience, when set).
func review(ctx context.Context, cfg *config, r *role, jwt string) (*serviceAccount, error) {
	hc, err := httpClient(cfg.CACert)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "kubernetes_ca_cert: %v", err)
	}
	tr := authv1.TokenReview{TypeMeta: metav1.TypeMeta{Kind: "TokenReview", APIVersion: "authentication.k8s.io/v1"},
		Spec: authv1.TokenReviewSpec{Token: jwt}}
	if r.Audience != "" {
		tr.Spec.Audiences = []string{r.Audience}
	}
	body, err := json.Marshal(&tr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cfg.Host, "/")+"/apis/authentication.k8s.io/v1/tokenreviews", bytes.NewReader(body))
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "token review request: %v", err)
	}
	bearer := cfg.ReviewerJWT
	if bearer == "" {
		// As in Vault: without a reviewer JWT the client's own token
		// authorizes the review (it needs system:auth-delegator).
		bearer = jwt
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "token review: cannot reach kubernetes_host: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "token review: reading the answer: %v", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		if cfg.ReviewerJWT != "" {
			return nil, core.Errorf(core.CodeUnavailable, "token review: the API server refused the token reviewer JWT (HTTP %d)", resp.StatusCode)
		}
		return nil, denied("lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token")
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated:
		return nil, core.Errorf(core.CodeUnavailable, "token review: the API server answered HTTP %d", resp.StatusCode)
	}
	var out authv1.TokenReview
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "token review: the API server's answer is not a TokenReview: %v", err)
	}
	if !out.Status.Authenticated {
		msg := out.Status.Error
		if msg == "" {
			msg = "the token is not authenticated"
		}
		return nil, denied("lookup failed: %s", msg)
	}
	if r.Audience != "" && !slices.Contains(out.Status.Audiences, r.Audience) {
		return nil, denied("invalid audience: the token is not valid for %q", r.Audience)
	}
	ns, name, ok := parseUsername(out.Status.User.Username)
	if !ok {
		return nil, denied("lookup failed: %q is not a service account", out.Status.User.Username)
	}
	sa := &serviceAccount{Namespace: ns, Name: name, UID: out.Status.User.UID}
	if pods := out.Status.User.Extra["authentication.kubernetes.io/pod-name"]; len(pods) > 0 {
		sa.PodName = pods[0]
	}
	// Legacy secret-based tokens name their secret in an unverified claim
	// (informational only; the review vouched for the token).
	if c, err := unverifiedClaims(jwt); err == nil {
		sa.SecretName, _ = c["kubernetes.io/serviceaccount/secret.name"].(string)
	}
	return sa, nil
}

// unverifiedClaims decodes a JWT payload without checking it.
func unverifiedClaims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	b, err := decodeSegment(parts[1])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// localValidator checks service-account tokens without the API server.
type localValidator struct {
	fp       [32]byte
	verifier *oidc.IDTokenVerifier
	client   *http.Client
}

func (b *Backend) localValidator(cfg *config) (*localValidator, error) {
	fp := fingerprint(cfg)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.local != nil && b.local.fp == fp {
		return b.local, nil
	}
	lv, err := newLocalValidator(b.ctx, cfg, b.env.Now)
	if err != nil {
		return nil, core.Errorf(core.CodeUnavailable, "cannot reach the cluster's signing keys: %v", err)
	}
	b.local = lv
	return lv, nil
}

// newLocalValidator uses pem_keys when set, else the OIDC discovery
// document of oidc_discovery_url (default: the issuer).
func newLocalValidator(ctx context.Context, cfg *config, now func() time.Time) (*localValidator, error) {
	lv := &localValidator{fp: fingerprint(cfg)}
	vc := &oidc.Config{SkipClientIDCheck: true, Now: now,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512}}
	checkIss := cfg.Issuer != "" && !cfg.DisableIssCheck
	if len(cfg.PEMKeys) > 0 {
		keys := make([]crypto.PublicKey, 0, len(cfg.PEMKeys))
		for _, p := range cfg.PEMKeys {
			k, err := parsePublicKey(p)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		vc.SkipIssuerCheck = !checkIss
		lv.verifier = oidc.NewVerifier(cfg.Issuer, &oidc.StaticKeySet{PublicKeys: keys}, vc)
		return lv, nil
	}
	ca := cfg.DiscoveryCAPEM
	if ca == "" {
		ca = cfg.CACert
	}
	hc, err := httpClient(ca)
	if err != nil {
		return nil, fmt.Errorf("oidc_discovery_ca_pem: %w", err)
	}
	pctx := oidc.ClientContext(ctx, hc)
	if cfg.DiscoveryURL != "" && cfg.DiscoveryURL != cfg.Issuer && cfg.Issuer != "" {
		// The discovery document lives elsewhere than the issuer (e.g.
		// the API server's own address); it still names the issuer.
		pctx = oidc.InsecureIssuerURLContext(pctx, cfg.Issuer)
	}
	tctx, cancel := context.WithTimeout(pctx, 30*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(tctx, cfg.discoveryURL())
	if err != nil {
		return nil, fmt.Errorf("error fetching the cluster's OIDC discovery document: %w", err)
	}
	vc.SkipIssuerCheck = !checkIss
	lv.verifier, lv.client = p.VerifierContext(pctx, vc), hc
	return lv, nil
}

// validate checks the token's signature, issuer, expiry and audience and
// reads the service account from its claims.
func (lv *localValidator) validate(ctx context.Context, cfg *config, r *role, jwt string) (*serviceAccount, error) {
	if lv.client != nil {
		ctx = oidc.ClientContext(ctx, lv.client)
	}
	idt, err := lv.verifier.Verify(ctx, jwt)
	if err != nil {
		return nil, denied("invalid service account token: %v", err)
	}
	want := r.Audience
	if want == "" {
		// A token requested without an audience is for the API server,
		// whose default audience is the issuer.
		want = cfg.Issuer
	}
	if want != "" && !slices.Contains(idt.Audience, want) {
		return nil, denied("invalid audience: the token is for %q, not %q", idt.Audience, want)
	}
	var c struct {
		Sub string `json:"sub"`
		K8s *struct {
			Namespace      string `json:"namespace"`
			ServiceAccount struct {
				Name string `json:"name"`
				UID  string `json:"uid"`
			} `json:"serviceaccount"`
			Pod *struct {
				Name string `json:"name"`
			} `json:"pod"`
		} `json:"kubernetes.io"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, denied("invalid service account token claims: %v", err)
	}
	ns, name, ok := parseUsername(c.Sub)
	if !ok {
		return nil, denied("the token's subject %q is not a service account", c.Sub)
	}
	sa := &serviceAccount{Namespace: ns, Name: name}
	if c.K8s != nil {
		if c.K8s.Namespace != ns || c.K8s.ServiceAccount.Name != name {
			return nil, denied("the token's kubernetes.io claim disagrees with its subject")
		}
		sa.UID = c.K8s.ServiceAccount.UID
		if c.K8s.Pod != nil {
			sa.PodName = c.K8s.Pod.Name
		}
	}
	return sa, nil
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
