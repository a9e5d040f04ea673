// Package approle is the AppRole auth method: machines log in with a role
// ID and a secret ID. Secret IDs are stored hashed.
package approle

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the approle auth method.
type Backend struct {
	env framework.Env
	mu  sync.Mutex
}

// New returns an approle auth method.
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

type role struct {
	RoleID          string        `json:"role_id"`
	BindSecretID    bool          `json:"bind_secret_id"`
	SecretIDTTL     time.Duration `json:"secret_id_ttl"`
	SecretIDNumUses int           `json:"secret_id_num_uses"`
	// SecretIDBoundCIDRs are the addresses logins may come from (with or
	// without a secret ID).
	SecretIDBoundCIDRs []string `json:"secret_id_bound_cidrs,omitempty"`
	tokenutil.Params
}

func (b *Backend) Setup(ctx context.Context, env framework.Env) error { b.env = env; return nil }
func (b *Backend) Close(context.Context) error                        { return nil }

func (b *Backend) Routes() []framework.Route {
	rn := map[string]*framework.FieldSchema{"role_name": {Type: framework.TypeString, Required: true}}
	with := func(extra map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
		m := map[string]*framework.FieldSchema{"role_name": rn["role_name"]}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return []framework.Route{
		{Pattern: `role/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.listRoles}},
		{Pattern: `role/(?P<role_name>[^/]+)`, ExistenceCheck: b.roleExists, Fields: tokenutil.With(with(map[string]*framework.FieldSchema{
			"bind_secret_id": {Type: framework.TypeBool, Default: true}, "secret_id_ttl": {Type: framework.TypeDurationSecond},
			"secret_id_num_uses": {Type: framework.TypeInt}, "role_id": {Type: framework.TypeString},
			"secret_id_bound_cidrs": {Type: framework.TypeCommaStringSlice}})),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRole, core.OpCreate: b.writeRole, core.OpUpdate: b.writeRole, core.OpDelete: b.deleteRole}},
		{Pattern: `role/(?P<role_name>[^/]+)/role-id`, Fields: with(map[string]*framework.FieldSchema{"role_id": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRoleID, core.OpUpdate: b.writeRoleID}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id/?`, Fields: with(secretIDFields(false)),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.newSecretID(false), core.OpList: b.listSecretIDs}},
		{Pattern: `role/(?P<role_name>[^/]+)/custom-secret-id`, Fields: with(secretIDFields(true)),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.newSecretID(true)}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id/lookup`, Fields: with(map[string]*framework.FieldSchema{"secret_id": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.lookupSecretID}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id/destroy`, Fields: with(map[string]*framework.FieldSchema{"secret_id": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.destroySecretID, core.OpDelete: b.destroySecretID}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id-accessor/lookup`, Fields: with(map[string]*framework.FieldSchema{"secret_id_accessor": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.lookupAccessor}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id-accessor/destroy`, Fields: with(map[string]*framework.FieldSchema{"secret_id_accessor": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.destroyAccessor, core.OpDelete: b.destroyAccessor}},
		{Pattern: `login`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{"role_id": {Type: framework.TypeString}, "secret_id": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.login}},
	}
}

func roleKey(name string) string { return "role/" + strings.ToLower(name) }
func roleIDKey(id string) string { return "role_id/" + hashID("role", id) }
func secretKey(roleName, hashed string) string {
	return "secret_id/" + strings.ToLower(roleName) + "/" + hashed
}

// hashID hashes an identifier for use as a storage key. The raw secret ID is
// never stored.
func hashID(kind, id string) string {
	m := hmac.New(sha256.New, []byte("vigil-approle-"+kind))
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

func (b *Backend) getRole(ctx context.Context, name string) (*role, error) {
	var r role
	ok, err := storage.GetJSON(ctx, b.env.Storage, roleKey(name), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *Backend) roleExists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	r, err := b.getRole(ctx, d.String("role_name"))
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
	r, err := b.getRole(ctx, d.String("role_name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	cidrs := r.SecretIDBoundCIDRs
	if cidrs == nil {
		cidrs = []string{}
	}
	data := map[string]any{"bind_secret_id": r.BindSecretID, "local_secret_ids": false, "secret_id_ttl": int64(r.SecretIDTTL / time.Second),
		"secret_id_num_uses": r.SecretIDNumUses, "secret_id_bound_cidrs": cidrs}
	r.Params.Data(data)
	return &core.Response{Data: data}, nil
}

func (b *Backend) writeRole(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := d.String("role_name")
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	ops := []storage.TxnOp{}
	if r == nil {
		r = &role{RoleID: d.String("role_id"), BindSecretID: true}
		if r.RoleID == "" {
			r.RoleID = uuid.NewString()
		}
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: roleIDKey(r.RoleID), Value: []byte(strings.ToLower(name))})
	}
	if d.Has("bind_secret_id") {
		r.BindSecretID = d.Bool("bind_secret_id")
	}
	if d.Has("secret_id_ttl") {
		r.SecretIDTTL = d.Duration("secret_id_ttl")
	}
	if d.Has("secret_id_num_uses") {
		r.SecretIDNumUses = d.Int("secret_id_num_uses")
		if r.SecretIDNumUses < 0 {
			return nil, core.Invalid("secret_id_num_uses cannot be negative")
		}
	}
	if d.Has("secret_id_bound_cidrs") {
		if r.SecretIDBoundCIDRs, err = tokenutil.ParseCIDRs("secret_id_bound_cidrs", d.Strings("secret_id_bound_cidrs")); err != nil {
			return nil, err
		}
	}
	if err := r.Params.Update(d); err != nil {
		return nil, err
	}
	// A role without a secret ID must be bound by addresses: otherwise its
	// role ID alone (not a secret) would log in from anywhere.
	if !r.BindSecretID && len(r.SecretIDBoundCIDRs) == 0 && len(r.BoundCIDRs) == 0 {
		return nil, core.Invalid("at least one constraint should be enabled on the role: bind_secret_id, secret_id_bound_cidrs or token_bound_cidrs")
	}
	b2, err := jsonMarshal(r)
	if err != nil {
		return nil, err
	}
	ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: roleKey(name), Value: b2})
	return nil, storage.Txn(ctx, b.env.Storage, ops)
}

func (b *Backend) deleteRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := d.String("role_name")
	r, err := b.getRole(ctx, name)
	if err != nil || r == nil {
		return nil, err
	}
	if err := storage.DeletePrefix(ctx, b.env.Storage, "secret_id/"+strings.ToLower(name)+"/"); err != nil {
		return nil, err
	}
	return nil, storage.Txn(ctx, b.env.Storage, []storage.TxnOp{
		{Kind: storage.OpDelete, Key: roleKey(name)}, {Kind: storage.OpDelete, Key: roleIDKey(r.RoleID)}})
}

func (b *Backend) readRoleID(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	r, err := b.getRole(ctx, d.String("role_name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"role_id": r.RoleID}}, nil
}

func (b *Backend) writeRoleID(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := d.String("role_name")
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("role %q does not exist", name)
	}
	newID := d.String("role_id")
	if newID == "" {
		return nil, core.Invalid("missing role_id")
	}
	old := r.RoleID
	r.RoleID = newID
	b2, err := jsonMarshal(r)
	if err != nil {
		return nil, err
	}
	return nil, storage.Txn(ctx, b.env.Storage, []storage.TxnOp{
		{Kind: storage.OpDelete, Key: roleIDKey(old)},
		{Kind: storage.OpPut, Key: roleIDKey(newID), Value: []byte(strings.ToLower(name))},
		{Kind: storage.OpPut, Key: roleKey(name), Value: b2}})
}
