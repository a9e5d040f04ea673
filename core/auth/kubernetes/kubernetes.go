// Package kubernetes is the Kubernetes auth method (Vault's "kubernetes"):
// a pod logs in with its service account token. By default the token is
// validated by the cluster itself through the TokenReview API; with
// local_jwt_validation the signature, issuer, expiry and audience of a
// projected service-account token are checked here against the cluster's
// OIDC discovery keys (or static pem_keys), with no call to the API server.
// Roles bind service account names and namespaces (globs).
package kubernetes

import (
	"context"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the Kubernetes auth method. It is safe for concurrent use.
type Backend struct {
	env    framework.Env
	ctx    context.Context // lives as long as the mount (key refreshes)
	cancel context.CancelFunc

	mu    sync.Mutex
	local *localValidator // cached for the stored config; nil until used
}

// New returns a Kubernetes auth method.
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

// Setup implements framework.Engine.
func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	b.env = env
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return nil
}

// Close implements framework.Engine.
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
		{Pattern: `login`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{
			"role": {Type: framework.TypeLowerCaseString}, "jwt": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.login},
			Help:       "Log in with a service account token."},
	}
}

// role binds service accounts to token settings.
type role struct {
	BoundNames      []string `json:"bound_service_account_names"`
	BoundNamespaces []string `json:"bound_service_account_namespaces"`
	Audience        string   `json:"audience,omitempty"`
	AliasNameSource string   `json:"alias_name_source"`
	tokenutil.Params
}

const (
	aliasByUID  = "serviceaccount_uid"
	aliasByName = "serviceaccount_name"
)

func roleKey(name string) string { return "role/" + strings.ToLower(name) }

func (b *Backend) getRole(ctx context.Context, name string) (*role, error) {
	var r role
	ok, err := storage.GetJSON(ctx, b.env.Storage, roleKey(name), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) roleRoute() framework.Route {
	return framework.Route{Pattern: `role/(?P<name>[^/]+)`, ExistenceCheck: b.roleExists, Fields: tokenutil.With(map[string]*framework.FieldSchema{
		"name":                             {Type: framework.TypeLowerCaseString, Required: true},
		"bound_service_account_names":      {Type: framework.TypeCommaStringSlice},
		"bound_service_account_namespaces": {Type: framework.TypeCommaStringSlice},
		"audience":                         {Type: framework.TypeString},
		"alias_name_source":                {Type: framework.TypeString},
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
	data := map[string]any{"bound_service_account_names": r.BoundNames, "bound_service_account_namespaces": r.BoundNamespaces,
		"audience": r.Audience, "alias_name_source": r.AliasNameSource, "bound_service_account_namespace_selector": ""}
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
		r = &role{AliasNameSource: aliasByUID}
	}
	if d.Has("bound_service_account_names") {
		r.BoundNames = d.Strings("bound_service_account_names")
	}
	if d.Has("bound_service_account_namespaces") {
		r.BoundNamespaces = d.Strings("bound_service_account_namespaces")
	}
	if d.Has("audience") {
		r.Audience = d.String("audience")
	}
	if d.Has("alias_name_source") {
		r.AliasNameSource = d.String("alias_name_source")
	}
	if err := r.Params.Update(d); err != nil {
		return nil, err
	}
	switch {
	case len(r.BoundNames) == 0:
		return nil, core.Invalid(`"bound_service_account_names" can not be empty`)
	case len(r.BoundNamespaces) == 0:
		return nil, core.Invalid(`"bound_service_account_namespaces" can not be empty`)
	case len(r.BoundNames) > 1 && contains(r.BoundNames, "*"):
		return nil, core.Invalid(`can not mix "*" with values`)
	case len(r.BoundNamespaces) > 1 && contains(r.BoundNamespaces, "*"):
		return nil, core.Invalid(`can not mix "*" with values`)
	case r.AliasNameSource != aliasByUID && r.AliasNameSource != aliasByName:
		return nil, core.Invalid("invalid alias_name_source %q: must be %s or %s", r.AliasNameSource, aliasByUID, aliasByName)
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, roleKey(name), r)
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func (b *Backend) deleteRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.env.Storage.Delete(ctx, roleKey(d.String("name")))
}
