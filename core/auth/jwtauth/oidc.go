package jwtauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// stateTTL is how long a started OIDC login may take to come back.
const stateTTL = 10 * time.Minute

// maxPendingStates bounds the memory unauthenticated auth_url calls can
// take; beyond it new logins are refused until old ones expire.
const maxPendingStates = 10000

// oidcState is one started authorization code flow, kept in memory on the
// node that started it until the callback (or expiry).
type oidcState struct {
	role        string
	redirectURI string
	nonce       string
	verifier    string // PKCE code verifier
	clientNonce string
	expires     time.Time
}

type stateStore struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*oidcState
}

func newStateStore(now func() time.Time) *stateStore {
	return &stateStore{now: now, m: map[string]*oidcState{}}
}

// put stores st under a new random state id.
func (s *stateStore) put(st *oidcState) (string, error) {
	id := randomString()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= maxPendingStates {
		for k, v := range s.m {
			if now.After(v.expires) {
				delete(s.m, k)
			}
		}
	}
	if len(s.m) >= maxPendingStates {
		return "", core.Errorf(core.CodeRateLimited, "too many OIDC logins in progress; try again later")
	}
	st.expires = now.Add(stateTTL)
	s.m[id] = st
	return id, nil
}

// take returns and forgets the state (a state is used at most once).
func (s *stateStore) take(id string) *oidcState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[id]
	delete(s.m, id)
	if st == nil || s.now().After(st.expires) {
		return nil
	}
	return st
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func (b *Backend) authURLRoute() framework.Route {
	return framework.Route{Pattern: `oidc/auth_url`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{
		"role":         {Type: framework.TypeLowerCaseString},
		"redirect_uri": {Type: framework.TypeString},
		"client_nonce": {Type: framework.TypeString},
	}, Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.authURL},
		Help: "Start an OIDC login: returns the provider's authorization URL."}
}

func (b *Backend) callbackRoute() framework.Route {
	f := map[string]*framework.FieldSchema{
		"state":        {Type: framework.TypeString},
		"code":         {Type: framework.TypeString},
		"id_token":     {Type: framework.TypeString},
		"client_nonce": {Type: framework.TypeString},
	}
	return framework.Route{Pattern: `oidc/callback`, Unauthenticated: true, Fields: f,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.callback, core.OpUpdate: b.callback},
		Help:       "Finish an OIDC login with the provider's authorization code."}
}

// oidcSetup returns the checker and config of an OIDC-capable mount.
func (b *Backend) oidcSetup(ctx context.Context) (*checker, error) {
	chk, err := b.currentChecker(ctx)
	if err != nil {
		return nil, err
	}
	if chk.provider == nil || chk.cfg.OIDCClientID == "" {
		return nil, core.Invalid("OIDC login needs oidc_discovery_url and oidc_client_id in the config")
	}
	return chk, nil
}

func (c *checker) oauth2Config(redirectURI string, scopes []string) *oauth2.Config {
	sc := append([]string{oidc.ScopeOpenID}, scopes...)
	return &oauth2.Config{ClientID: c.cfg.OIDCClientID, ClientSecret: c.cfg.OIDCClientSecret,
		Endpoint: c.provider.Endpoint(), RedirectURL: redirectURI, Scopes: slices.Compact(sc)}
}

// authURL starts the authorization code flow: it keeps a state with a
// nonce and a PKCE verifier, and returns the provider URL to open.
func (b *Backend) authURL(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	redirect := d.String("redirect_uri")
	if redirect == "" {
		return nil, core.Invalid("missing redirect_uri")
	}
	name, r, err := b.resolveRole(ctx, d.String("role"))
	if err != nil {
		return nil, err
	}
	if r.RoleType != roleTypeOIDC {
		return nil, core.Invalid("role %q is a jwt role: log in with auth/<mount>/login", name)
	}
	if !redirectAllowed(redirect, r.AllowedRedirectURIs) {
		return nil, core.Invalid("unauthorized redirect_uri: %s", redirect)
	}
	chk, err := b.oidcSetup(ctx)
	if err != nil {
		return nil, err
	}
	st := &oidcState{role: name, redirectURI: redirect, nonce: randomString(), verifier: oauth2.GenerateVerifier(),
		clientNonce: d.String("client_nonce")}
	id, err := b.states.put(st)
	if err != nil {
		return nil, err
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(st.nonce), oauth2.S256ChallengeOption(st.verifier)}
	if r.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(r.MaxAge/time.Second), 10)))
	}
	u := chk.oauth2Config(redirect, r.OIDCScopes).AuthCodeURL(id, opts...)
	return &core.Response{Data: map[string]any{"auth_url": u}}, nil
}

// redirectAllowed: an exact match, or for a loopback IP address any port
// (RFC 8252 7.3: native apps listen on an ephemeral port).
func redirectAllowed(uri string, allowed []string) bool {
	if slices.Contains(allowed, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || !ip.IsLoopback() {
		return false
	}
	for _, a := range allowed {
		au, err := url.Parse(a)
		if err == nil && au.Scheme == u.Scheme && au.Hostname() == u.Hostname() && au.Path == u.Path && au.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

// callback finishes the flow: the state must be known and unexpired, the
// client nonce must match, the client address must be in the role's
// token_bound_cidrs, the code is exchanged with the PKCE verifier,
// the ID token is verified (signature, issuer, audience, nonce, times),
// claims from the userinfo endpoint are added, and the role's bindings
// apply as for a JWT login.
func (b *Backend) callback(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	st := b.states.take(d.String("state"))
	if st == nil {
		return nil, core.Invalid("Expired or missing OAuth state.")
	}
	if st.clientNonce != "" && d.String("client_nonce") != st.clientNonce {
		return nil, core.Invalid("invalid client_nonce")
	}
	code := d.String("code")
	if code == "" {
		return nil, core.Invalid("No code received: the provider answered without an authorization code.")
	}
	r, err := b.getRole(ctx, st.role)
	if err != nil {
		return nil, err
	}
	if r == nil || r.RoleType != roleTypeOIDC {
		return nil, core.Invalid("role %q could not be found", st.role)
	}
	// The callback is the login: the client address is checked against the
	// role's token_bound_cidrs before the code is exchanged.
	if err := r.CheckLoginAddr(req); err != nil {
		return nil, err
	}
	chk, err := b.oidcSetup(ctx)
	if err != nil {
		return nil, err
	}
	hctx := oidc.ClientContext(ctx, chk.client)
	oc := chk.oauth2Config(st.redirectURI, r.OIDCScopes)
	tok, err := oc.Exchange(hctx, code, oauth2.VerifierOption(st.verifier))
	if err != nil {
		return nil, core.Invalid("error exchanging oidc code: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, core.Invalid("the provider's token response has no id_token")
	}
	claims, aud, err := chk.verify(ctx, rawID)
	if err != nil {
		return nil, err
	}
	if n, _ := claims["nonce"].(string); n != st.nonce {
		return nil, errClaims("invalid ID token nonce")
	}
	if r.MaxAge > 0 {
		at, ok := claims["auth_time"]
		f, isNum := at.(interface{ Float64() (float64, error) })
		if !ok || !isNum {
			return nil, errClaims("auth_time claim is required with max_age")
		}
		v, _ := f.Float64()
		if b.env.Now().After(time.Unix(int64(v), 0).Add(r.MaxAge + r.ClockSkewLeeway)) {
			return nil, errClaims("auth_time is older than the role's max_age")
		}
	}
	if chk.provider.UserInfoEndpoint() != "" {
		ui, err := chk.provider.UserInfo(hctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, core.Errorf(core.CodeUnavailable, "error fetching userinfo: %v", err)
		}
		if sub, _ := claims["sub"].(string); ui.Subject != sub {
			return nil, errClaims("userinfo subject does not match the ID token's")
		}
		var extra map[string]any
		if err := ui.Claims(&extra); err != nil {
			return nil, core.Invalid("error reading userinfo claims: %v", err)
		}
		for k, v := range extra {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	if err := r.validateClaims(claims, aud, chk.cfg.OIDCClientID, b.env.Now()); err != nil {
		return nil, err
	}
	a, err := r.auth(st.role, claims)
	if err != nil {
		return nil, err
	}
	return &core.Response{Auth: a}, nil
}
