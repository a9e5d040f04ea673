package identity

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func aliasFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"id":              {Type: framework.TypeString},
		"entity_id":       {Type: framework.TypeString}, // deprecated spelling of canonical_id
		"canonical_id":    {Type: framework.TypeString},
		"mount_accessor":  {Type: framework.TypeString},
		"name":            {Type: framework.TypeString},
		"custom_metadata": {Type: framework.TypeKVPairs},
	}
}

func (b *Backend) aliasRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `entity-alias`, Fields: aliasFields(), Operations: ops{core.OpUpdate: b.aliasWrite},
			Help: "Create an entity alias, or update one by id or by (mount_accessor, name)."},
		{Pattern: `entity-alias/id/?`, Operations: ops{core.OpList: b.aliasList}, Help: "List entity alias ids."},
		{Pattern: `entity-alias/id/(?P<id>[^/]+)`, Fields: aliasFields(),
			Operations: ops{core.OpRead: b.aliasRead, core.OpUpdate: b.aliasWrite, core.OpDelete: b.aliasDelete},
			Help:       "Read, update or delete an entity alias."},
	}
}

// aliasData is Vault's entity alias read shape.
func (b *Backend) aliasData(a *Alias) map[string]any {
	m := map[string]any{
		"id": a.ID, "canonical_id": a.CanonicalID, "mount_accessor": a.MountAccessor, "name": a.Name,
		"metadata": kv(a.Metadata), "custom_metadata": kv(a.CustomMetadata),
		"merged_from_canonical_ids": strs(a.MergedFromCanonicalIDs), "namespace_id": nsOf(b.aliasNS(a)), "local": false,
		"creation_time": ts(a.CreationTime), "last_update_time": ts(a.LastUpdateTime),
	}
	b.mountInfo(m, a.MountAccessor)
	return m
}

// aliasWrite creates or updates an entity alias, as Vault's
// identity/entity-alias: with an id it updates that alias (its name, mount
// or entity: canonical_id moves it); otherwise mount_accessor and name are
// required, and an existing alias with them is updated, else one is
// created — on canonical_id's entity, or on a new entity.
func (b *Backend) aliasWrite(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	id, name, acc := d.String("id"), d.String("name"), d.String("mount_accessor")
	canon := d.String("canonical_id")
	if canon == "" {
		canon = d.String("entity_id")
	}
	var resp *core.Response
	err := b.s.update(ctx, func(ix *index, c *change) error {
		var cur *Alias
		if id != "" {
			if cur = ix.aliasAt(ns, id); cur == nil {
				return core.Invalid("invalid alias ID provided")
			}
		} else {
			if acc == "" || name == "" {
				return core.Invalid("'id' or 'mount_accessor' and 'name' must be provided")
			}
			cur = ix.aliasByFactorsOrNil(acc, name)
		}
		if acc != "" {
			if err := b.s.mountIn(ns, acc); err != nil {
				return err
			}
		}
		now := b.s.cfg.Now().UTC()
		if cur == nil {
			var e *Entity
			if canon != "" {
				if ix.entityAt(ns, canon) == nil {
					return core.Invalid("invalid canonical ID")
				}
				e = c.entity(ix, canon)
			} else {
				nid := uuid.NewString()
				e = &Entity{ID: nid, Name: autoName("entity_", nid), CreationTime: now, NamespaceID: ns}
				c.putEntity(e)
			}
			for _, a := range e.Aliases {
				if a.MountAccessor == acc {
					return core.Invalid("Alias already exists for requested entity and mount accessor")
				}
			}
			a := &Alias{ID: uuid.NewString(), CanonicalID: e.ID, MountAccessor: acc, Name: name,
				CustomMetadata: d.KV("custom_metadata"), CreationTime: now, LastUpdateTime: now}
			e.Aliases = append(e.Aliases, a)
			resp = &core.Response{Data: map[string]any{"id": a.ID, "canonical_id": e.ID}}
			return nil
		}
		// Update an existing alias.
		newName, newAcc, newCanon := cur.Name, cur.MountAccessor, cur.CanonicalID
		if name != "" {
			newName = name
		}
		if acc != "" {
			newAcc = acc
		}
		if canon != "" {
			newCanon = canon
		}
		custom := cur.CustomMetadata
		if d.Has("custom_metadata") {
			custom = d.KV("custom_metadata")
		}
		if newName == cur.Name && newAcc == cur.MountAccessor && newCanon == cur.CanonicalID && sameMap(custom, cur.CustomMetadata) {
			return nil // nothing to do
		}
		if other := ix.aliasByFactorsOrNil(newAcc, newName); other != nil && other.ID != cur.ID {
			return core.Invalid("alias with combination of mount accessor and name already exists")
		}
		if ix.entityAt(ns, newCanon) == nil {
			return core.Invalid("given 'canonical_id' is not associated with an entity")
		}
		dst := c.entity(ix, newCanon)
		for _, a := range dst.Aliases {
			if a.ID != cur.ID && a.MountAccessor == newAcc {
				return core.Invalid("Alias cannot be updated as the given entity already has an alias for this mount")
			}
		}
		upd := cur.clone()
		upd.Name, upd.MountAccessor, upd.CanonicalID, upd.CustomMetadata, upd.LastUpdateTime = newName, newAcc, newCanon, cloneMap(custom), now
		if newCanon != cur.CanonicalID {
			src := c.entity(ix, cur.CanonicalID)
			src.Aliases = slices.DeleteFunc(src.Aliases, func(a *Alias) bool { return a.ID == cur.ID })
			dst.Aliases = append(dst.Aliases, upd)
		} else {
			for i, a := range dst.Aliases {
				if a.ID == cur.ID {
					dst.Aliases[i] = upd
				}
			}
		}
		resp = &core.Response{Data: map[string]any{"id": upd.ID, "canonical_id": upd.CanonicalID}}
		return nil
	})
	return resp, err
}

func (b *Backend) aliasRead(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	var data map[string]any
	err := b.s.view(func(ix *index) error {
		if a := ix.aliasAt(nsID(req.NS()), d.String("id")); a != nil {
			data = b.aliasData(a)
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

func (b *Backend) aliasDelete(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	id := d.String("id")
	return nil, b.s.update(ctx, func(ix *index, c *change) error {
		a := ix.aliasAt(nsID(req.NS()), id)
		if a == nil {
			return nil
		}
		e := c.entity(ix, a.CanonicalID)
		e.Aliases = slices.DeleteFunc(e.Aliases, func(x *Alias) bool { return x.ID == id })
		return nil
	})
}

func (b *Backend) aliasList(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	var keys []string
	info := map[string]any{}
	err := b.s.view(func(ix *index) error {
		for id, a := range ix.aliases {
			if ix.entityAt(ns, a.CanonicalID) == nil {
				continue
			}
			keys = append(keys, id)
			m := map[string]any{"canonical_id": a.CanonicalID, "custom_metadata": kv(a.CustomMetadata), "local": false,
				"mount_accessor": a.MountAccessor, "name": a.Name}
			b.mountInfo(m, a.MountAccessor)
			info[id] = m
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return listResponse(keys, info)
}
