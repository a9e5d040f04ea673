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
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the approle auth method.
type Backend struct {
	env framework.Env
	mu  sync.Mutex
}

// New returns an approle auth method.
func New() router.Engine { return &Backend{} }

var _ router.Engine = (*Backend)(nil)

type role struct {
	RoleID          string        `json:"role_id"`
	BindSecretID    bool          `json:"bind_secret_id"`
	SecretIDTTL     time.Duration `json:"secret_id_ttl"`
	SecretIDNumUses int           `json:"secret_id_num_uses"`
	tokenutil.Params
}

type secretID struct {
	Accessor string            `json:"accessor"`
	Created  time.Time         `json:"created"`
	Expires  time.Time         `json:"expires,omitempty"`
	NumUses  int               `json:"num_uses"` // remaining; 0 = unlimited
	Metadata map[string]string `json:"metadata,omitempty"`
	HashedID string            `json:"hashed_id"`
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
			"secret_id_num_uses": {Type: framework.TypeInt}, "role_id": {Type: framework.TypeString}})),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRole, core.OpCreate: b.writeRole, core.OpUpdate: b.writeRole, core.OpDelete: b.deleteRole}},
		{Pattern: `role/(?P<role_name>[^/]+)/role-id`, Fields: with(map[string]*framework.FieldSchema{"role_id": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readRoleID, core.OpUpdate: b.writeRoleID}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id/?`, Fields: with(map[string]*framework.FieldSchema{"metadata": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.newSecretID, core.OpList: b.listSecretIDs}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id/lookup`, Fields: with(map[string]*framework.FieldSchema{"secret_id": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.lookupSecretID}},
		{Pattern: `role/(?P<role_name>[^/]+)/secret-id/destroy`, Fields: with(map[string]*framework.FieldSchema{"secret_id": {Type: framework.TypeString}}),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.destroySecretID, core.OpDelete: b.destroySecretID}},
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
	data := map[string]any{"bind_secret_id": r.BindSecretID, "secret_id_ttl": int64(r.SecretIDTTL / time.Second),
		"secret_id_num_uses": r.SecretIDNumUses, "secret_id_bound_cidrs": []string{}}
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
	if err := r.Params.Update(d); err != nil {
		return nil, err
	}
	if !r.BindSecretID {
		return nil, core.Invalid("bind_secret_id=false is not supported: a role must require a secret ID")
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

func (b *Backend) newSecretID(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("role_name")
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("role %q does not exist", name)
	}
	raw := uuid.NewString()
	now := b.env.Now().UTC()
	s := &secretID{Accessor: uuid.NewString(), Created: now, NumUses: r.SecretIDNumUses, HashedID: hashID("secret", raw)}
	if r.SecretIDTTL > 0 {
		s.Expires = now.Add(r.SecretIDTTL)
	}
	if m := d.String("metadata"); m != "" {
		var md map[string]string
		if err := jsonUnmarshal([]byte(m), &md); err != nil {
			return nil, core.Invalid("metadata must be a JSON object of strings: %v", err)
		}
		s.Metadata = md
	}
	if err := storage.PutJSON(ctx, b.env.Storage, secretKey(name, s.HashedID), s); err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"secret_id": raw, "secret_id_accessor": s.Accessor,
		"secret_id_ttl": int64(r.SecretIDTTL / time.Second), "secret_id_num_uses": r.SecretIDNumUses}}, nil
}

func (b *Backend) listSecretIDs(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	keys, err := b.env.Storage.List(ctx, "secret_id/"+strings.ToLower(d.String("role_name"))+"/")
	if err != nil {
		return nil, err
	}
	var accs []string
	for _, k := range keys {
		var s secretID
		if ok, err := storage.GetJSON(ctx, b.env.Storage, secretKey(d.String("role_name"), k), &s); err == nil && ok {
			accs = append(accs, s.Accessor)
		}
	}
	if len(accs) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": accs}}, nil
}

func (b *Backend) lookupSecretID(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	var s secretID
	ok, err := storage.GetJSON(ctx, b.env.Storage, secretKey(d.String("role_name"), hashID("secret", d.String("secret_id"))), &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, core.ErrNotFound
	}
	exp := any(nil)
	if !s.Expires.IsZero() {
		exp = s.Expires.Format(time.RFC3339Nano)
	}
	return &core.Response{Data: map[string]any{"secret_id_accessor": s.Accessor, "creation_time": s.Created.Format(time.RFC3339Nano),
		"expiration_time": exp, "secret_id_num_uses": s.NumUses, "metadata": s.Metadata}}, nil
}

func (b *Backend) destroySecretID(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.env.Storage.Delete(ctx, secretKey(d.String("role_name"), hashID("secret", d.String("secret_id"))))
}

var errBadLogin = core.Invalid("invalid role or secret ID")

func (b *Backend) login(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	roleID, sid := d.String("role_id"), d.String("secret_id")
	if roleID == "" {
		return nil, core.Invalid("missing role_id")
	}
	if sid == "" {
		return nil, core.Invalid("missing secret_id")
	}
	nameB, err := b.env.Storage.Get(ctx, roleIDKey(roleID))
	if err != nil {
		return nil, err
	}
	if nameB == nil {
		return nil, errBadLogin
	}
	name := string(nameB)
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil || !hmac.Equal([]byte(hashID("role", r.RoleID)), []byte(hashID("role", roleID))) {
		return nil, errBadLogin
	}
	key := secretKey(name, hashID("secret", sid))
	var s secretID
	ok, err := storage.GetJSON(ctx, b.env.Storage, key, &s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errBadLogin
	}
	if !s.Expires.IsZero() && !b.env.Now().Before(s.Expires) {
		_ = b.env.Storage.Delete(ctx, key)
		return nil, errBadLogin
	}
	if s.NumUses > 0 {
		s.NumUses--
		if s.NumUses == 0 {
			err = b.env.Storage.Delete(ctx, key)
		} else {
			err = storage.PutJSON(ctx, b.env.Storage, key, &s)
		}
		if err != nil {
			return nil, err
		}
	}
	meta := map[string]string{"role_name": name}
	for k, v := range s.Metadata {
		meta[k] = v
	}
	a := r.Params.Auth(name, meta)
	// The role id names the workload's entity alias, as in Vault.
	a.Alias = &core.Alias{Name: r.RoleID, Metadata: map[string]string{"role_name": name}}
	return &core.Response{Auth: a}, nil
}
