package jwtauth

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// role binds what a token must say to log in, and what the login gets.
type role struct {
	RoleType             string            `json:"role_type"` // "jwt" or "oidc"
	BoundAudiences       []string          `json:"bound_audiences,omitempty"`
	UserClaim            string            `json:"user_claim"`
	UserClaimJSONPointer bool              `json:"user_claim_json_pointer,omitempty"`
	BoundSubject         string            `json:"bound_subject,omitempty"`
	BoundClaims          map[string]any    `json:"bound_claims,omitempty"`
	BoundClaimsType      string            `json:"bound_claims_type"` // "string" or "glob"
	ClaimMappings        map[string]string `json:"claim_mappings,omitempty"`
	GroupsClaim          string            `json:"groups_claim,omitempty"`
	OIDCScopes           []string          `json:"oidc_scopes,omitempty"`
	AllowedRedirectURIs  []string          `json:"allowed_redirect_uris,omitempty"`
	ClockSkewLeeway      time.Duration     `json:"clock_skew_leeway"`
	ExpirationLeeway     time.Duration     `json:"expiration_leeway"`
	NotBeforeLeeway      time.Duration     `json:"not_before_leeway"`
	MaxAge               time.Duration     `json:"max_age,omitempty"`
	tokenutil.Params
}

// Vault's default leeways for JWT roles.
const (
	defaultClockSkew  = 60 * time.Second
	defaultExpLeeway  = 150 * time.Second
	defaultNbfLeeway  = 150 * time.Second
	roleTypeJWT       = "jwt"
	roleTypeOIDC      = "oidc"
	boundClaimsString = "string"
	boundClaimsGlob   = "glob"
)

func (b *Backend) roleRoute() framework.Route {
	return framework.Route{Pattern: `role/(?P<name>[^/]+)`, ExistenceCheck: b.roleExists, Fields: tokenutil.With(map[string]*framework.FieldSchema{
		"name":                    {Type: framework.TypeLowerCaseString, Required: true},
		"role_type":               {Type: framework.TypeString},
		"bound_audiences":         {Type: framework.TypeCommaStringSlice},
		"user_claim":              {Type: framework.TypeString},
		"user_claim_json_pointer": {Type: framework.TypeBool},
		"bound_subject":           {Type: framework.TypeString},
		"bound_claims":            {Type: framework.TypeMap},
		"bound_claims_type":       {Type: framework.TypeString},
		"claim_mappings":          {Type: framework.TypeKVPairs},
		"groups_claim":            {Type: framework.TypeString},
		"oidc_scopes":             {Type: framework.TypeCommaStringSlice},
		"allowed_redirect_uris":   {Type: framework.TypeCommaStringSlice},
		"clock_skew_leeway":       {Type: framework.TypeSignedDurationSecond},
		"expiration_leeway":       {Type: framework.TypeSignedDurationSecond},
		"not_before_leeway":       {Type: framework.TypeSignedDurationSecond},
		"max_age":                 {Type: framework.TypeDurationSecond},
	}), Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRole, core.OpCreate: b.writeRole,
		core.OpUpdate: b.writeRole, core.OpDelete: b.deleteRole}}
}

func (b *Backend) roleExists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	r, err := b.getRole(ctx, d.String("name"))
	return r != nil, err
}

func (b *Backend) listRoles(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	keys, err := b.env.Storage.List(ctx, "role/")
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *Backend) readRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	r, err := b.getRole(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	data := map[string]any{
		"role_type": r.RoleType, "bound_audiences": orEmpty(r.BoundAudiences), "user_claim": r.UserClaim,
		"user_claim_json_pointer": r.UserClaimJSONPointer, "bound_subject": r.BoundSubject,
		"bound_claims": r.BoundClaims, "bound_claims_type": r.BoundClaimsType, "claim_mappings": r.ClaimMappings,
		"groups_claim": r.GroupsClaim, "oidc_scopes": orEmpty(r.OIDCScopes),
		"allowed_redirect_uris": orEmpty(r.AllowedRedirectURIs),
		"clock_skew_leeway":     int64(r.ClockSkewLeeway / time.Second), "expiration_leeway": int64(r.ExpirationLeeway / time.Second),
		"not_before_leeway": int64(r.NotBeforeLeeway / time.Second), "max_age": int64(r.MaxAge / time.Second),
		"verbose_oidc_logging": false, "callback_mode": "client",
	}
	r.Params.Data(data)
	return &core.Response{Data: data}, nil
}

func (b *Backend) writeRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := d.String("name")
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{RoleType: roleTypeOIDC, BoundClaimsType: boundClaimsString,
			ClockSkewLeeway: defaultClockSkew, ExpirationLeeway: defaultExpLeeway, NotBeforeLeeway: defaultNbfLeeway}
	}
	if d.Has("role_type") {
		r.RoleType = d.String("role_type")
	}
	for k, dst := range map[string]*[]string{"bound_audiences": &r.BoundAudiences, "oidc_scopes": &r.OIDCScopes,
		"allowed_redirect_uris": &r.AllowedRedirectURIs} {
		if d.Has(k) {
			*dst = d.Strings(k)
		}
	}
	for k, dst := range map[string]*string{"user_claim": &r.UserClaim, "bound_subject": &r.BoundSubject,
		"bound_claims_type": &r.BoundClaimsType, "groups_claim": &r.GroupsClaim} {
		if d.Has(k) {
			*dst = d.String(k)
		}
	}
	for k, dst := range map[string]*time.Duration{"clock_skew_leeway": &r.ClockSkewLeeway,
		"expiration_leeway": &r.ExpirationLeeway, "not_before_leeway": &r.NotBeforeLeeway, "max_age": &r.MaxAge} {
		if d.Has(k) {
			*dst = d.Duration(k)
		}
	}
	if d.Has("user_claim_json_pointer") {
		r.UserClaimJSONPointer = d.Bool("user_claim_json_pointer")
	}
	if d.Has("bound_claims") {
		r.BoundClaims = d.Map("bound_claims")
	}
	if d.Has("claim_mappings") {
		r.ClaimMappings = d.KV("claim_mappings")
	}
	if err := r.Params.Update(d); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, roleKey(name), r)
}

func (r *role) validate() error {
	switch r.RoleType {
	case roleTypeJWT, roleTypeOIDC:
	default:
		return core.Invalid("invalid role_type %q: must be jwt or oidc", r.RoleType)
	}
	if r.UserClaim == "" {
		return core.Invalid("a user_claim is required")
	}
	switch r.BoundClaimsType {
	case boundClaimsString, boundClaimsGlob:
	default:
		return core.Invalid("invalid bound_claims_type %q: must be string or glob", r.BoundClaimsType)
	}
	for k, v := range r.BoundClaims {
		if _, err := expectedValues(v); err != nil {
			return core.Invalid("bound_claims %q: %v", k, err)
		}
	}
	if r.RoleType == roleTypeJWT && len(r.AllowedRedirectURIs) > 0 {
		return core.Invalid("allowed_redirect_uris is only used by oidc roles")
	}
	if r.RoleType == roleTypeOIDC && len(r.AllowedRedirectURIs) == 0 {
		return core.Invalid("an oidc role needs allowed_redirect_uris")
	}
	for _, u := range r.AllowedRedirectURIs {
		if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" {
			return core.Invalid("allowed_redirect_uris: %q is not an absolute URL", u)
		}
	}
	seen := map[string]string{}
	for claim, meta := range r.ClaimMappings {
		if prev, ok := seen[meta]; ok {
			return core.Invalid("claim_mappings: %q and %q both map to %q", prev, claim, meta)
		}
		seen[meta] = claim
	}
	return nil
}

// expectedValues reads a bound_claims value: a string or a list of strings.
func expectedValues(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("list values must be strings, got %T", e)
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return x, nil
	}
	return nil, fmt.Errorf("must be a string or a list of strings, got %T", v)
}

func (b *Backend) deleteRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.env.Storage.Delete(ctx, roleKey(d.String("name")))
}
