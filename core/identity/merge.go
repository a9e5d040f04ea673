package identity

import (
	"context"
	"fmt"
	"slices"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// entityMerge merges from_entity_ids into to_entity_id, as Vault's
// identity/entity/merge: the aliases move to the target (remembering where
// they came from), the merged ids are kept in merged_entity_ids (tokens
// and audit records carrying them resolve to the target), the target takes
// the merged entities' group memberships, and the merged entities are
// deleted. Policies and metadata are not merged. Two aliases on the same
// mount conflict: one of them must be named in
// conflicting_alias_ids_to_keep (the other is deleted), else 400.
func (b *Backend) entityMerge(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	ns := nsID(req.NS())
	to := d.String("to_entity_id")
	if to == "" {
		return nil, core.Invalid("missing entity id to merge to")
	}
	from := dedupe(d.Strings("from_entity_ids"))
	if len(from) == 0 {
		return nil, core.Invalid("missing entity ids to merge from")
	}
	keep := d.Strings("conflicting_alias_ids_to_keep")
	if len(from) > 1 && len(keep) > 0 {
		return nil, core.Invalid("alias conflicts cannot be resolved with multiple from entity ids - merge one entity at a time")
	}
	return nil, b.s.update(ctx, func(ix *index, c *change) error {
		if ix.entityAt(ns, to) == nil {
			return core.Invalid("entity id to merge to is invalid")
		}
		target := c.entity(ix, to)
		now := b.s.cfg.Now().UTC()
		for _, fid := range from {
			if fid == to {
				return core.Invalid("to_entity_id should not be present in from_entity_ids")
			}
			src := ix.entityAt(ns, fid)
			if src == nil {
				return core.Invalid("entity id to merge from is invalid")
			}
			for _, fa := range src.Aliases {
				fa = fa.clone()
				var clash *Alias
				for _, ta := range target.Aliases {
					if ta.MountAccessor == fa.MountAccessor {
						clash = ta
					}
				}
				if clash != nil {
					switch {
					case slices.Contains(keep, clash.ID):
						continue // the source's alias is dropped
					case slices.Contains(keep, fa.ID):
						target.Aliases = slices.DeleteFunc(target.Aliases, func(a *Alias) bool { return a.ID == clash.ID })
					default:
						return core.Invalid("%s", fmt.Sprintf("toEntity and fromEntity have aliases on the same mount (accessor %s): alias %s of %s and alias %s of %s; name the one to keep in conflicting_alias_ids_to_keep",
							fa.MountAccessor, clash.ID, to, fa.ID, fid))
					}
				}
				fa.CanonicalID = to
				fa.MergedFromCanonicalIDs = append(fa.MergedFromCanonicalIDs, fid)
				fa.LastUpdateTime = now
				target.Aliases = append(target.Aliases, fa)
			}
			target.MergedEntityIDs = append(append(target.MergedEntityIDs, src.MergedEntityIDs...), fid)
			for _, gid := range ix.groupsByEntity[fid] {
				g := c.group(ix, gid)
				g.MemberEntityIDs = slices.DeleteFunc(g.MemberEntityIDs, func(m string) bool { return m == fid })
				if !slices.Contains(g.MemberEntityIDs, to) {
					g.MemberEntityIDs = append(g.MemberEntityIDs, to)
				}
			}
			c.delEntity = append(c.delEntity, fid)
		}
		target.MergedEntityIDs = dedupe(target.MergedEntityIDs)
		return nil
	})
}
