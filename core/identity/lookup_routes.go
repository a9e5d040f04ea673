package identity

import (
	"context"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func lookupFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"type":                 {Type: framework.TypeString},
		"id":                   {Type: framework.TypeString},
		"name":                 {Type: framework.TypeString},
		"alias_id":             {Type: framework.TypeString},
		"alias_name":           {Type: framework.TypeString},
		"alias_mount_accessor": {Type: framework.TypeString},
	}
}

func (b *Backend) lookupRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `lookup/entity`, Fields: lookupFields(), Operations: ops{core.OpUpdate: b.lookupEntity},
			Help: "Find an entity by id, name, alias id, or alias name and mount accessor."},
		{Pattern: `lookup/group`, Fields: lookupFields(), Operations: ops{core.OpUpdate: b.lookupGroup},
			Help: "Find a group by id, name, alias id, or alias name and mount accessor."},
	}
}

// criterion checks that exactly one lookup criterion is given (alias_name
// and alias_mount_accessor count as one and come together).
func criterion(d *framework.FieldData) (string, error) {
	var given []string
	for _, k := range []string{"id", "name", "alias_id"} {
		if d.String(k) != "" {
			given = append(given, k)
		}
	}
	an, am := d.String("alias_name"), d.String("alias_mount_accessor")
	switch {
	case an != "" && am != "":
		given = append(given, "alias")
	case an != "" || am != "":
		return "", core.Invalid("both 'alias_name' and 'alias_mount_accessor' must be given")
	}
	switch len(given) {
	case 0:
		return "", core.Invalid("none of the lookup criteria were given: id, name, alias_id, or alias_name and alias_mount_accessor")
	case 1:
		return given[0], nil
	}
	return "", core.Invalid("only one lookup criterion may be given, got %v", given)
}

// lookupEntity answers the entity's read shape, or 204 when none matches.
func (b *Backend) lookupEntity(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	crit, err := criterion(d)
	if err != nil {
		return nil, err
	}
	var data map[string]any
	err = b.s.view(func(ix *index) error {
		var e *Entity
		switch crit {
		case "id":
			e = ix.entityIn(ns, d.String("id"))
		case "name":
			e = ix.entityByNameOrNil(ns, d.String("name"))
		case "alias_id":
			if a := ix.aliasAt(ns, d.String("alias_id")); a != nil {
				e = ix.entities[a.CanonicalID]
			}
		case "alias":
			if a := ix.aliasByFactorsOrNil(d.String("alias_mount_accessor"), d.String("alias_name")); a != nil {
				e = ix.entityAt(ns, a.CanonicalID)
			}
		}
		if e != nil {
			data = b.entityData(ix, e)
		}
		return nil
	})
	if err != nil || data == nil {
		return nil, err
	}
	return &core.Response{Data: data}, nil
}

// lookupGroup answers the group's read shape, or 204 when none matches.
func (b *Backend) lookupGroup(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	crit, err := criterion(d)
	if err != nil {
		return nil, err
	}
	var data map[string]any
	err = b.s.view(func(ix *index) error {
		var g *Group
		switch crit {
		case "id":
			g = ix.groupAt(ns, d.String("id"))
		case "name":
			g = ix.groupByNameOrNil(ns, d.String("name"))
		case "alias_id":
			g = ix.groupAt(ns, ix.groupAliasByID[d.String("alias_id")])
		case "alias":
			g = ix.groupAt(ns, ix.groupAliasByFactors[factorKey(d.String("alias_mount_accessor"), d.String("alias_name"))])
		}
		if g != nil {
			data = b.groupData(ix, g)
		}
		return nil
	})
	if err != nil || data == nil {
		return nil, err
	}
	return &core.Response{Data: data}, nil
}
