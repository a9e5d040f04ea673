package identity

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func entityFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"id":       {Type: framework.TypeString},
		"name":     {Type: framework.TypeString},
		"metadata": {Type: framework.TypeKVPairs},
		"policies": {Type: framework.TypeCommaStringSlice},
		"disabled": {Type: framework.TypeBool},
	}
}

func (b *Backend) entityRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `entity`, Fields: entityFields(), Operations: ops{core.OpUpdate: b.entityWrite("")},
			Help: "Create an entity, or update one by id or name."},
		{Pattern: `entity/id/?`, Operations: ops{core.OpList: b.entityList(true)}, Help: "List entity ids."},
		{Pattern: `entity/id/(?P<id>[^/]+)`, Fields: entityFields(),
			Operations: ops{core.OpRead: b.entityRead("id"), core.OpUpdate: b.entityWrite("id"), core.OpDelete: b.entityDelete("id")},
			Help:       "Read, update or delete an entity by id."},
		{Pattern: `entity/name/?`, Operations: ops{core.OpList: b.entityList(false)}, Help: "List entity names."},
		{Pattern: `entity/name/(?P<name>.+)`, Fields: entityFields(),
			Operations: ops{core.OpRead: b.entityRead("name"), core.OpUpdate: b.entityWrite("name"), core.OpDelete: b.entityDelete("name")},
			Help:       "Read, create or update, or delete an entity by name."},
		{Pattern: `entity/batch-delete`, Fields: map[string]*framework.FieldSchema{"entity_ids": {Type: framework.TypeCommaStringSlice}},
			Operations: ops{core.OpUpdate: b.entityBatchDelete}, Help: "Delete several entities."},
		{Pattern: `entity/merge/?`, Fields: map[string]*framework.FieldSchema{
			"from_entity_ids": {Type: framework.TypeCommaStringSlice}, "to_entity_id": {Type: framework.TypeString},
			"force": {Type: framework.TypeBool}, "conflicting_alias_ids_to_keep": {Type: framework.TypeCommaStringSlice}},
			Operations: ops{core.OpUpdate: b.entityMerge}, Help: "Merge entities into one."},
	}
}

// entityWrite creates or updates an entity. by is "" (identity/entity:
// id or name in the body), "id" or "name" (the path names it).
func (b *Backend) entityWrite(by string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		ns := nsID(req.NS())
		id, name := d.String("id"), d.String("name")
		pol := normPolicies(d.Strings("policies"))
		if slices.Contains(pol, "root") {
			return nil, core.Invalid("policies cannot contain root")
		}
		var resp *core.Response
		err := b.s.update(ctx, func(ix *index, c *change) error {
			var e *Entity
			if id != "" {
				if e = ix.entityAt(ns, id); e == nil {
					return core.Invalid("entity not found from id")
				}
			}
			if name != "" {
				byName := ix.entityByNameOrNil(ns, name)
				switch {
				case byName == nil:
				case e == nil:
					e = byName
				case e.ID != byName.ID:
					return core.Invalid("entity name is already in use")
				}
			}
			if by == "id" && e == nil {
				return core.Invalid("entity not found from id")
			}
			now := b.s.cfg.Now().UTC()
			created := e == nil
			if created {
				nid := uuid.NewString()
				e = &Entity{ID: nid, Name: name, CreationTime: now, NamespaceID: ns}
				if name == "" {
					e.Name = autoName("entity_", nid)
				}
			} else {
				e = e.clone()
				if name != "" {
					e.Name = name
				}
			}
			if d.Has("policies") {
				e.Policies = pol
			}
			if d.Has("disabled") {
				e.Disabled = d.Bool("disabled")
			}
			if d.Has("metadata") {
				e.Metadata = d.KV("metadata")
			}
			c.putEntity(e)
			if created {
				resp = &core.Response{Data: map[string]any{"id": e.ID, "name": e.Name, "aliases": []string{}}}
			}
			return nil
		})
		return resp, err
	}
}

// entityByKey finds the entity of namespace ns a path names ("id" or
// "name").
func entityByKey(ix *index, ns, by string, d *framework.FieldData) *Entity {
	if by == "id" {
		return ix.entityAt(ns, d.String("id"))
	}
	return ix.entityByNameOrNil(ns, d.String("name"))
}

func (b *Backend) entityRead(by string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		var data map[string]any
		err := b.s.view(func(ix *index) error {
			if e := entityByKey(ix, nsID(req.NS()), by, d); e != nil {
				data = b.entityData(ix, e)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if data == nil {
			return nil, core.ErrNotFound
		}
		return &core.Response{Data: data}, nil
	}
}

// entityData is Vault's entity read shape.
func (b *Backend) entityData(ix *index, e *Entity) map[string]any {
	aliases := make([]any, 0, len(e.Aliases))
	for _, a := range e.Aliases {
		aliases = append(aliases, b.aliasData(a))
	}
	direct, inherited := ix.groupsOf(e.ID)
	return map[string]any{
		"id": e.ID, "name": e.Name, "metadata": kv(e.Metadata), "merged_entity_ids": strs(e.MergedEntityIDs),
		"policies": strs(e.Policies), "disabled": e.Disabled, "namespace_id": nsOf(e.NamespaceID),
		"creation_time": ts(e.CreationTime), "last_update_time": ts(e.LastUpdateTime), "aliases": aliases,
		"direct_group_ids": strs(direct), "inherited_group_ids": strs(inherited),
		"group_ids": append(strs(direct), inherited...),
	}
}

func (b *Backend) entityDelete(by string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		return nil, b.s.update(ctx, func(ix *index, c *change) error {
			if e := entityByKey(ix, nsID(req.NS()), by, d); e != nil {
				deleteEntity(ix, c, e.ID)
			}
			return nil
		})
	}
}

// deleteEntity records the deletion of an entity and its removal from
// every group.
func deleteEntity(ix *index, c *change, id string) {
	for _, gid := range ix.groupsByEntity[id] {
		g := c.group(ix, gid)
		g.MemberEntityIDs = slices.DeleteFunc(g.MemberEntityIDs, func(m string) bool { return m == id })
	}
	c.delEntity = append(c.delEntity, id)
}

// group returns the copy of group id this change writes, making it on
// first use, so several edits of one group in a change write it once.
func (c *change) group(ix *index, id string) *Group {
	for _, g := range c.groups {
		if g.ID == id {
			return g
		}
	}
	g := ix.groups[id].clone()
	c.groups = append(c.groups, g)
	return g
}

// entity is group's counterpart for entities.
func (c *change) entity(ix *index, id string) *Entity {
	for _, e := range c.entities {
		if e.ID == id {
			return e
		}
	}
	e := ix.entities[id].clone()
	c.entities = append(c.entities, e)
	return e
}

func (b *Backend) entityBatchDelete(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	ids := dedupe(d.Strings("entity_ids"))
	if len(ids) == 0 {
		return nil, core.Invalid("missing entity ids to delete")
	}
	return nil, b.s.update(ctx, func(ix *index, c *change) error {
		for _, id := range ids {
			if ix.entityAt(ns, id) != nil {
				deleteEntity(ix, c, id)
			}
		}
		return nil
	})
}

func (b *Backend) entityList(byID bool) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
		ns := nsID(req.NS())
		var keys []string
		info := map[string]any{}
		err := b.s.view(func(ix *index) error {
			for _, e := range ix.entities {
				if e.NamespaceID != ns {
					continue
				}
				if byID {
					keys = append(keys, e.ID)
				} else {
					keys = append(keys, e.Name)
				}
				ent := map[string]any{"name": e.Name}
				if len(e.Aliases) > 0 {
					al := make([]any, 0, len(e.Aliases))
					for _, a := range e.Aliases {
						m := map[string]any{"id": a.ID, "name": a.Name, "mount_accessor": a.MountAccessor}
						b.mountInfo(m, a.MountAccessor)
						al = append(al, m)
					}
					ent["aliases"] = al
				}
				info[e.ID] = ent
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return listResponse(keys, info)
	}
}
