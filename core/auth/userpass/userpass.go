// Package userpass is the username & password auth method (Vault's
// "userpass"). Passwords are stored as bcrypt hashes.
package userpass

import (
	"context"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the userpass auth method.
type Backend struct {
	env framework.Env
	mu  sync.Mutex
	// dummy is a hash compared against when the user does not exist, so the
	// timing of a failed login does not reveal whether the user exists.
	dummy []byte
}

// New returns a userpass auth method.
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

type user struct {
	Hash []byte `json:"hash"`
	tokenutil.Params
}

func (b *Backend) Setup(ctx context.Context, env framework.Env) error {
	b.env = env
	h, err := bcrypt.GenerateFromPassword([]byte("dummy-password-for-timing"), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	b.dummy = h
	return nil
}

func (b *Backend) Close(context.Context) error { return nil }

func (b *Backend) Routes() []framework.Route {
	name := map[string]*framework.FieldSchema{"username": {Type: framework.TypeString, Required: true}}
	return []framework.Route{
		{Pattern: `users/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.list}},
		{Pattern: `users/(?P<username>[^/]+)`, Fields: tokenutil.With(map[string]*framework.FieldSchema{
			"username": {Type: framework.TypeString, Required: true}, "password": {Type: framework.TypeString}}),
			ExistenceCheck: b.exists,
			Operations:     map[core.Operation]framework.HandlerFunc{core.OpRead: b.read, core.OpCreate: b.write, core.OpUpdate: b.write, core.OpDelete: b.delete}},
		{Pattern: `users/(?P<username>[^/]+)/password`, Fields: map[string]*framework.FieldSchema{
			"username": name["username"], "password": {Type: framework.TypeString, Required: true}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.setPassword}},
		{Pattern: `users/(?P<username>[^/]+)/policies`, Fields: tokenutil.With(name),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.setPolicies}},
		{Pattern: `login/(?P<username>[^/]+)`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{
			"username": name["username"], "password": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.login}},
	}
}

func key(name string) string { return "user/" + strings.ToLower(name) }

func (b *Backend) get(ctx context.Context, name string) (*user, error) {
	var u user
	ok, err := storage.GetJSON(ctx, b.env.Storage, key(name), &u)
	if err != nil || !ok {
		return nil, err
	}
	return &u, nil
}

func (b *Backend) exists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	u, err := b.get(ctx, d.String("username"))
	return u != nil, err
}

func (b *Backend) list(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	keys, err := b.env.Storage.List(ctx, "user/")
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *Backend) read(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	u, err := b.get(ctx, d.String("username"))
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, core.ErrNotFound
	}
	data := map[string]any{}
	u.Params.Data(data)
	return &core.Response{Data: data}, nil
}

func hash(pw string) ([]byte, error) {
	if pw == "" {
		return nil, core.Invalid("password must not be empty")
	}
	if len(pw) > 72 {
		return nil, core.Invalid("password must be at most 72 bytes")
	}
	return bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
}

func (b *Backend) write(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	name := d.String("username")
	u, err := b.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		if !d.Has("password") {
			return nil, core.Invalid("missing password")
		}
		u = &user{}
	}
	if d.Has("password") {
		if u.Hash, err = hash(d.String("password")); err != nil {
			return nil, err
		}
	}
	if err := u.Params.Update(d); err != nil {
		return nil, err
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, key(name), u)
}

func (b *Backend) delete(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.env.Storage.Delete(ctx, key(d.String("username")))
}

func (b *Backend) setPassword(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.get(ctx, d.String("username"))
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, core.Invalid("username does not exist")
	}
	if u.Hash, err = hash(d.String("password")); err != nil {
		return nil, err
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, key(d.String("username")), u)
}

func (b *Backend) setPolicies(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.get(ctx, d.String("username"))
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, core.Invalid("username does not exist")
	}
	if err := u.Params.Update(d); err != nil {
		return nil, err
	}
	return nil, storage.PutJSON(ctx, b.env.Storage, key(d.String("username")), u)
}

// errBadLogin is deliberately the same for a wrong user and a wrong password.
var errBadLogin = core.Invalid("invalid username or password")

func (b *Backend) login(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := strings.ToLower(d.String("username"))
	pw := d.String("password")
	u, err := b.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		_ = bcrypt.CompareHashAndPassword(b.dummy, []byte(pw))
		return nil, errBadLogin
	}
	if pw == "" || bcrypt.CompareHashAndPassword(u.Hash, []byte(pw)) != nil {
		return nil, errBadLogin
	}
	// Checked after the password, so that the answer reveals nothing about
	// the user to someone who does not know it.
	if err := u.Params.CheckLoginAddr(req); err != nil {
		return nil, err
	}
	a := u.Params.Auth(name, map[string]string{"username": name})
	// The identity store maps the user name to the person's entity, as
	// Vault does.
	a.Alias = &core.Alias{Name: name}
	return &core.Response{Auth: a}, nil
}
