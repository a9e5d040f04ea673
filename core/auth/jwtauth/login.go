package jwtauth

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) loginRoute() framework.Route {
	return framework.Route{Pattern: `login`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{
		"role": {Type: framework.TypeLowerCaseString},
		"jwt":  {Type: framework.TypeString},
	}, Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.login},
		Help: "Log in with a signed JWT."}
}

// resolveRole returns the named role, or the config's default role.
func (b *Backend) resolveRole(ctx context.Context, name string) (string, *role, error) {
	if name == "" {
		c, err := b.getConfig(ctx)
		if err != nil {
			return "", nil, err
		}
		if c != nil {
			name = c.DefaultRole
		}
	}
	if name == "" {
		return "", nil, core.Invalid("missing role")
	}
	r, err := b.getRole(ctx, name)
	if err != nil {
		return "", nil, err
	}
	if r == nil {
		return "", nil, core.Invalid("role %q could not be found", name)
	}
	return name, r, nil
}

// login checks the client address against the role's token_bound_cidrs,
// verifies a JWT's signature, issuer and times, then the role's bindings,
// and answers with the Auth for its user claim.
func (b *Backend) login(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	raw := d.String("jwt")
	if raw == "" {
		return nil, core.Invalid("missing jwt")
	}
	name, r, err := b.resolveRole(ctx, d.String("role"))
	if err != nil {
		return nil, err
	}
	if r.RoleType != roleTypeJWT {
		return nil, core.Invalid("role %q is an oidc role: log in through oidc/auth_url", name)
	}
	// The address is checked before the token, as Vault does: the answer
	// then depends only on the role and the address, never on the JWT.
	if err := r.CheckLoginAddr(req); err != nil {
		return nil, err
	}
	chk, err := b.currentChecker(ctx)
	if err != nil {
		return nil, err
	}
	claims, aud, err := chk.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := r.validateClaims(claims, aud, "", b.env.Now()); err != nil {
		return nil, err
	}
	a, err := r.auth(name, claims)
	if err != nil {
		return nil, err
	}
	return &core.Response{Auth: a}, nil
}

// verify checks the signature and issuer and returns the claims.
func (c *checker) verify(ctx context.Context, raw string) (map[string]any, []string, error) {
	if c.client != nil {
		ctx = oidc.ClientContext(ctx, c.client)
	}
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, errClaims("error validating token: %v", err)
	}
	var claims map[string]any
	if err := decodeClaims(idt, &claims); err != nil {
		return nil, nil, core.Invalid("error reading token claims: %v", err)
	}
	return claims, idt.Audience, nil
}

// decodeClaims keeps numbers as json.Number (exact large ids).
func decodeClaims(idt *oidc.IDToken, into *map[string]any) error {
	var rawClaims json.RawMessage
	if err := idt.Claims(&rawClaims); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(rawClaims))
	dec.UseNumber()
	return dec.Decode(into)
}

// validateClaims applies the role's bindings to verified claims.
func (r *role) validateClaims(claims map[string]any, aud []string, clientID string, now time.Time) error {
	if err := r.checkTimes(claims, now); err != nil {
		return err
	}
	if err := r.checkAudience(aud, clientID); err != nil {
		return err
	}
	if r.BoundSubject != "" {
		if sub, _ := claims["sub"].(string); sub != r.BoundSubject {
			return errClaims("sub claim does not match bound subject")
		}
	}
	return r.checkBoundClaims(claims)
}
