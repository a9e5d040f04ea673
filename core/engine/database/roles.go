package database

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// role is a dynamic role, stored at role/<name>.
type role struct {
	DBName               string        `json:"db_name"`
	CreationStatements   []string      `json:"creation_statements"`
	RevocationStatements []string      `json:"revocation_statements,omitempty"`
	RollbackStatements   []string      `json:"rollback_statements,omitempty"`
	RenewStatements      []string      `json:"renew_statements,omitempty"`
	DefaultTTL           time.Duration `json:"default_ttl"`
	MaxTTL               time.Duration `json:"max_ttl"`
}

func loadRole(ctx context.Context, s storage.Storage, name string) (*role, error) {
	var r role
	ok, err := storage.GetJSON(ctx, s, rolePrefix+name, &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) roleListRoute() framework.Route {
	return framework.Route{
		Pattern:    "roles/?",
		Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.roleList},
		Help:       "Lists the dynamic roles.",
	}
}

func (b *Backend) roleRoute() framework.Route {
	return framework.Route{
		Pattern: "roles/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":    {Type: framework.TypeString, Description: "Name of the role."},
			"db_name": {Type: framework.TypeString, Description: "Name of the database connection to use."},
			"creation_statements": {Type: framework.TypeStringSlice,
				Description: "Statements creating the user; {{name}}, {{password}} and {{expiration}} are substituted."},
			"revocation_statements": {Type: framework.TypeStringSlice,
				Description: "Statements removing the user; {{name}} is substituted. Defaults to the plugin's."},
			"rollback_statements": {Type: framework.TypeStringSlice,
				Description: "Statements undoing a failed creation; {{name}} is substituted. Defaults to removing the user."},
			"renew_statements": {Type: framework.TypeStringSlice,
				Description: "Statements run on renewal; {{name}} and {{expiration}} are substituted."},
			"default_ttl":     {Type: framework.TypeDurationSecond, Description: "Default lease TTL; 0 uses the mount's."},
			"max_ttl":         {Type: framework.TypeDurationSecond, Description: "Maximum lease TTL; 0 uses the mount's."},
			"credential_type": {Type: framework.TypeString, Description: `Must be "password" (the only type supported).`},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.roleRead,
			core.OpCreate: b.roleWrite,
			core.OpUpdate: b.roleWrite,
			core.OpDelete: b.roleDelete,
		},
		ExistenceCheck: existsByName(b, loadRole),
		Help:           "Manages roles that create database users on demand.",
	}
}

func (b *Backend) roleList(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	return listKeys(ctx, st.storage, rolePrefix)
}

func (b *Backend) roleRead(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	r, err := loadRole(ctx, st.storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{
		"db_name":               r.DBName,
		"creation_statements":   emptyIfNil(r.CreationStatements),
		"revocation_statements": emptyIfNil(r.RevocationStatements),
		"rollback_statements":   emptyIfNil(r.RollbackStatements),
		"renew_statements":      emptyIfNil(r.RenewStatements),
		"default_ttl":           int64(r.DefaultTTL / time.Second),
		"max_ttl":               int64(r.MaxTTL / time.Second),
		"credential_type":       "password",
	}}, nil
}

// roleWrite creates or updates a dynamic role; on update, fields not given
// keep their values. db_name and creation_statements are required. A name
// used by a static role is refused, as in Vault.
func (b *Backend) roleWrite(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	if name == "" {
		return nil, core.Invalid("missing role name")
	}
	if ct := d.String("credential_type"); ct != "" && ct != "password" {
		return nil, core.Invalid("credential_type %q is not supported: only \"password\"", ct)
	}
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	if sr, err := loadStaticRole(ctx, st.storage, name); err != nil {
		return nil, err
	} else if sr != nil {
		return nil, core.Invalid("role %q already exists as a static role; role and static role names must be unique", name)
	}
	r, err := loadRole(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{}
	}
	if d.Has("db_name") {
		r.DBName = d.String("db_name")
	}
	for _, f := range []struct {
		key string
		dst *[]string
	}{
		{"creation_statements", &r.CreationStatements},
		{"revocation_statements", &r.RevocationStatements},
		{"rollback_statements", &r.RollbackStatements},
		{"renew_statements", &r.RenewStatements},
	} {
		if d.Has(f.key) {
			*f.dst = d.Strings(f.key)
		}
	}
	if d.Has("default_ttl") {
		r.DefaultTTL = d.Duration("default_ttl")
	}
	if d.Has("max_ttl") {
		r.MaxTTL = d.Duration("max_ttl")
	}
	if r.DBName == "" {
		return nil, core.Invalid("empty database name attribute")
	}
	if !hasStatements(r.CreationStatements) {
		return nil, core.Invalid("empty creation statements")
	}
	if r.MaxTTL > 0 && r.DefaultTTL > r.MaxTTL {
		return nil, core.Invalid("default_ttl (%s) cannot be greater than max_ttl (%s)", r.DefaultTTL, r.MaxTTL)
	}
	if err := storage.PutJSON(ctx, st.storage, rolePrefix+name, r); err != nil {
		return nil, err
	}
	return nil, nil
}

// roleDelete removes a role. Credentials already issued stay valid until
// their leases end; they are revoked with the statements kept in the lease.
func (b *Backend) roleDelete(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	return nil, st.storage.Delete(ctx, rolePrefix+name)
}
