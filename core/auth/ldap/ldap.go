// Package ldap is the LDAP auth method (Vault's "ldap"): a user logs in
// with a directory name and password; the directory is searched for the
// user's entry (with a bind account) and groups, the user's password is
// checked with a bind as that entry, and the user's groups name policies
// (groups/:name), external identity groups (group aliases) and, when
// allowed_groups is set, whether the user may log in at all.
package ldap

import (
	"context"
	"strings"
	"sync"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Backend is the LDAP auth method. It is safe for concurrent use.
type Backend struct {
	env framework.Env
	mu  sync.Mutex
}

// New returns an LDAP auth method.
func New() framework.Engine { return &Backend{} }

var _ framework.Engine = (*Backend)(nil)

// Setup implements framework.Engine.
func (b *Backend) Setup(_ context.Context, env framework.Env) error { b.env = env; return nil }

// Close implements framework.Engine.
func (b *Backend) Close(context.Context) error { return nil }

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	name := func() map[string]*framework.FieldSchema {
		return map[string]*framework.FieldSchema{"name": {Type: framework.TypeString, Required: true}}
	}
	return []framework.Route{
		b.configRoute(),
		{Pattern: `groups/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.list("group/")}},
		{Pattern: `groups/(?P<name>.+)`, Fields: with(name(), map[string]*framework.FieldSchema{"policies": {Type: framework.TypeCommaStringSlice}}),
			ExistenceCheck: b.exists("group/"),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readMapping("group/"), core.OpCreate: b.writeMapping("group/"),
				core.OpUpdate: b.writeMapping("group/"), core.OpDelete: b.deleteMapping("group/")}},
		{Pattern: `users/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.list("user/")}},
		{Pattern: `users/(?P<name>.+)`, Fields: with(name(), map[string]*framework.FieldSchema{
			"policies": {Type: framework.TypeCommaStringSlice}, "groups": {Type: framework.TypeCommaStringSlice}}),
			ExistenceCheck: b.exists("user/"),
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.readMapping("user/"), core.OpCreate: b.writeMapping("user/"),
				core.OpUpdate: b.writeMapping("user/"), core.OpDelete: b.deleteMapping("user/")}},
		{Pattern: `login/(?P<username>.+)`, Unauthenticated: true, Fields: map[string]*framework.FieldSchema{
			"username": {Type: framework.TypeString, Required: true}, "password": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.login},
			Help:       "Log in with an LDAP user name and password."},
	}
}

func with(a, b map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	for k, v := range b {
		a[k] = v
	}
	return a
}

// mapping is a groups/:name or users/:name entry: local policies (and, for
// users, extra group names) keyed by the directory name.
type mapping struct {
	Policies []string `json:"policies"`
	Groups   []string `json:"groups,omitempty"`
}

// mappingKey: names compare case-insensitively unless case_sensitive_names.
func (b *Backend) mappingKey(ctx context.Context, prefix, name string) (string, error) {
	c, err := b.getConfig(ctx)
	if err != nil {
		return "", err
	}
	if c == nil || !c.CaseSensitiveNames {
		name = strings.ToLower(name)
	}
	return prefix + name, nil
}

func (b *Backend) getMapping(ctx context.Context, prefix, name string) (*mapping, error) {
	k, err := b.mappingKey(ctx, prefix, name)
	if err != nil {
		return nil, err
	}
	var m mapping
	ok, err := storage.GetJSON(ctx, b.env.Storage, k, &m)
	if err != nil || !ok {
		return nil, err
	}
	return &m, nil
}

func (b *Backend) list(prefix string) framework.HandlerFunc {
	return func(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
		keys, err := b.env.Storage.List(ctx, prefix)
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, core.ErrNotFound
		}
		return &core.Response{Data: map[string]any{"keys": keys}}, nil
	}
}

func (b *Backend) exists(prefix string) framework.ExistenceFunc {
	return func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
		m, err := b.getMapping(ctx, prefix, d.String("name"))
		return m != nil, err
	}
}

func (b *Backend) readMapping(prefix string) framework.HandlerFunc {
	return func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
		m, err := b.getMapping(ctx, prefix, d.String("name"))
		if err != nil {
			return nil, err
		}
		if m == nil {
			return nil, core.ErrNotFound
		}
		pol := m.Policies
		if pol == nil {
			pol = []string{}
		}
		data := map[string]any{"policies": pol}
		if prefix == "user/" {
			g := m.Groups
			if g == nil {
				g = []string{}
			}
			data["groups"] = g
		}
		return &core.Response{Data: data}, nil
	}
}

func (b *Backend) writeMapping(prefix string) framework.HandlerFunc {
	return func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		m, err := b.getMapping(ctx, prefix, d.String("name"))
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = &mapping{}
		}
		if d.Has("policies") {
			m.Policies = d.Strings("policies")
		}
		if prefix == "user/" && d.Has("groups") {
			m.Groups = d.Strings("groups")
		}
		k, err := b.mappingKey(ctx, prefix, d.String("name"))
		if err != nil {
			return nil, err
		}
		return nil, storage.PutJSON(ctx, b.env.Storage, k, m)
	}
}

func (b *Backend) deleteMapping(prefix string) framework.HandlerFunc {
	return func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
		k, err := b.mappingKey(ctx, prefix, d.String("name"))
		if err != nil {
			return nil, err
		}
		return nil, b.env.Storage.Delete(ctx, k)
	}
}
