package server

import (
	"context"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/system"
	"github.com/vigilsec/vigil/core/token"
)

type resolver struct{ s *Server }

// Resolve implements core.Resolver on top of the router.
func (r resolver) Resolve(ctx context.Context, req *core.Request) (*core.Target, error) {
	ns, rel, refused := r.s.namespaceOf(req)
	if refused != nil {
		return &core.Target{Namespace: &ns, Path: rel, Refused: refused}, refused
	}
	res, err := r.s.router.ResolveIn(ns, rel, req.Internal)
	if err != nil {
		return &core.Target{Namespace: &ns, Path: rel}, err
	}
	info := res.Mount
	t := &core.Target{Mount: &info, MountPath: res.MountPath, Namespace: &ns, Path: rel}
	rt := r.s.router
	t.Serve = func(ctx context.Context, req *core.Request) (*core.Response, error) { return rt.Route(ctx, res, req) }
	if req.Operation == core.OpRevoke || req.Operation == core.OpRenew {
		t.Found = req.Internal
		if req.Secret != nil && req.Secret.TokenHash != "" {
			// A token's lease: revoking it revokes the token (with its
			// children and their leases). Tokens renew through auth/token/.
			hash := req.Secret.TokenHash
			t.Serve = func(ctx context.Context, req *core.Request) (*core.Response, error) {
				if req.Operation != core.OpRevoke {
					return nil, core.Invalid("tokens cannot be renewed through this endpoint: use auth/token/renew")
				}
				return nil, r.s.tokens.Revoke(ctx, hash)
			}
		}
		return t, nil
	}
	if res.Route == nil {
		return t, core.ErrUnsupportedPath
	}
	t.Found = true
	withhold(res.Route.Fields, req)
	t.Unauthenticated, t.Unaudited, t.SealedOK, t.Sudo = res.Route.Unauthenticated, res.Route.Unaudited, res.Route.SealedOK, res.Route.Sudo
	t.DefersTokenUse = res.Route.DefersTokenUse
	t.FailSafe = res.Route.FailSafe
	t.SideEffectFree = res.Route.SideEffectFree
	if res.Route.ExistenceCheck != nil {
		t.Exists = func(ctx context.Context, req *core.Request) (bool, error) {
			exists, _, err := rt.Exists(ctx, res, req)
			return exists, err
		}
	}
	return t, nil
}

// withhold moves the values of Withheld fields out of req.Data, so they
// never reach the audit log or any other record of the request.
func withhold(fields map[string]*framework.FieldSchema, req *core.Request) {
	for name, f := range fields {
		if !f.Withheld {
			continue
		}
		if v, ok := req.Data[name]; ok {
			if req.Withheld == nil {
				req.Withheld = map[string]any{}
			}
			req.Withheld[name] = v
			delete(req.Data, name)
		}
	}
}

// authenticator is the dispatcher's Authenticator: the token store, then
// the identity store, which attaches the token's entity and adds its
// identity policies (re-evaluated on every request, so a group change
// applies to the next one) and refuses tokens of disabled entities.
type authenticator struct{ s *Server }

func (a authenticator) Authenticate(ctx context.Context, req *core.Request) (*core.Principal, error) {
	p, err := a.s.tokens.Authenticate(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := a.s.ident.Resolve(p); err != nil {
		return nil, err
	}
	return p, nil
}

// issueLoginToken creates the token for a successful login response from an
// auth method. Its display name is "<mount path>-<name>" as in Vault
// ("userpass-alice", "team-userpass-alice" for a method mounted at
// auth/team/userpass/), so two mounts of a method stay distinguishable.
// When the method named the login's alias (core.Auth.Alias), the identity
// store maps it to its entity first (creating it on first login) and the
// token is bound to that entity.
func (s *Server) issueLoginToken(ctx context.Context, req *core.Request, resp *core.Response) error {
	if resp == nil || resp.Auth == nil || resp.Auth.ClientToken != "" || req.Mount == nil || req.Mount.Class != "auth" || req.Mount.Type == "token" {
		return nil
	}
	a := resp.Auth
	// Auth methods check token_bound_cidrs themselves before consuming
	// anything; this is the backstop for every method.
	if !tokenutil.AddrAllowed(req.RemoteAddr, a.BoundCIDRs) {
		return tokenutil.ErrOutsideCIDRs(req.RemoteAddr, "token_bound_cidrs")
	}
	entityID, aliasID := a.EntityID, ""
	var ident *core.Identity
	if a.Alias != nil {
		lr, err := s.ident.Login(ctx, req.Mount.Accessor, a.Alias, a.GroupAliases)
		if err != nil {
			return err
		}
		entityID, aliasID, ident = lr.EntityID, lr.AliasID, lr.Identity
	}
	def, max := s.router.Effective(req.Mount.Path)
	tdef, tmax := s.tokens.Limits()
	if def == 0 || def > tdef {
		def = tdef
	}
	if max == 0 || max > tmax {
		max = tmax
	}
	ttl := a.TTL
	if ttl == 0 {
		ttl = def
	}
	if ttl > max {
		ttl = max
	}
	explicit := a.ExplicitMaxTTL
	if explicit == 0 || explicit > max {
		explicit = max
	}
	name := LoginDisplayName(req.Mount.Path, a.DisplayName)
	raw, e, err := s.tokens.Create(ctx, token.CreateParams{
		Policies: a.Policies, Meta: a.Metadata, DisplayName: name, NumUses: a.NumUses,
		TTL: ttl, ExplicitMaxTTL: explicit, Period: a.Period, Renewable: a.Renewable, Orphan: true,
		Type: a.TokenType, Path: req.Path, EntityID: entityID, AliasID: aliasID, InternalData: a.InternalData,
		BoundCIDRs: a.BoundCIDRs,
		Namespace:  req.NS(),
	})
	if err != nil {
		return err
	}
	alias, groups := a.Alias, a.GroupAliases
	*resp.Auth = *token.AuthFor(raw, e)
	resp.Auth.Alias, resp.Auth.GroupAliases = alias, groups
	if ident != nil {
		resp.Auth.Identity, resp.Auth.IdentityPolicies = ident, ident.Policies
		resp.Auth.Policies = unionPolicies(e.Policies, ident.Policies)
	}
	return nil
}

// unionPolicies is the sorted union of token and identity policies (a
// root token keeps only root).
func unionPolicies(tok, ident []string) []string {
	if slices.Contains(tok, "root") {
		return tok
	}
	out := slices.Clone(tok)
	for _, p := range ident {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// LoginDisplayName is Vault's display name of a login token: the auth
// mount's path without "auth/", slashes turned into dashes, then "-" and the
// name the method gave (the mount part alone when it gave none), lower case.
func LoginDisplayName(mountPath, name string) string {
	src := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(mountPath, "auth/"), "/"), "/", "-")
	if name != "" {
		src += "-" + name
	}
	return strings.ToLower(src)
}

// rootOnly is the authorizer until policies are configured: only root tokens
// may do anything. It fails closed.
type rootOnly struct{}

func (rootOnly) Authorize(_ context.Context, req *core.Request) (*core.Decision, error) {
	if req.Principal != nil && req.Principal.Root {
		return &core.Decision{Allowed: true, Operation: req.Operation, GrantingPolicies: []core.PolicyRef{{Name: "root", Type: "acl"}}}, nil
	}
	return &core.Decision{Allowed: false, Operation: req.Operation, DenyReasons: []string{"only the root token is allowed"}}, nil
}

// noAudit records nothing; it is replaced by the audit broker.
type noAudit struct{}

func (noAudit) LogRequest(context.Context, *core.AuditEvent) error  { return nil }
func (noAudit) LogResponse(context.Context, *core.AuditEvent) error { return nil }

var _ = router.Resolved{}

// mountAccess answers sys/internal/ui/mounts' question with the installed
// authorizer when it can (authz.Authz); otherwise only root sees mounts.
type mountAccess struct{ s *Server }

// MountAccess takes path in full (the namespace's path in front) and the
// principal's policies as its namespace's.
func (m mountAccess) MountAccess(ctx context.Context, p *core.Principal, path string) (bool, error) {
	ns := p.NamespaceOf()
	if p.Root && ns.IsRoot() {
		return true, nil
	}
	if a, ok := m.s.authz.(interface {
		MountAccessNS(ctx context.Context, ns core.Namespace, policies []string, mountPath string) (bool, error)
	}); ok {
		return a.MountAccessNS(ctx, ns, p.Policies, path)
	}
	return false, nil
}

var _ system.MountAccess = mountAccess{}
