package identity

import (
	"slices"
	"sort"
)

// index is the in-memory view of the identity store: every entity and
// group with the lookups requests and logins need. It is guarded by
// Store.mu; the values it holds are never modified in place.
type index struct {
	entities       map[string]*Entity
	entityByName   map[string]string // folded name -> id
	aliases        map[string]*Alias // by id
	aliasByFactors map[string]string // accessor, folded name -> alias id
	mergedInto     map[string]string // merged entity id -> entity id

	groups              map[string]*Group
	groupByName         map[string]string   // folded name -> id
	groupAliasByFactors map[string]string   // accessor, folded name -> group id
	groupAliasByID      map[string]string   // group alias id -> group id
	groupsByEntity      map[string][]string // entity id -> groups listing it
	parents             map[string][]string // group id -> groups listing it in member_group_ids
}

func newIndex() *index {
	return &index{
		entities: map[string]*Entity{}, entityByName: map[string]string{}, aliases: map[string]*Alias{},
		aliasByFactors: map[string]string{}, mergedInto: map[string]string{},
		groups: map[string]*Group{}, groupByName: map[string]string{}, groupAliasByFactors: map[string]string{},
		groupAliasByID: map[string]string{}, groupsByEntity: map[string][]string{}, parents: map[string][]string{},
	}
}

// putEntity replaces (or adds) an entity and its aliases.
func (ix *index) putEntity(e *Entity) {
	ix.deleteEntity(e.ID)
	ix.entities[e.ID] = e
	ix.entityByName[nameKey(e.NamespaceID, e.Name)] = e.ID
	for _, a := range e.Aliases {
		ix.aliases[a.ID] = a
		ix.aliasByFactors[factorKey(a.MountAccessor, a.Name)] = a.ID
	}
	for _, m := range e.MergedEntityIDs {
		ix.mergedInto[m] = e.ID
	}
}

// deleteEntity removes an entity and its aliases (group memberships are
// the groups' business).
func (ix *index) deleteEntity(id string) {
	old := ix.entities[id]
	if old == nil {
		return
	}
	delete(ix.entities, id)
	if k := nameKey(old.NamespaceID, old.Name); ix.entityByName[k] == id {
		delete(ix.entityByName, k)
	}
	for _, a := range old.Aliases {
		if cur := ix.aliases[a.ID]; cur != nil && cur.CanonicalID == id {
			delete(ix.aliases, a.ID)
		}
		k := factorKey(a.MountAccessor, a.Name)
		if ix.aliasByFactors[k] == a.ID && ix.aliases[a.ID] == nil {
			delete(ix.aliasByFactors, k)
		}
	}
	for _, m := range old.MergedEntityIDs {
		if ix.mergedInto[m] == id {
			delete(ix.mergedInto, m)
		}
	}
}

// putGroup replaces (or adds) a group.
func (ix *index) putGroup(g *Group) {
	ix.deleteGroup(g.ID)
	ix.groups[g.ID] = g
	ix.groupByName[nameKey(g.NamespaceID, g.Name)] = g.ID
	if a := g.Alias; a != nil {
		ix.groupAliasByFactors[factorKey(a.MountAccessor, a.Name)] = g.ID
		ix.groupAliasByID[a.ID] = g.ID
	}
	for _, e := range g.MemberEntityIDs {
		ix.groupsByEntity[e] = appendSorted(ix.groupsByEntity[e], g.ID)
	}
	for _, c := range g.MemberGroupIDs {
		ix.parents[c] = appendSorted(ix.parents[c], g.ID)
	}
}

func (ix *index) deleteGroup(id string) {
	old := ix.groups[id]
	if old == nil {
		return
	}
	delete(ix.groups, id)
	if k := nameKey(old.NamespaceID, old.Name); ix.groupByName[k] == id {
		delete(ix.groupByName, k)
	}
	if a := old.Alias; a != nil {
		if k := factorKey(a.MountAccessor, a.Name); ix.groupAliasByFactors[k] == id {
			delete(ix.groupAliasByFactors, k)
		}
		if ix.groupAliasByID[a.ID] == id {
			delete(ix.groupAliasByID, a.ID)
		}
	}
	for _, e := range old.MemberEntityIDs {
		ix.groupsByEntity[e] = remove(ix.groupsByEntity[e], id)
		if len(ix.groupsByEntity[e]) == 0 {
			delete(ix.groupsByEntity, e)
		}
	}
	for _, c := range old.MemberGroupIDs {
		ix.parents[c] = remove(ix.parents[c], id)
		if len(ix.parents[c]) == 0 {
			delete(ix.parents, c)
		}
	}
}

// entity returns the entity with id, following merges, or nil.
func (ix *index) entity(id string) *Entity {
	if e := ix.entities[id]; e != nil {
		return e
	}
	if to, ok := ix.mergedInto[id]; ok {
		return ix.entities[to]
	}
	return nil
}

// entityIn returns the entity with id in namespace ns (following merges),
// or nil: an entity of another namespace is not found.
func (ix *index) entityIn(ns, id string) *Entity {
	if e := ix.entity(id); e != nil && e.NamespaceID == ns {
		return e
	}
	return nil
}

// entityAt returns the entity with exactly id in namespace ns, or nil.
func (ix *index) entityAt(ns, id string) *Entity {
	if e := ix.entities[id]; e != nil && e.NamespaceID == ns {
		return e
	}
	return nil
}

func (ix *index) entityByNameOrNil(ns, name string) *Entity {
	if id, ok := ix.entityByName[nameKey(ns, name)]; ok {
		return ix.entities[id]
	}
	return nil
}

// groupAt returns the group with id in namespace ns, or nil.
func (ix *index) groupAt(ns, id string) *Group {
	if g := ix.groups[id]; g != nil && g.NamespaceID == ns {
		return g
	}
	return nil
}

func (ix *index) groupByNameOrNil(ns, name string) *Group {
	if id, ok := ix.groupByName[nameKey(ns, name)]; ok {
		return ix.groups[id]
	}
	return nil
}

// aliasAt returns the entity alias with id whose entity is in namespace
// ns, or nil.
func (ix *index) aliasAt(ns, id string) *Alias {
	a := ix.aliases[id]
	if a == nil || ix.entityAt(ns, a.CanonicalID) == nil {
		return nil
	}
	return a
}

// aliasByFactorsOrNil returns the entity alias of (accessor, name).
func (ix *index) aliasByFactorsOrNil(accessor, name string) *Alias {
	if id, ok := ix.aliasByFactors[factorKey(accessor, name)]; ok {
		return ix.aliases[id]
	}
	return nil
}

// groupsOf returns an entity's direct groups and the groups it inherits
// through parent groups (each once, direct ones not repeated), sorted by id.
func (ix *index) groupsOf(entityID string) (direct, inherited []string) {
	direct = slices.Clone(ix.groupsByEntity[entityID])
	seen := map[string]bool{}
	for _, g := range direct {
		seen[g] = true
	}
	queue := slices.Clone(direct)
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		for _, p := range ix.parents[g] {
			if !seen[p] {
				seen[p] = true
				inherited = append(inherited, p)
				queue = append(queue, p)
			}
		}
	}
	sort.Strings(inherited)
	return direct, inherited
}

// descends reports whether group target is reachable from group from
// through member_group_ids (from itself included).
func (ix *index) descends(from, target string, members func(id string) []string) bool {
	seen := map[string]bool{}
	queue := []string{from}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		if g == target {
			return true
		}
		if seen[g] {
			continue
		}
		seen[g] = true
		queue = append(queue, members(g)...)
	}
	return false
}

func appendSorted(list []string, id string) []string {
	i, found := slices.BinarySearch(list, id)
	if found {
		return list
	}
	return slices.Insert(slices.Clone(list), i, id)
}

func remove(list []string, id string) []string {
	i, found := slices.BinarySearch(list, id)
	if !found {
		return list
	}
	return slices.Delete(slices.Clone(list), i, i+1)
}
