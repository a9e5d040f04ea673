// Package awsauth is the AWS auth method's IAM login (Vault's "aws" type,
// auth_type=iam). The client signs an sts:GetCallerIdentity request with
// its AWS credentials (SigV4) and sends the signed request, not the
// credentials; Vigil forwards it to STS (the configured endpoint, never
// one the client names) and binds the identity STS answers with — the
// principal's ARN and account — to roles (bound_iam_principal_arn globs,
// bound_account_id).
package awsauth

import (
	"context"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the AWS auth method. It is safe for concurrent use.
type Backend struct {
	env framework.Env
	mu  sync.Mutex
}

// New returns an AWS auth method.
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

// Setup implements framework.Engine.
func (b *Backend) Setup(_ context.Context, env framework.Env) error { b.env = env; return nil }

// Close implements framework.Engine.
func (b *Backend) Close(context.Context) error { return nil }

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{
		b.clientConfigRoute(),
		b.identityConfigRoute(),
		{Pattern: `roles?/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.listRoles}},
		b.roleRoute(),
		b.loginRoute(),
	}
}

// role binds IAM principals to token settings.
type role struct {
	RoleID         string   `json:"role_id"`
	AuthType       string   `json:"auth_type"`
	BoundARNs      []string `json:"bound_iam_principal_arn,omitempty"`
	BoundAccountID []string `json:"bound_account_id,omitempty"`
	tokenutil.Params
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

func (b *Backend) roleRoute() framework.Route {
	return framework.Route{Pattern: `role/(?P<role>[^/]+)`, ExistenceCheck: b.roleExists, Fields: tokenutil.With(map[string]*framework.FieldSchema{
		"role":                    {Type: framework.TypeLowerCaseString, Required: true},
		"auth_type":               {Type: framework.TypeString},
		"bound_iam_principal_arn": {Type: framework.TypeCommaStringSlice},
		"bound_account_id":        {Type: framework.TypeCommaStringSlice},
		"resolve_aws_unique_ids":  {Type: framework.TypeBool},
	}), Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRole, core.OpCreate: b.writeRole,
		core.OpUpdate: b.writeRole, core.OpDelete: b.deleteRole}}
}

func (b *Backend) roleExists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	r, err := b.getRole(ctx, d.String("role"))
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
	r, err := b.getRole(ctx, d.String("role"))
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
	data := map[string]any{"role_id": r.RoleID, "auth_type": r.AuthType, "bound_iam_principal_arn": orEmpty(r.BoundARNs),
		"bound_account_id": orEmpty(r.BoundAccountID), "resolve_aws_unique_ids": false}
	r.Params.Data(data)
	return &core.Response{Data: data}, nil
}

func (b *Backend) writeRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := d.String("role")
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{RoleID: uuid.NewString(), AuthType: "iam"}
	}
	if d.Has("auth_type") {
		r.AuthType = d.String("auth_type")
	}
	if d.Has("bound_iam_principal_arn") {
		r.BoundARNs = d.Strings("bound_iam_principal_arn")
	}
	if d.Has("bound_account_id") {
		r.BoundAccountID = d.Strings("bound_account_id")
	}
	if d.Bool("resolve_aws_unique_ids") {
		return nil, core.Invalid("resolve_aws_unique_ids is not supported: roles bind ARNs (globs), not unique ids")
	}
	if err := r.Params.Update(d); err != nil {
		return nil, err
	}
	switch {
	case r.AuthType == "ec2":
		return nil, core.Invalid("auth_type ec2 is not supported; use iam")
	case r.AuthType != "iam":
		return nil, core.Invalid("invalid auth_type %q: must be iam", r.AuthType)
	case len(r.BoundARNs) == 0 && len(r.BoundAccountID) == 0:
		return nil, core.Invalid("an iam role needs bound_iam_principal_arn or bound_account_id")
	}
	for _, a := range r.BoundARNs {
		if a != "*" && !strings.HasPrefix(a, "arn:") {
			return nil, core.Invalid("bound_iam_principal_arn %q is not an ARN", a)
		}
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, roleKey(name), r)
}

func (b *Backend) deleteRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.env.Storage.Delete(ctx, roleKey(d.String("role")))
}
