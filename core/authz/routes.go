package authz

import (
	"context"
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// PrincipalSource resolves a token or an accessor to the Principal it
// authenticates, for sys/capabilities and sys/policies/explain. Both return
// (nil, nil) for an unknown, expired or revoked token.
type PrincipalSource interface {
	PrincipalByToken(ctx context.Context, token string) (*core.Principal, error)
	PrincipalByAccessor(ctx context.Context, accessor string) (*core.Principal, error)
}

// PathResolver tells which mount serves a path and whether its route is
// root-protected (needs sudo), as the dispatcher would see it.
type PathResolver interface {
	ResolvePath(path string) (mount *core.MountInfo, sudo bool, err error)
}

// API is the policy subsystem's sys/ routes (a framework.Part):
//
//	sys/policy                    GET, LIST  {"keys": [...], "policies": [...]}
//	sys/policy/:name              GET {name, rules}; PUT {policy|rules}; DELETE
//	sys/policies/acl              LIST {"keys": [...], "policies": [...]}
//	sys/policies/acl/:name        GET {name, policy}; PUT {policy}; DELETE
//	sys/policies/rego             LIST {"keys": [...]}
//	sys/policies/rego/:name       GET {name, policy, enforcement_level}; PUT {policy, enforcement_level}; DELETE
//	sys/policies/explain          POST (see explain.go)
//	sys/capabilities              POST {token, path|paths}
//	sys/capabilities-self         POST {path|paths}
//	sys/capabilities-accessor     POST {accessor, path|paths}
//
// Capability answers are {"<path>": [...], ..., "capabilities": [...]} (the
// last only for a single path), as Vault returns them.
type API struct {
	authz  *Authz
	tokens PrincipalSource
	paths  PathResolver
}

// NewAPI returns the routes serving a over HTTP. paths may be nil (explain
// then has no mount information and no sudo flag unless the caller sets it).
func NewAPI(a *Authz, tokens PrincipalSource, paths PathResolver) *API {
	return &API{authz: a, tokens: tokens, paths: paths}
}

var _ framework.Part = (*API)(nil)

type ops = map[core.Operation]framework.HandlerFunc

// Routes implements framework.Part.
func (p *API) Routes() []framework.Route {
	named := map[string]*framework.FieldSchema{
		"name":   {Type: framework.TypeString},
		"policy": {Type: framework.TypeString},
		"rules":  {Type: framework.TypeString},
	}
	regoFields := map[string]*framework.FieldSchema{
		"name":              {Type: framework.TypeString},
		"policy":            {Type: framework.TypeString},
		"enforcement_level": {Type: framework.TypeLowerCaseString, Default: LevelMandatory},
	}
	capFields := map[string]*framework.FieldSchema{
		"token":    {Type: framework.TypeString},
		"accessor": {Type: framework.TypeString},
		"path":     {Type: framework.TypeCommaStringSlice},
		"paths":    {Type: framework.TypeCommaStringSlice},
	}
	return []framework.Route{
		{Pattern: `policy/?`, Operations: ops{core.OpRead: p.legacy(p.listACL(true)), core.OpList: p.legacy(p.listACL(true))}, Help: "List ACL policies (legacy)."},
		{Pattern: `policy/(?P<name>.+)`, Fields: named, Operations: ops{core.OpRead: p.legacy(p.readACL("rules")), core.OpUpdate: p.putACL, core.OpDelete: p.deleteACL}, Help: "Manage an ACL policy (legacy)."},
		{Pattern: `policies/acl/?`, Operations: ops{core.OpList: p.listACL(true)}, Help: "List ACL policies."},
		{Pattern: `policies/acl/(?P<name>.+)`, Fields: named, Operations: ops{core.OpRead: p.readACL("policy"), core.OpUpdate: p.putACL, core.OpDelete: p.deleteACL}, Help: "Manage an ACL policy."},
		{Pattern: `policies/rego/?`, Operations: ops{core.OpList: p.listRego}, Help: "List custom Rego policies."},
		{Pattern: `policies/rego/(?P<name>.+)`, Fields: regoFields, Operations: ops{core.OpRead: p.readRego, core.OpUpdate: p.putRego, core.OpDelete: p.deleteRego}, Help: "Manage a custom Rego policy."},
		{Pattern: `policies/explain`, Fields: explainFields, Operations: ops{core.OpUpdate: p.explain}, Help: "Explain the decision for a token, path and operation."},
		{Pattern: `capabilities`, Fields: capFields, Operations: ops{core.OpUpdate: p.legacy(p.capabilities("token"))}, Help: "A token's capabilities on paths."},
		{Pattern: `capabilities-self`, Fields: capFields, Operations: ops{core.OpUpdate: p.legacy(p.capabilities("self"))}, Help: "The caller's capabilities on paths."},
		{Pattern: `capabilities-accessor`, Fields: capFields, Operations: ops{core.OpUpdate: p.legacy(p.capabilities("accessor"))}, Help: "Capabilities of the token with an accessor."},
	}
}

// legacy marks h's answers as Vault's older sys/ endpoints shape them: the
// data fields repeated at the top level of the body.
func (p *API) legacy(h framework.HandlerFunc) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		resp, err := h(ctx, req, d)
		if resp != nil {
			resp.Legacy = true
		}
		return resp, err
	}
}

func (p *API) listACL(withPolicies bool) framework.HandlerFunc {
	return func(_ context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
		names := p.authz.ListACLIn(req.NS())
		data := map[string]any{"keys": names}
		if withPolicies {
			data["policies"] = names
		}
		return &core.Response{Data: data}, nil
	}
}

func (p *API) readACL(field string) framework.HandlerFunc {
	return func(_ context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		name := sanitizeName(d.String("name"))
		raw, ok := p.authz.GetACLIn(req.NS(), name)
		if !ok {
			return nil, core.ErrNotFound
		}
		return &core.Response{Data: map[string]any{"name": name, field: raw}}, nil
	}
}

// policyText reads the policy field (or the legacy "rules"), accepting a
// base64-encoded policy as Vault does.
func policyText(d *framework.FieldData) string {
	s := d.String("policy")
	if s == "" && d.Schema["rules"] != nil {
		s = d.String("rules")
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) > 0 && utf8.Valid(b) {
		return string(b)
	}
	return s
}

func (p *API) putACL(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if err := p.authz.PutACLIn(ctx, req.NS(), d.String("name"), policyText(d)); err != nil {
		return nil, err
	}
	return &core.Response{}, nil
}

func (p *API) deleteACL(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if err := p.authz.DeleteACLIn(ctx, req.NS(), d.String("name")); err != nil {
		return nil, err
	}
	return &core.Response{}, nil
}

// errRegoRootOnly refuses custom Rego modules outside the root namespace:
// they apply to every request of every namespace.
var errRegoRootOnly = core.Invalid("custom Rego policies apply to every namespace and are managed in the root namespace only")

func (p *API) listRego(_ context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if !req.NS().IsRoot() {
		return nil, errRegoRootOnly
	}
	names := p.authz.ListModules()
	if len(names) == 0 {
		return nil, core.ErrNotFound // as Vault answers an empty list
	}
	return &core.Response{Data: map[string]any{"keys": names}}, nil
}

func (p *API) readRego(_ context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if !req.NS().IsRoot() {
		return nil, errRegoRootOnly
	}
	m, ok := p.authz.GetModule(d.String("name"))
	if !ok {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"name": m.Name, "policy": m.Source, "enforcement_level": m.Level}}, nil
}

func (p *API) putRego(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if !req.NS().IsRoot() {
		return nil, errRegoRootOnly
	}
	m := Module{Name: d.String("name"), Source: policyText(d), Level: d.String("enforcement_level")}
	if err := p.authz.PutModule(ctx, m); err != nil {
		return nil, err
	}
	return &core.Response{}, nil
}

func (p *API) deleteRego(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if !req.NS().IsRoot() {
		return nil, errRegoRootOnly
	}
	if err := p.authz.DeleteModule(ctx, d.String("name")); err != nil {
		return nil, err
	}
	return &core.Response{}, nil
}

// capabilities serves sys/capabilities{,-self,-accessor}.
func (p *API) capabilities(kind string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		var paths []string
		for _, s := range append(d.Strings("paths"), d.Strings("path")...) {
			if s = strings.TrimSpace(s); s != "" {
				paths = append(paths, s)
			}
		}
		if len(paths) == 0 {
			return nil, core.Invalid("paths must be supplied")
		}
		var pr *core.Principal
		var err error
		switch kind {
		case "self":
			if req.Principal == nil {
				return nil, core.ErrPermissionDenied
			}
			pr = req.Principal
		case "token":
			tok := d.String("token")
			if tok == "" {
				return nil, core.Invalid("missing token")
			}
			if pr, err = p.tokens.PrincipalByToken(ctx, tok); err != nil {
				return nil, err
			}
			if pr == nil || !req.NS().Contains(pr.NamespaceOf()) {
				return nil, core.Invalid("invalid token")
			}
		case "accessor":
			acc := d.String("accessor")
			if acc == "" {
				return nil, core.Invalid("missing accessor")
			}
			if pr, err = p.tokens.PrincipalByAccessor(ctx, acc); err != nil {
				return nil, err
			}
			if pr == nil || !req.NS().Contains(pr.NamespaceOf()) {
				return nil, core.Invalid("invalid accessor")
			}
		}
		data := map[string]any{}
		for _, path := range paths {
			caps, err := p.authz.CapabilitiesNS(ctx, pr.NamespaceOf(), pr.Policies, req.NS().Path+strings.TrimPrefix(path, "/"))
			if err != nil {
				return nil, err
			}
			data[path] = caps
		}
		if len(paths) == 1 {
			data["capabilities"] = data[paths[0]]
		}
		return &core.Response{Data: data}, nil
	}
}
