package server

import (
	"context"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/token"
)

type resolver struct{ s *Server }

// Resolve implements core.Resolver on top of the router.
func (r resolver) Resolve(ctx context.Context, req *core.Request) (*core.Target, error) {
	res, err := r.s.router.Resolve(req.Path)
	if err != nil {
		return nil, err
	}
	info := res.Mount
	t := &core.Target{Mount: &info, MountPath: res.MountPath}
	rt := r.s.router
	t.Serve = func(ctx context.Context, req *core.Request) (*core.Response, error) { return rt.Route(ctx, res, req) }
	if req.Operation == core.OpRevoke || req.Operation == core.OpRenew {
		t.Found = req.Internal
		return t, nil
	}
	if res.Route == nil {
		return t, core.ErrUnsupportedPath
	}
	t.Found = true
	t.Unauthenticated, t.Unaudited, t.SealedOK, t.Sudo = res.Route.Unauthenticated, res.Route.Unaudited, res.Route.SealedOK, res.Route.Sudo
	t.DefersTokenUse = res.Route.DefersTokenUse
	if res.Route.ExistenceCheck != nil {
		t.Exists = func(ctx context.Context, req *core.Request) (bool, error) {
			exists, _, err := rt.Exists(ctx, res, req)
			return exists, err
		}
	}
	return t, nil
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
// auth method. When the method named the login's alias (core.Auth.Alias),
// the identity store maps it to its entity first (creating it on first
// login) and the token is bound to that entity.
func (s *Server) issueLoginToken(ctx context.Context, req *core.Request, resp *core.Response) error {
	if resp == nil || resp.Auth == nil || resp.Auth.ClientToken != "" || req.Mount == nil || req.Mount.Class != "auth" || req.Mount.Type == "token" {
		return nil
	}
	a := resp.Auth
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
	name := req.Mount.Type
	if a.DisplayName != "" {
		name += "-" + a.DisplayName
	}
	raw, e, err := s.tokens.Create(ctx, token.CreateParams{
		Policies: a.Policies, Meta: a.Metadata, DisplayName: strings.ToLower(name), NumUses: a.NumUses,
		TTL: ttl, ExplicitMaxTTL: explicit, Period: a.Period, Renewable: a.Renewable, Orphan: true,
		Type: a.TokenType, Path: req.Path, EntityID: entityID, AliasID: aliasID, InternalData: a.InternalData,
	})
	if err != nil {
		return err
	}
	*resp.Auth = *token.AuthFor(raw, e)
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
