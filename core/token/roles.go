package token

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Role is a token role (auth/token/roles/:name): a named set of limits for
// tokens created with auth/token/create/:name. A role with allowed
// policies is the authority for them: its tokens may carry those policies
// even when the creating token does not.
type Role struct {
	Name                   string        `json:"name"`
	AllowedPolicies        []string      `json:"allowed_policies,omitempty"`
	DisallowedPolicies     []string      `json:"disallowed_policies,omitempty"`
	AllowedPoliciesGlob    []string      `json:"allowed_policies_glob,omitempty"`
	DisallowedPoliciesGlob []string      `json:"disallowed_policies_glob,omitempty"`
	AllowedEntityAliases   []string      `json:"allowed_entity_aliases,omitempty"`
	Orphan                 bool          `json:"orphan"`
	Renewable              bool          `json:"renewable"`
	PathSuffix             string        `json:"path_suffix,omitempty"`
	Period                 time.Duration `json:"period,omitempty"`
	ExplicitMaxTTL         time.Duration `json:"explicit_max_ttl,omitempty"`
	NumUses                int           `json:"num_uses,omitempty"`
	NoDefaultPolicy        bool          `json:"no_default_policy,omitempty"`
	// TokenType is default-service (the default), default-batch, service or
	// batch; the last two force the type.
	TokenType  string   `json:"token_type"`
	BoundCIDRs []string `json:"bound_cidrs,omitempty"`
}

const rolePrefix = "roles/"

var pathSuffixRE = regexp.MustCompile(`^\w[\w\-.]+\w$`)

var roleFields = map[string]*framework.FieldSchema{
	"role_name":                {Type: framework.TypeString, Required: true},
	"allowed_policies":         {Type: framework.TypeCommaStringSlice},
	"disallowed_policies":      {Type: framework.TypeCommaStringSlice},
	"allowed_policies_glob":    {Type: framework.TypeCommaStringSlice},
	"disallowed_policies_glob": {Type: framework.TypeCommaStringSlice},
	"allowed_entity_aliases":   {Type: framework.TypeCommaStringSlice},
	"orphan":                   {Type: framework.TypeBool},
	"renewable":                {Type: framework.TypeBool, Default: true},
	"path_suffix":              {Type: framework.TypeString},
	"token_period":             {Type: framework.TypeDurationSecond},
	"period":                   {Type: framework.TypeDurationSecond},
	"token_explicit_max_ttl":   {Type: framework.TypeDurationSecond},
	"explicit_max_ttl":         {Type: framework.TypeDurationSecond},
	"token_num_uses":           {Type: framework.TypeInt},
	"token_no_default_policy":  {Type: framework.TypeBool},
	"token_type":               {Type: framework.TypeString},
	"token_bound_cidrs":        {Type: framework.TypeCommaStringSlice},
	"bound_cidrs":              {Type: framework.TypeCommaStringSlice},
}

func (b *Backend) roleRoutes() []framework.Route {
	withRole := map[string]*framework.FieldSchema{"role_name": {Type: framework.TypeString, Required: true}}
	for k, v := range createFields {
		withRole[k] = v
	}
	return []framework.Route{
		{Pattern: `roles/?`, Operations: ops(core.OpList, b.listRoles)},
		{Pattern: `roles/` + framework.GenericNameRegex("role_name"), Fields: roleFields, ExistenceCheck: b.roleExists,
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRole, core.OpCreate: b.writeRole,
				core.OpUpdate: b.writeRole, core.OpDelete: b.deleteRole}},
		{Pattern: `create/` + framework.GenericNameRegex("role_name"), Fields: withRole, Operations: ops(core.OpUpdate, b.createWithRole)},
	}
}

// rolesOf is where the token roles of namespace ns are kept: each
// namespace has its own.
func rolesOf(ns core.Namespace) string {
	if ns.IsRoot() {
		return rolePrefix
	}
	return NamespaceRolePrefix(ns.ID)
}

// NamespaceRolePrefix is where the token roles of the namespace with id are
// kept in the token backend's storage (deleted with the namespace).
func NamespaceRolePrefix(id string) string { return "ns/" + id + "/" + rolePrefix }

func (b *Backend) getRole(ctx context.Context, ns core.Namespace, name string) (*Role, error) {
	if b.storage == nil {
		return nil, nil
	}
	var r Role
	ok, err := storage.GetJSON(ctx, b.storage, rolesOf(ns)+strings.ToLower(name), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) roleExists(ctx context.Context, req *core.Request, d *framework.FieldData) (bool, error) {
	r, err := b.getRole(ctx, req.NS(), d.String("role_name"))
	return r != nil, err
}

func (b *Backend) listRoles(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	keys, err := b.storage.List(ctx, rolesOf(req.NS()))
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func (b *Backend) readRole(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	r, err := b.getRole(ctx, req.NS(), d.String("role_name"))
	if err != nil || r == nil {
		return nil, err
	}
	var aliases any
	if len(r.AllowedEntityAliases) > 0 {
		aliases = r.AllowedEntityAliases
	}
	return &core.Response{Data: map[string]any{
		"name": r.Name, "allowed_policies": nonNil(r.AllowedPolicies), "disallowed_policies": nonNil(r.DisallowedPolicies),
		"allowed_policies_glob": nonNil(r.AllowedPoliciesGlob), "disallowed_policies_glob": nonNil(r.DisallowedPoliciesGlob),
		"allowed_entity_aliases": aliases, "orphan": r.Orphan, "renewable": r.Renewable, "path_suffix": r.PathSuffix,
		"token_period": int64(r.Period / time.Second), "period": 0, "token_explicit_max_ttl": int64(r.ExplicitMaxTTL / time.Second),
		"explicit_max_ttl": 0, "token_num_uses": r.NumUses, "token_no_default_policy": r.NoDefaultPolicy,
		"token_type": r.TokenType, "token_bound_cidrs": nonNil(r.BoundCIDRs),
	}}, nil
}

func lowerAll(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (b *Backend) writeRole(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := strings.ToLower(d.String("role_name"))
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	r, err := b.getRole(ctx, req.NS(), name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &Role{Name: name, Renewable: true, TokenType: "default-service"}
	}
	for k, dst := range map[string]*[]string{"allowed_policies": &r.AllowedPolicies, "disallowed_policies": &r.DisallowedPolicies,
		"allowed_policies_glob": &r.AllowedPoliciesGlob, "disallowed_policies_glob": &r.DisallowedPoliciesGlob,
		"allowed_entity_aliases": &r.AllowedEntityAliases} {
		if d.Has(k) {
			*dst = lowerAll(d.Strings(k))
		}
	}
	if d.Has("orphan") {
		r.Orphan = d.Bool("orphan")
	}
	if d.Has("renewable") {
		r.Renewable = d.Bool("renewable")
	}
	if d.Has("path_suffix") {
		s := d.String("path_suffix")
		if s != "" && !pathSuffixRE.MatchString(s) {
			return nil, core.Invalid(`given role path suffix contains invalid characters; must match \w[\w-.]+\w`)
		}
		r.PathSuffix = s
	}
	for _, f := range []struct {
		k, alias string
		dst      *time.Duration
	}{{"token_period", "period", &r.Period}, {"token_explicit_max_ttl", "explicit_max_ttl", &r.ExplicitMaxTTL}} {
		if d.Has(f.k) {
			*f.dst = d.Duration(f.k)
		} else if d.Has(f.alias) {
			*f.dst = d.Duration(f.alias)
		}
		if *f.dst < 0 {
			return nil, core.Invalid("%s cannot be negative", f.k)
		}
	}
	if d.Has("token_num_uses") {
		if r.NumUses = d.Int("token_num_uses"); r.NumUses < 0 {
			return nil, core.Invalid("token_num_uses cannot be negative")
		}
	}
	if d.Has("token_no_default_policy") {
		r.NoDefaultPolicy = d.Bool("token_no_default_policy")
	}
	if d.Has("token_type") {
		switch t := d.String("token_type"); t {
		case "", "default", "default-service":
			r.TokenType = "default-service"
		case "default-batch", "service", "batch":
			r.TokenType = t
		default:
			return nil, core.Invalid("invalid token_type %q", t)
		}
	}
	if r.TokenType == "batch" && (r.Period > 0 || r.Renewable && d.Has("renewable")) {
		return nil, core.Invalid("batch tokens cannot be periodic or renewable")
	}
	if d.Has("token_bound_cidrs") || d.Has("bound_cidrs") {
		raw := d.Strings("token_bound_cidrs")
		if !d.Has("token_bound_cidrs") {
			raw = d.Strings("bound_cidrs")
		}
		if r.BoundCIDRs, err = tokenutil.ParseCIDRs("token_bound_cidrs", raw); err != nil {
			return nil, err
		}
	}
	return nil, storage.PutJSON(ctx, b.storage, rolesOf(req.NS())+name, r)
}

func (b *Backend) deleteRole(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.storage.Delete(ctx, rolesOf(req.NS())+strings.ToLower(d.String("role_name")))
}

// DeleteNamespace deletes the token roles of the namespace with id (its
// deletion).
func (b *Backend) DeleteNamespace(ctx context.Context, ns core.Namespace) error {
	if b.storage == nil || ns.IsRoot() {
		return nil
	}
	return storage.DeletePrefix(ctx, b.storage, NamespaceRolePrefix(ns.ID))
}

func (b *Backend) createWithRole(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("role_name")
	r, err := b.getRole(ctx, req.NS(), name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("unknown role %s", name)
	}
	return b.createToken(ctx, req, d, false, r)
}

// globMatch matches s against a pattern whose only wildcard is "*".
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		last := i == len(parts)-2
		if last {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

func matchesAny(p string, exact, globs []string) bool {
	if slices.Contains(exact, p) {
		return true
	}
	for _, g := range globs {
		if globMatch(g, p) {
			return true
		}
	}
	return false
}

// policies applies the role to the requested policies (requested is false
// when the request named none). With allowed policies, the request must stay
// within them (by default it gets them all, minus disallowed ones);
// disallowed policies are never granted. ok reports whether the role
// vouched for the policies (then the creating token need not hold them).
func (r *Role) policies(pols []string, requested, noDefault bool) (out []string, vouched bool, err error) {
	allowedSet := len(r.AllowedPolicies) > 0 || len(r.AllowedPoliciesGlob) > 0
	if allowedSet && !requested {
		for _, p := range r.AllowedPolicies {
			if !matchesAny(p, r.DisallowedPolicies, r.DisallowedPoliciesGlob) {
				pols = append(pols, p)
			}
		}
	}
	norm := normalizePolicies(pols, !noDefault)
	if allowedSet {
		allowed := append(slices.Clone(r.AllowedPolicies), "default")
		for _, p := range norm {
			if !matchesAny(p, allowed, r.AllowedPoliciesGlob) {
				return nil, false, core.Invalid("token policies (%q) must be subset of the role's allowed policies (%q) or glob policies (%q)",
					norm, allowed, nonNil(r.AllowedPoliciesGlob))
			}
		}
	}
	for _, p := range norm {
		if matchesAny(p, r.DisallowedPolicies, r.DisallowedPoliciesGlob) {
			return nil, false, core.Invalid("token policy %q is disallowed by this role", p)
		}
	}
	return norm, allowedSet, nil
}
