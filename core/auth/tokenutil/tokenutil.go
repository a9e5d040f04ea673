// Package tokenutil holds the token_* parameters every auth method role
// shares (token_policies, token_ttl, ...) and turns them into a core.Auth.
package tokenutil

import (
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Params are the common token settings of a role or user.
type Params struct {
	Policies        []string      `json:"token_policies"`
	TTL             time.Duration `json:"token_ttl"`
	MaxTTL          time.Duration `json:"token_max_ttl"`
	ExplicitMaxTTL  time.Duration `json:"token_explicit_max_ttl"`
	Period          time.Duration `json:"token_period"`
	NumUses         int           `json:"token_num_uses"`
	Type            string        `json:"token_type"`
	NoDefaultPolicy bool          `json:"token_no_default_policy"`
	// BoundCIDRs are the addresses the login and its token may be used
	// from (canonical CIDR blocks); empty allows any.
	BoundCIDRs []string `json:"token_bound_cidrs,omitempty"`
}

// Fields are the schema entries for Params (merge them into a route's fields).
func Fields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"token_policies":          {Type: framework.TypeCommaStringSlice},
		"policies":                {Type: framework.TypeCommaStringSlice},
		"token_ttl":               {Type: framework.TypeDurationSecond},
		"ttl":                     {Type: framework.TypeDurationSecond},
		"token_max_ttl":           {Type: framework.TypeDurationSecond},
		"max_ttl":                 {Type: framework.TypeDurationSecond},
		"token_explicit_max_ttl":  {Type: framework.TypeDurationSecond},
		"token_period":            {Type: framework.TypeDurationSecond},
		"period":                  {Type: framework.TypeDurationSecond},
		"token_num_uses":          {Type: framework.TypeInt},
		"token_type":              {Type: framework.TypeString},
		"token_no_default_policy": {Type: framework.TypeBool},
		"token_bound_cidrs":       {Type: framework.TypeCommaStringSlice},
		"bound_cidrs":             {Type: framework.TypeCommaStringSlice},
	}
}

// With merges extra fields into the token fields.
func With(extra map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	f := Fields()
	for k, v := range extra {
		f[k] = v
	}
	return f
}

// Update applies the request's token fields (and their deprecated aliases)
// onto p.
func (p *Params) Update(d *framework.FieldData) error {
	if d.Has("token_policies") {
		p.Policies = d.Strings("token_policies")
	} else if d.Has("policies") {
		p.Policies = d.Strings("policies")
	}
	for _, f := range []struct {
		k, alias string
		dst      *time.Duration
	}{{"token_ttl", "ttl", &p.TTL}, {"token_max_ttl", "max_ttl", &p.MaxTTL}, {"token_period", "period", &p.Period}, {"token_explicit_max_ttl", "", &p.ExplicitMaxTTL}} {
		if d.Has(f.k) {
			*f.dst = d.Duration(f.k)
		} else if f.alias != "" && d.Has(f.alias) {
			*f.dst = d.Duration(f.alias)
		}
	}
	if d.Has("token_num_uses") {
		p.NumUses = d.Int("token_num_uses")
	}
	if d.Has("token_type") {
		t := d.String("token_type")
		switch t {
		case "", "default", "default-service", "service":
			t = "service"
		case "batch", "default-batch":
			t = "batch"
		default:
			return core.Invalid("invalid token_type %q", t)
		}
		p.Type = t
	}
	if d.Has("token_no_default_policy") {
		p.NoDefaultPolicy = d.Bool("token_no_default_policy")
	}
	if d.Has("token_bound_cidrs") || d.Has("bound_cidrs") {
		raw := d.Strings("token_bound_cidrs")
		if !d.Has("token_bound_cidrs") {
			raw = d.Strings("bound_cidrs")
		}
		cidrs, err := ParseCIDRs("token_bound_cidrs", raw)
		if err != nil {
			return err
		}
		p.BoundCIDRs = cidrs
	}
	if p.NumUses < 0 {
		return core.Invalid("token_num_uses cannot be negative")
	}
	if p.MaxTTL > 0 && p.TTL > p.MaxTTL {
		return core.Invalid("token_ttl cannot be greater than token_max_ttl")
	}
	return nil
}

// Data renders p for a read response.
func (p *Params) Data(into map[string]any) {
	pol := p.Policies
	if pol == nil {
		pol = []string{}
	}
	into["token_policies"] = pol
	into["policies"] = pol
	into["token_ttl"] = int64(p.TTL / time.Second)
	into["token_max_ttl"] = int64(p.MaxTTL / time.Second)
	into["token_explicit_max_ttl"] = int64(p.ExplicitMaxTTL / time.Second)
	into["token_period"] = int64(p.Period / time.Second)
	into["token_num_uses"] = p.NumUses
	typ := p.Type
	if typ == "" {
		typ = "default"
	}
	into["token_type"] = typ
	into["token_no_default_policy"] = p.NoDefaultPolicy
	cidrs := p.BoundCIDRs
	if cidrs == nil {
		cidrs = []string{}
	}
	into["token_bound_cidrs"] = cidrs
}

// Auth builds the login response's Auth block. The server issues the token.
func (p *Params) Auth(displayName string, meta map[string]string) *core.Auth {
	pol := append([]string(nil), p.Policies...)
	if !p.NoDefaultPolicy {
		pol = append(pol, "default")
	}
	max := p.MaxTTL
	if p.ExplicitMaxTTL > 0 && (max == 0 || p.ExplicitMaxTTL < max) {
		max = p.ExplicitMaxTTL
	}
	return &core.Auth{DisplayName: displayName, Policies: pol, Metadata: meta, TTL: p.TTL,
		ExplicitMaxTTL: max, Period: p.Period, NumUses: p.NumUses, TokenType: p.Type, Renewable: true,
		BoundCIDRs: append([]string(nil), p.BoundCIDRs...)}
}

// CheckLoginAddr refuses (403, naming the reason) a login from an address
// outside the bound CIDRs. Every auth method calls it as soon as its role
// is known and before it consumes anything (a secret ID's use): before the
// credentials where the role comes from the request (jwt, oidc,
// kubernetes, ldap), after them where the credentials may name the role or
// the answer must not reveal the user (userpass, cert, aws), as Vault does.
// The server checks the issued token's CIDRs again as a backstop.
func (p *Params) CheckLoginAddr(req *core.Request) error {
	if !AddrAllowed(req.RemoteAddr, p.BoundCIDRs) {
		return ErrOutsideCIDRs(req.RemoteAddr, "token_bound_cidrs")
	}
	return nil
}
