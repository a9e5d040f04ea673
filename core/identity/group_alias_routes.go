package identity

import (
	"context"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func groupAliasFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"id":             {Type: framework.TypeString},
		"name":           {Type: framework.TypeString},
		"mount_accessor": {Type: framework.TypeString},
		"canonical_id":   {Type: framework.TypeString},
	}
}

func (b *Backend) groupAliasRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `group-alias`, Fields: groupAliasFields(), Operations: ops{core.OpUpdate: b.groupAliasWrite},
			Help: "Map an external group name of an auth mount to an external group."},
		{Pattern: `group-alias/id/?`, Operations: ops{core.OpList: b.groupAliasList}, Help: "List group alias ids."},
		{Pattern: `group-alias/id/(?P<id>[^/]+)`, Fields: groupAliasFields(),
			Operations: ops{core.OpRead: b.groupAliasRead, core.OpUpdate: b.groupAliasWrite, core.OpDelete: b.groupAliasDelete},
			Help:       "Read, update or delete a group alias."},
	}
}

func (b *Backend) groupAliasData(a *GroupAlias) map[string]any {
	m := map[string]any{
		"id": a.ID, "canonical_id": a.CanonicalID, "mount_accessor": a.MountAccessor, "name": a.Name,
		"metadata": kv(a.Metadata), "merged_from_canonical_ids": []string{}, "namespace_id": "root",
		"creation_time": ts(a.CreationTime), "last_update_time": ts(a.LastUpdateTime),
	}
	b.mountInfo(m, a.MountAccessor)
	return m
}

// groupAliasWrite creates a group alias (name, mount_accessor and the
// external group's id as canonical_id), or updates the one with id. A group
// has at most one alias, and (mount_accessor, name) maps to one group.
func (b *Backend) groupAliasWrite(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	id, name, acc, canon := d.String("id"), d.String("name"), d.String("mount_accessor"), d.String("canonical_id")
	var resp *core.Response
	err := b.s.update(ctx, func(ix *index, c *change) error {
		var cur *GroupAlias
		if id != "" {
			gid, ok := ix.groupAliasByID[id]
			if !ok || ix.groupAt(ns, gid) == nil {
				return core.Invalid("invalid group alias ID")
			}
			cur = ix.groups[gid].Alias
		}
		if cur == nil && (name == "" || acc == "") {
			return core.Invalid("missing alias name or mount accessor")
		}
		if acc != "" {
			if err := b.s.mountIn(ns, acc); err != nil {
				return err
			}
		}
		now := b.s.cfg.Now().UTC()
		a := &GroupAlias{ID: uuid.NewString(), CreationTime: now}
		if cur != nil {
			cp := *cur
			a = &cp
		}
		if name != "" {
			a.Name = name
		}
		if acc != "" {
			a.MountAccessor = acc
		}
		if canon != "" {
			a.CanonicalID = canon
		}
		if a.CanonicalID == "" {
			return core.Invalid("missing canonical_id: the id of the external group the alias maps to")
		}
		g := ix.groupAt(ns, a.CanonicalID)
		switch {
		case g == nil:
			return core.Invalid("invalid group ID given in 'canonical_id'")
		case g.Type != GroupExternal:
			return core.Invalid("alias can't be set on an internal group")
		case g.Alias != nil && (cur == nil || g.Alias.ID != cur.ID):
			return core.Invalid("group %q already has an alias", g.Name)
		}
		if other, ok := ix.groupAliasByFactors[factorKey(a.MountAccessor, a.Name)]; ok && (cur == nil || other != cur.CanonicalID) {
			return core.Invalid("combination of mount and group alias name is already in use")
		}
		a.LastUpdateTime = now
		if cur != nil && cur.CanonicalID != a.CanonicalID {
			old := c.group(ix, cur.CanonicalID)
			old.Alias, old.MemberEntityIDs = nil, nil // members came from the alias
		}
		ng := c.group(ix, a.CanonicalID)
		if cur == nil || cur.MountAccessor != a.MountAccessor || fold(cur.Name) != fold(a.Name) {
			ng.MemberEntityIDs = nil // the next logins say who belongs
		}
		ng.Alias = a
		resp = &core.Response{Data: map[string]any{"id": a.ID, "canonical_id": a.CanonicalID}}
		return nil
	})
	return resp, err
}

func (b *Backend) groupAliasRead(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	var data map[string]any
	err := b.s.view(func(ix *index) error {
		if gid, ok := ix.groupAliasByID[d.String("id")]; ok && ix.groupAt(nsID(req.NS()), gid) != nil {
			data = b.groupAliasData(ix.groups[gid].Alias)
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

// groupAliasDelete removes the alias; the external group loses the members
// logins gave it.
func (b *Backend) groupAliasDelete(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	return nil, b.s.update(ctx, func(ix *index, c *change) error {
		gid, ok := ix.groupAliasByID[d.String("id")]
		if !ok || ix.groupAt(nsID(req.NS()), gid) == nil {
			return nil
		}
		g := c.group(ix, gid)
		g.Alias, g.MemberEntityIDs = nil, nil
		return nil
	})
}

func (b *Backend) groupAliasList(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	var keys []string
	info := map[string]any{}
	err := b.s.view(func(ix *index) error {
		for id, gid := range ix.groupAliasByID {
			if ix.groupAt(ns, gid) == nil {
				continue
			}
			a := ix.groups[gid].Alias
			keys = append(keys, id)
			m := map[string]any{"canonical_id": a.CanonicalID, "mount_accessor": a.MountAccessor, "name": a.Name}
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
