package token

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend serves auth/token/. It is mounted statically by the server.
type Backend struct {
	store *Store
	// storage is the backend's view (token roles), set by Setup.
	storage storage.Storage
	roleMu  sync.Mutex // serialises role writes
}

// NewBackend returns the auth/token/ engine for store.
func NewBackend(s *Store) *Backend { return &Backend{store: s} }

var _ framework.Engine = (*Backend)(nil)

func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	b.storage = env.Storage
	return nil
}
func (b *Backend) Close(context.Context) error { return nil }

var createFields = map[string]*framework.FieldSchema{
	"id":                {Type: framework.TypeString},
	"policies":          {Type: framework.TypeCommaStringSlice},
	"meta":              {Type: framework.TypeKVPairs},
	"no_parent":         {Type: framework.TypeBool},
	"no_default_policy": {Type: framework.TypeBool},
	"renewable":         {Type: framework.TypeBool, Default: true},
	"ttl":               {Type: framework.TypeDurationSecond},
	"lease":             {Type: framework.TypeDurationSecond},
	"explicit_max_ttl":  {Type: framework.TypeDurationSecond},
	"display_name":      {Type: framework.TypeString},
	"num_uses":          {Type: framework.TypeInt},
	"period":            {Type: framework.TypeDurationSecond},
	"type":              {Type: framework.TypeString},
	"entity_alias":      {Type: framework.TypeString},
}

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	tokenField := map[string]*framework.FieldSchema{"token": {Type: framework.TypeString}}
	renewFields := map[string]*framework.FieldSchema{"token": {Type: framework.TypeString}, "increment": {Type: framework.TypeDurationSecond}}
	accField := map[string]*framework.FieldSchema{"accessor": {Type: framework.TypeString}, "increment": {Type: framework.TypeDurationSecond}}
	return append([]framework.Route{
		{Pattern: `create`, Fields: createFields, Operations: ops(core.OpUpdate, b.create(false))},
		{Pattern: `create-orphan`, Fields: createFields, Sudo: true, Operations: ops(core.OpUpdate, b.create(true))},
		{Pattern: `lookup`, Fields: tokenField, Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.lookup, core.OpRead: b.lookup}},
		{Pattern: `lookup-self`, Fields: tokenField, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.lookupSelf, core.OpUpdate: b.lookupSelf}},
		{Pattern: `lookup-accessor`, Fields: accField, Operations: ops(core.OpUpdate, b.lookupAccessor)},
		{Pattern: `renew`, Fields: renewFields, Operations: ops(core.OpUpdate, b.renew)},
		{Pattern: `renew-self`, Fields: renewFields, Operations: ops(core.OpUpdate, b.renewSelf)},
		{Pattern: `renew-accessor`, Fields: accField, Operations: ops(core.OpUpdate, b.renewAccessor)},
		{Pattern: `revoke`, Fields: tokenField, Operations: ops(core.OpUpdate, b.revoke(false))},
		{Pattern: `revoke-orphan`, Fields: tokenField, Sudo: true, Operations: ops(core.OpUpdate, b.revoke(true))},
		{Pattern: `revoke-self`, Operations: ops(core.OpUpdate, b.revokeSelf)},
		{Pattern: `revoke-accessor`, Fields: accField, Operations: ops(core.OpUpdate, b.revokeAccessor)},
		{Pattern: `accessors/?`, Sudo: true, Operations: ops(core.OpList, b.listAccessors)},
		{Pattern: `tidy`, Operations: ops(core.OpUpdate, b.tidy)},
	}, b.roleRoutes()...)
}

func ops(op core.Operation, h framework.HandlerFunc) map[core.Operation]framework.HandlerFunc {
	return map[core.Operation]framework.HandlerFunc{op: h}
}

func (b *Backend) callerEntry(ctx context.Context, req *core.Request) (*Entry, error) {
	if req.Principal == nil {
		return nil, core.ErrPermissionDenied
	}
	e, err := b.store.Lookup(ctx, req.Principal.ClientToken)
	if err != nil {
		return nil, err
	}
	if e == nil {
		if req.Principal.NumUsesLeft == -1 {
			// The caller's last use was this request; act on its snapshot.
			return b.store.entryFromPrincipal(req.Principal), nil
		}
		return nil, core.ErrPermissionDenied
	}
	return e, nil
}

func (s *Store) entryFromPrincipal(p *core.Principal) *Entry {
	return &Entry{Hash: Hash(p.ClientToken), Accessor: p.Accessor, Policies: p.TokenPolicies, Type: p.TokenType,
		EntityID: p.EntityID, AliasID: p.AliasID}
}

// create returns the handler of auth/token/create (orphanRoute false) and
// auth/token/create-orphan (true). The handler is shared by every request:
// whether one token is an orphan is decided per request and never written
// back to anything the handler captured.
func (b *Backend) create(orphanRoute bool) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		return b.createToken(ctx, req, d, orphanRoute, nil)
	}
}

// createToken creates a child of the caller's token (or an orphan), within
// the role's limits when role is set (auth/token/create/:role).
func (b *Backend) createToken(ctx context.Context, req *core.Request, d *framework.FieldData, orphanRoute bool, role *Role) (*core.Response, error) {
	orphan := orphanRoute
	parent, err := b.callerEntry(ctx, req)
	if err != nil {
		return nil, err
	}
	if parent.Type == "batch" {
		return nil, core.Invalid("batch tokens cannot create more tokens")
	}
	isRoot := parent.IsRoot()
	if d.String("id") != "" && !isRoot {
		return nil, core.Errorf(core.CodePermissionDenied, "root or sudo privileges required to specify token id")
	}
	if d.Bool("no_parent") {
		if !isRoot {
			return nil, core.Errorf(core.CodePermissionDenied, "root or sudo privileges required to create orphan token")
		}
		orphan = true
	}
	if d.String("entity_alias") != "" {
		// Binding a new token to an entity alias is not implemented; refusing
		// is safer than creating a token without the identity asked for.
		return nil, core.Invalid("entity_alias is not supported: create the token through a login of that alias")
	}
	noDefault := d.Bool("no_default_policy")
	pols := d.Strings("policies")
	requested := d.Has("policies") && len(normalizePolicies(pols, false)) > 0
	vouched := false
	if role != nil {
		orphan = orphan || role.Orphan
		noDefault = noDefault || role.NoDefaultPolicy
		if !requested && len(role.AllowedPolicies) == 0 && len(role.AllowedPoliciesGlob) == 0 {
			pols = slices.DeleteFunc(slices.Clone(parent.Policies), func(p string) bool { return p == "default" })
		}
		if pols, vouched, err = role.policies(pols, requested, noDefault); err != nil {
			return nil, err
		}
	} else if !d.Has("policies") {
		pols = slices.DeleteFunc(slices.Clone(parent.Policies), func(p string) bool { return p == "default" && noDefault })
	}
	norm := normalizePolicies(pols, false)
	if slices.Contains(norm, "root") && !isRoot {
		return nil, core.Errorf(core.CodePermissionDenied, "root tokens may not be created without parent token being root")
	}
	if !isRoot && !vouched {
		for _, p := range norm {
			if p != "default" && !slices.Contains(parent.Policies, p) {
				return nil, core.Errorf(core.CodePermissionDenied, "child policies must be subset of parent")
			}
		}
	}
	ttl := d.Duration("ttl")
	if ttl == 0 {
		ttl = d.Duration("lease")
	}
	name := "token"
	if dn := d.String("display_name"); dn != "" {
		name = "token-" + dn
	}
	p := CreateParams{
		ID: d.String("id"), Policies: pols, NoDefault: noDefault, Meta: d.KV("meta"),
		DisplayName: name, NumUses: d.Int("num_uses"), TTL: ttl, ExplicitMaxTTL: d.Duration("explicit_max_ttl"),
		Period: d.Duration("period"), Renewable: d.Bool("renewable"), Orphan: orphan, Type: d.String("type"),
		Path: req.Path, Creator: parent, Namespace: req.NS(),
	}
	if role != nil {
		if err := role.apply(&p); err != nil {
			return nil, err
		}
	}
	if !orphan {
		p.Parent = parent
	}
	raw, e, err := b.store.Create(ctx, p)
	if err != nil {
		return nil, err
	}
	resp := &core.Response{Auth: AuthFor(raw, e)}
	if ttl > 0 && e.TTL < ttl && p.Period == 0 {
		resp.AddWarning("TTL of \"" + ttl.String() + "\" exceeded the effective max_ttl of \"" + e.TTL.String() + "\"; TTL value is capped accordingly")
	}
	return resp, nil
}

// apply narrows the creation parameters to the role: its period, explicit
// max TTL, use limit, renewability, token type, bound CIDRs and path suffix.
func (r *Role) apply(p *CreateParams) error {
	p.Role = r.Name
	if r.Period > 0 {
		p.Period = r.Period
	}
	if r.ExplicitMaxTTL > 0 && (p.ExplicitMaxTTL == 0 || p.ExplicitMaxTTL > r.ExplicitMaxTTL) {
		p.ExplicitMaxTTL = r.ExplicitMaxTTL
	}
	if r.NumUses > 0 && (p.NumUses == 0 || p.NumUses > r.NumUses) {
		p.NumUses = r.NumUses
	}
	if !r.Renewable {
		p.Renewable = false
	}
	switch r.TokenType {
	case "service", "batch":
		if p.Type != "" && p.Type != r.TokenType {
			return core.Invalid("token type %q is not allowed by this role (%s)", p.Type, r.TokenType)
		}
		p.Type = r.TokenType
	case "default-batch":
		if p.Type == "" {
			p.Type = "batch"
		}
	}
	if p.Type == "batch" && p.Period > 0 {
		return core.Invalid("batch tokens cannot be periodic")
	}
	p.BoundCIDRs = slices.Clone(r.BoundCIDRs)
	if r.PathSuffix != "" {
		p.Path = strings.TrimSuffix(p.Path, "/") + "/" + r.PathSuffix
	}
	return nil
}

// AuthFor builds the response Auth block for a created token.
func AuthFor(raw string, e *Entry) *core.Auth {
	return &core.Auth{
		ClientToken: raw, Accessor: e.Accessor, DisplayName: e.DisplayName, Policies: e.Policies,
		TokenPolicies: e.Policies, Metadata: e.Meta, TTL: e.TTL, ExplicitMaxTTL: e.ExplicitMaxTTL,
		Period: e.Period, Renewable: e.Renewable, EntityID: e.EntityID, TokenType: e.Type,
		Orphan: e.Orphan, NumUses: e.NumUses,
	}
}

func (b *Backend) lookupData(raw string, e *Entry) map[string]any {
	now := b.store.cfg.Now()
	var expire any
	ttl := int64(0)
	if !e.ExpireTime.IsZero() {
		expire = e.ExpireTime.UTC().Format(time.RFC3339Nano)
		ttl = int64(e.ExpireTime.Sub(now).Round(time.Second) / time.Second)
		if ttl < 0 {
			ttl = 0
		}
	}
	meta := any(nil)
	if len(e.Meta) > 0 {
		meta = e.Meta
	}
	d := map[string]any{
		"accessor": e.Accessor, "creation_time": e.CreationTime.Unix(), "creation_ttl": int64(e.TTL / time.Second),
		"display_name": e.DisplayName, "entity_id": e.EntityID, "expire_time": expire,
		"explicit_max_ttl": int64(e.ExplicitMaxTTL / time.Second), "id": raw,
		"issue_time": e.CreationTime.UTC().Format(time.RFC3339Nano), "meta": meta, "num_uses": e.NumUses,
		"orphan": e.Orphan, "path": e.Path, "policies": e.Policies, "renewable": e.Renewable, "ttl": ttl,
		"type": e.Type,
	}
	if e.Period > 0 {
		d["period"] = int64(e.Period / time.Second)
	}
	if len(e.BoundCIDRs) > 0 {
		d["bound_cidrs"] = e.BoundCIDRs
	}
	if e.Role != "" {
		d["role"] = e.Role
	}
	if !e.LastRenewal.IsZero() {
		d["last_renewal_time"] = e.LastRenewal.Unix()
		d["last_renewal"] = e.LastRenewal.UTC().Format(time.RFC3339Nano)
	}
	return d
}

func (b *Backend) lookup(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	raw := d.String("token")
	if raw == "" {
		return b.lookupSelf(ctx, req, d)
	}
	e, err := b.store.Lookup(ctx, raw)
	if err != nil {
		return nil, err
	}
	if e == nil || !InNamespace(e, req.NS()) {
		return nil, core.Errorf(core.CodePermissionDenied, "bad token")
	}
	return &core.Response{Data: b.lookupData(raw, e)}, nil
}

func (b *Backend) lookupSelf(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	e, err := b.callerEntry(ctx, req)
	if err != nil {
		return nil, err
	}
	if e.CreationTime.IsZero() {
		// Last use consumed; describe what we know.
		e.NumUses = 0
	}
	return &core.Response{Data: b.lookupData(req.Principal.ClientToken, e)}, nil
}

// byAccessor finds the token with the request's accessor among the tokens
// of the request's namespace.
func (b *Backend) byAccessor(ctx context.Context, req *core.Request, d *framework.FieldData) (*Entry, error) {
	acc := d.String("accessor")
	if acc == "" {
		return nil, core.Invalid("missing accessor")
	}
	e, err := b.store.LookupAccessor(ctx, acc)
	if err != nil {
		return nil, err
	}
	if e == nil || !InNamespace(e, req.NS()) {
		return nil, core.Invalid("invalid accessor")
	}
	return e, nil
}

func (b *Backend) lookupAccessor(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	e, err := b.byAccessor(ctx, req, d)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: b.lookupData("", e)}, nil
}

func (b *Backend) renewed(e *Entry) *core.Response {
	a := AuthFor("", e)
	a.TTL = e.ExpireTime.Sub(b.store.cfg.Now()).Round(time.Second)
	return &core.Response{Auth: a}
}

func (b *Backend) renew(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	raw := d.String("token")
	if raw == "" {
		return nil, core.Invalid("missing token")
	}
	e, err := b.store.Lookup(ctx, raw)
	if err != nil {
		return nil, err
	}
	if e == nil || !InNamespace(e, req.NS()) {
		return nil, core.Invalid("invalid token")
	}
	e, err = b.store.Renew(ctx, e, d.Duration("increment"))
	if err != nil {
		return nil, err
	}
	resp := b.renewed(e)
	resp.Auth.ClientToken = raw
	return resp, nil
}

func (b *Backend) renewSelf(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	e, err := b.callerEntry(ctx, req)
	if err != nil {
		return nil, err
	}
	e, err = b.store.Renew(ctx, e, d.Duration("increment"))
	if err != nil {
		return nil, err
	}
	resp := b.renewed(e)
	resp.Auth.ClientToken = req.Principal.ClientToken
	return resp, nil
}

func (b *Backend) renewAccessor(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	e, err := b.byAccessor(ctx, req, d)
	if err != nil {
		return nil, err
	}
	e, err = b.store.Renew(ctx, e, d.Duration("increment"))
	if err != nil {
		return nil, err
	}
	return b.renewed(e), nil
}

func (b *Backend) revoke(orphan bool) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		raw := d.String("token")
		if raw == "" {
			return nil, core.Invalid("missing token")
		}
		h := Hash(raw)
		e, err := b.store.Lookup(ctx, raw)
		if err != nil {
			return nil, err
		}
		if e == nil || !InNamespace(e, req.NS()) {
			return nil, nil // as for any unknown token: nothing to revoke
		}
		if orphan {
			return nil, b.store.RevokeOrphan(ctx, h)
		}
		return nil, b.store.Revoke(ctx, h)
	}
}

func (b *Backend) revokeSelf(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if req.Principal == nil {
		return nil, core.ErrPermissionDenied
	}
	return nil, b.store.Revoke(ctx, Hash(req.Principal.ClientToken))
}

func (b *Backend) revokeAccessor(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	e, err := b.byAccessor(ctx, req, d)
	if err != nil {
		return nil, err
	}
	return nil, b.store.Revoke(ctx, e.Hash)
}

func (b *Backend) listAccessors(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	entries, err := b.store.All(ctx)
	if err != nil {
		return nil, err
	}
	accs := []string{}
	for _, e := range entries {
		if InNamespace(e, req.NS()) {
			accs = append(accs, e.Accessor)
		}
	}
	sort.Strings(accs)
	return &core.Response{Data: map[string]any{"keys": accs}}, nil
}

func (b *Backend) tidy(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if !req.NS().IsRoot() {
		return nil, core.Invalid("token tidy covers every namespace and runs in the root namespace only")
	}
	n, err := b.store.Tidy(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"revoked": n}, Warnings: []string{"Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."}}, nil
}
