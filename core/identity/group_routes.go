package identity

import (
	"context"
	"slices"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func groupFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"id":                {Type: framework.TypeString},
		"name":              {Type: framework.TypeString},
		"type":              {Type: framework.TypeString},
		"metadata":          {Type: framework.TypeKVPairs},
		"policies":          {Type: framework.TypeCommaStringSlice},
		"member_group_ids":  {Type: framework.TypeCommaStringSlice},
		"member_entity_ids": {Type: framework.TypeCommaStringSlice},
	}
}

func (b *Backend) groupRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `group`, Fields: groupFields(), Operations: ops{core.OpUpdate: b.groupWrite("")},
			Help: "Create a group, or update one by id or name."},
		{Pattern: `group/id/?`, Operations: ops{core.OpList: b.groupList(true)}, Help: "List group ids."},
		{Pattern: `group/id/(?P<id>[^/]+)`, Fields: groupFields(),
			Operations: ops{core.OpRead: b.groupRead("id"), core.OpUpdate: b.groupWrite("id"), core.OpDelete: b.groupDelete("id")},
			Help:       "Read, update or delete a group by id."},
		{Pattern: `group/name/?`, Operations: ops{core.OpList: b.groupList(false)}, Help: "List group names."},
		{Pattern: `group/name/(?P<name>.+)`, Fields: groupFields(),
			Operations: ops{core.OpRead: b.groupRead("name"), core.OpUpdate: b.groupWrite("name"), core.OpDelete: b.groupDelete("name")},
			Help:       "Read, create or update, or delete a group by name."},
	}
}

// groupWrite creates or updates a group, as Vault's identity/group: an id
// updates that group, a name updates the group of that name or creates it.
// Internal groups list member entities and member groups; external groups
// get their members from logins (through their group alias) and cannot be
// given any. A member group that would make the membership cyclic is
// refused.
func (b *Backend) groupWrite(by string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		ns := nsID(req.NS())
		id, name := d.String("id"), d.String("name")
		pol := normPolicies(d.Strings("policies"))
		if slices.Contains(pol, "root") {
			return nil, core.Invalid("policies cannot contain root")
		}
		var resp *core.Response
		err := b.s.update(ctx, func(ix *index, c *change) error {
			var g *Group
			switch {
			case id != "":
				if g = ix.groupAt(ns, id); g == nil {
					return core.Invalid("invalid group ID")
				}
			case by == "id":
				return core.Invalid("empty group ID")
			case name != "":
				g = ix.groupByNameOrNil(ns, name)
			}
			now := b.s.cfg.Now().UTC()
			created := g == nil
			if created {
				nid := uuid.NewString()
				g = &Group{ID: nid, Name: name, CreationTime: now, NamespaceID: ns}
				if name == "" {
					g.Name = autoName("group_", nid)
				}
			} else {
				g = g.clone()
			}
			if name != "" && name != g.Name {
				if other := ix.groupByNameOrNil(ns, name); other != nil && other.ID != g.ID {
					return core.Invalid("group name is already in use")
				}
				g.Name = name
			}
			if t := d.String("type"); d.Has("type") && t != "" {
				if !created && t != g.Type {
					return core.Invalid("group type cannot be changed")
				}
				g.Type = t
			}
			if g.Type == "" {
				g.Type = GroupInternal
			}
			if g.Type != GroupInternal && g.Type != GroupExternal {
				return core.Invalid("invalid group type %q", g.Type)
			}
			if d.Has("policies") {
				g.Policies = pol
			}
			if d.Has("metadata") {
				g.Metadata = d.KV("metadata")
			}
			if d.Has("member_entity_ids") {
				if g.Type == GroupExternal {
					return core.Invalid("member entities can't be set manually for external groups")
				}
				var members []string
				for _, m := range dedupe(d.Strings("member_entity_ids")) {
					e := ix.entityIn(ns, m)
					if e == nil {
						return core.Invalid("entity %q does not exist", m)
					}
					if !slices.Contains(members, e.ID) {
						members = append(members, e.ID)
					}
				}
				g.MemberEntityIDs = members
			}
			if d.Has("member_group_ids") {
				if g.Type == GroupExternal {
					return core.Invalid("member groups can't be set for external groups")
				}
				members := dedupe(d.Strings("member_group_ids"))
				for _, m := range members {
					if ix.groupAt(ns, m) == nil {
						return core.Invalid("group %q does not exist", m)
					}
					// g contains m: m must not contain g, directly or not.
					if ix.descends(m, g.ID, func(id string) []string { return ix.groups[id].MemberGroupIDs }) {
						return core.Invalid("cyclic relationship detected for member group ID %q", m)
					}
				}
				g.MemberGroupIDs = members
			}
			c.putGroup(g)
			if created {
				resp = &core.Response{Data: map[string]any{"id": g.ID, "name": g.Name}}
			}
			return nil
		})
		return resp, err
	}
}

func groupByKey(ix *index, ns, by string, d *framework.FieldData) *Group {
	if by == "id" {
		return ix.groupAt(ns, d.String("id"))
	}
	return ix.groupByNameOrNil(ns, d.String("name"))
}

func (b *Backend) groupRead(by string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		var data map[string]any
		err := b.s.view(func(ix *index) error {
			if g := groupByKey(ix, nsID(req.NS()), by, d); g != nil {
				data = b.groupData(ix, g)
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

// groupData is Vault's group read shape.
func (b *Backend) groupData(ix *index, g *Group) map[string]any {
	alias := map[string]any{}
	if g.Alias != nil {
		alias = b.groupAliasData(g.Alias)
	}
	return map[string]any{
		"id": g.ID, "name": g.Name, "type": g.Type, "policies": strs(g.Policies), "metadata": kv(g.Metadata),
		"member_entity_ids": strs(g.MemberEntityIDs), "member_group_ids": strs(g.MemberGroupIDs),
		"parent_group_ids": strs(ix.parents[g.ID]), "alias": alias, "namespace_id": nsOf(g.NamespaceID),
		"creation_time": ts(g.CreationTime), "last_update_time": ts(g.LastUpdateTime), "modify_index": g.ModifyIndex,
	}
}

func (b *Backend) groupDelete(by string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		return nil, b.s.update(ctx, func(ix *index, c *change) error {
			g := groupByKey(ix, nsID(req.NS()), by, d)
			if g == nil {
				return nil
			}
			for _, p := range ix.parents[g.ID] {
				pg := c.group(ix, p)
				pg.MemberGroupIDs = slices.DeleteFunc(pg.MemberGroupIDs, func(m string) bool { return m == g.ID })
			}
			c.delGroup = append(c.delGroup, g.ID)
			return nil
		})
	}
}

func (b *Backend) groupList(byID bool) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
		ns := nsID(req.NS())
		var keys []string
		info := map[string]any{}
		err := b.s.view(func(ix *index) error {
			for _, g := range ix.groups {
				if g.NamespaceID != ns {
					continue
				}
				if byID {
					keys = append(keys, g.ID)
				} else {
					keys = append(keys, g.Name)
				}
				info[g.ID] = map[string]any{"name": g.Name, "num_member_entities": len(g.MemberEntityIDs),
					"num_parent_groups": len(ix.parents[g.ID])}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return listResponse(keys, info)
	}
}
