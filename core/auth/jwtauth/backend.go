// Package jwtauth is the JWT/OIDC auth method (Vault's "jwt" and "oidc"
// types, one implementation under both names). A workload logs in with a
// signed JWT (auth/<mount>/login) checked against the keys of an OpenID
// provider (discovery), a JWKS URL or static public keys; a person logs in
// through the provider's authorization code flow with PKCE
// (oidc/auth_url, then oidc/callback). Roles bind the token's audience,
// subject and claims (exact or glob), name the claim that identifies the
// person (the entity alias), copy claims into alias metadata and map a
// groups claim to external identity groups.
package jwtauth

import (
	"context"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the JWT/OIDC auth method. It is safe for concurrent use.
type Backend struct {
	env framework.Env

	// ctx lives as long as the mount: remote key sets fetch keys with it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // guards the cached validator and writes to config/roles
	checker *checker   // built from the stored config; nil until first use
	states  *stateStore
}

// New returns a JWT/OIDC auth method.
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

// Setup implements framework.Engine.
func (b *Backend) Setup(ctx context.Context, env framework.Env) error {
	b.env = env
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.states = newStateStore(env.Now)
	return nil
}

// Close implements framework.Engine: it stops key fetches and forgets pending
// OIDC logins.
func (b *Backend) Close(context.Context) error {
	if b.cancel != nil {
		b.cancel()
	}
	return nil
}

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{
		b.configRoute(),
		{Pattern: `role/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.listRoles}},
		b.roleRoute(),
		b.loginRoute(),
		b.authURLRoute(),
		b.callbackRoute(),
	}
}

func roleKey(name string) string { return "role/" + strings.ToLower(name) }

func (b *Backend) getRole(ctx context.Context, name string) (*role, error) {
	var r role
	ok, err := storage.GetJSON(ctx, b.env.Storage, roleKey(name), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) getConfig(ctx context.Context) (*config, error) {
	var c config
	ok, err := storage.GetJSON(ctx, b.env.Storage, "config", &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}
