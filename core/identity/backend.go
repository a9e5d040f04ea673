package identity

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Backend serves Vault's identity/ API over a Store. The server mounts it
// statically at identity/ (type "identity"), as Vault does.
//
//	identity/entity                     POST: create, or update by id / name
//	identity/entity/id/:id              GET POST DELETE; LIST identity/entity/id
//	identity/entity/name/:name          GET POST DELETE; LIST identity/entity/name
//	identity/entity/batch-delete        POST entity_ids
//	identity/entity/merge               POST from_entity_ids, to_entity_id, force, conflicting_alias_ids_to_keep
//	identity/entity-alias               POST: create, or update by id / (mount_accessor, name)
//	identity/entity-alias/id/:id        GET POST DELETE; LIST identity/entity-alias/id
//	identity/group                      POST: create, or update by id / name
//	identity/group/id/:id               GET POST DELETE; LIST identity/group/id
//	identity/group/name/:name           GET POST DELETE; LIST identity/group/name
//	identity/group-alias                POST: create, or update by id
//	identity/group-alias/id/:id         GET POST DELETE; LIST identity/group-alias/id
//	identity/lookup/entity              POST name | id | alias_id | alias_name + alias_mount_accessor
//	identity/lookup/group               POST name | id | alias_id | alias_name + alias_mount_accessor
//
// Shapes and status codes follow Vault: a create answers the new id (and
// name), an update of an existing object 204, a read of a missing object
// 404, a lookup that finds nothing 204, invalid input 400 with the reason.
type Backend struct {
	s *Store
}

var _ framework.Engine = (*Backend)(nil)

// NewBackend returns the identity/ engine for s.
func NewBackend(s *Store) *Backend { return &Backend{s: s} }

// Setup implements framework.Engine (the store lives in the barrier, not in
// the mount's view).
func (b *Backend) Setup(context.Context, framework.Env) error { return nil }

// Close implements framework.Engine.
func (b *Backend) Close(context.Context) error { return nil }

type ops = map[core.Operation]framework.HandlerFunc

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	var rs []framework.Route
	rs = append(rs, b.entityRoutes()...)
	rs = append(rs, b.aliasRoutes()...)
	rs = append(rs, b.groupRoutes()...)
	rs = append(rs, b.groupAliasRoutes()...)
	rs = append(rs, b.lookupRoutes()...)
	return rs
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// strs returns a non-nil copy (Vault answers [] rather than null for the
// lists it computes).
func strs(in []string) []string {
	if in == nil {
		return []string{}
	}
	return append([]string(nil), in...)
}

func kv(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return cloneMap(m)
}

// listResponse answers a LIST: keys and key_info, 404 when empty.
func listResponse(keys []string, info map[string]any) (*core.Response, error) {
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	sort.Strings(keys)
	return &core.Response{Data: map[string]any{"keys": keys, "key_info": info}}, nil
}

// mountInfo adds mount_path (relative to the mount's namespace) and
// mount_type of an alias's mount to m.
func (b *Backend) mountInfo(m map[string]any, accessor string) {
	if path, typ, ok := b.s.mountPath(accessor); ok {
		_, nsPath, _ := b.s.mountNS(accessor)
		m["mount_path"], m["mount_type"] = strings.TrimPrefix(path, nsPath), typ
	}
}

// aliasNS is the namespace id of an alias: its mount's.
func (b *Backend) aliasNS(a *Alias) string {
	id, _, _ := b.s.mountNS(a.MountAccessor)
	return id
}
