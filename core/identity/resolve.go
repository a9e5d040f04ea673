package identity

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
)

// ErrEntityDisabled is returned (wrapped, with the entity id) for a login
// or a request whose entity is disabled. It is a permission denial.
var ErrEntityDisabled = &core.Error{Code: core.CodePermissionDenied, Msg: "permission denied: the entity is disabled"}

func disabled(e *Entity) error {
	return &core.Error{Code: core.CodePermissionDenied, Msg: "permission denied: entity " + e.ID + " is disabled", Err: ErrEntityDisabled}
}

// derivedIdentity is what an entity's groups give it, cached until the
// index changes.
type derivedIdentity struct {
	groups, groupIDs []string // sorted by name
	policies         []string // sorted
}

// derive computes an entity's groups and identity policies. The caller
// holds s.mu (read).
func (s *Store) derive(ix *index, e *Entity) *derivedIdentity {
	s.dmu.Lock()
	d := s.derived[e.ID]
	s.dmu.Unlock()
	if d != nil {
		return d
	}
	direct, inherited := ix.groupsOf(e.ID)
	type named struct{ id, name string }
	var gs []named
	pol := map[string]bool{}
	for _, p := range e.Policies {
		pol[p] = true
	}
	for _, id := range append(direct, inherited...) {
		g := ix.groups[id]
		if g == nil {
			continue
		}
		gs = append(gs, named{id, g.Name})
		for _, p := range g.Policies {
			pol[p] = true
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].name < gs[j].name || gs[i].name == gs[j].name && gs[i].id < gs[j].id })
	d = &derivedIdentity{}
	for _, g := range gs {
		d.groups, d.groupIDs = append(d.groups, g.name), append(d.groupIDs, g.id)
	}
	for p := range pol {
		d.policies = append(d.policies, p)
	}
	sort.Strings(d.policies)
	s.dmu.Lock()
	if s.derived != nil {
		s.derived[e.ID] = d
	}
	s.dmu.Unlock()
	return d
}

// identityOf builds the core.Identity of e for a token whose login
// authenticated aliasID. The caller holds s.mu (read). Slices and maps in
// the result are shared with the index: read-only.
func (s *Store) identityOf(ix *index, e *Entity, aliasID string) *core.Identity {
	d := s.derive(ix, e)
	alias := ""
	if a := ix.aliases[aliasID]; a != nil && a.CanonicalID == e.ID {
		if path, _, ok := s.mountPath(a.MountAccessor); ok {
			_, nsPath, _ := s.mountNS(a.MountAccessor)
			alias = nsPath + mountName(strings.TrimPrefix(path, nsPath)) + "/" + a.Name
		}
	}
	return &core.Identity{
		EntityID: e.ID, EntityName: e.Name, Actor: core.ActorName(e.Name, e.AutoNamed(), alias), Alias: alias,
		Metadata: e.Metadata, Groups: d.groups, GroupIDs: d.groupIDs, Policies: d.policies,
	}
}

// mountName is a mount path as people write it: "auth/userpass/" is
// "userpass". In a namespace the alias is named with the namespace's path
// in front ("hospital-a/userpass/carol"), so two tenants' users of the same
// name stay apart in the audit trail.
func mountName(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(path, "auth/"), "/")
}

// Resolve attaches the token's entity to p (Principal.Identity), adds the
// identity policies to p.Policies (root tokens keep only root) and moves
// p.EntityID to the surviving entity when the token's entity was merged
// away. A token without an entity, or whose entity was deleted, is left
// as it is. Errors: ErrEntityDisabled (wrapped) when the entity is
// disabled, core.ErrSealed before Load.
func (s *Store) Resolve(p *core.Principal) error {
	if p == nil || p.EntityID == "" {
		return nil
	}
	return s.view(func(ix *index) error {
		e := ix.entity(p.EntityID)
		if e == nil {
			return nil
		}
		if e.Disabled {
			return disabled(e)
		}
		id := s.identityOf(ix, e, p.AliasID)
		p.EntityID, p.Identity = e.ID, id
		if !p.Root && len(id.Policies) > 0 {
			p.Policies = union(p.Policies, id.Policies)
		}
		return nil
	})
}

// union returns the sorted union of two policy lists.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	for _, p := range b {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// LoginResult is what Login resolved.
type LoginResult struct {
	EntityID, AliasID string
	// Created is true when the login created the entity.
	Created bool
	// Identity is the entity as the login's token will see it.
	Identity *core.Identity
}

// Login maps a login's alias on the auth mount with the accessor to its
// entity, creating the entity and alias on first use as Vault does; keeps
// the alias metadata the auth method gave; and makes the entity a member
// of exactly those external groups of this mount whose group alias name
// is among groupAliases. It writes only when something changed, so a
// repeated login costs no storage write. Errors: core.Invalid for an
// alias without a name, ErrEntityDisabled (wrapped) for a disabled
// entity, storage errors.
func (s *Store) Login(ctx context.Context, accessor string, a *core.Alias, groupAliases []*core.Alias) (*LoginResult, error) {
	if a == nil || strings.TrimSpace(a.Name) == "" {
		return nil, core.Invalid("login alias has no name")
	}
	if accessor == "" {
		return nil, core.Invalid("login alias has no mount accessor")
	}
	ns, _, _ := s.mountNS(accessor)
	res := &LoginResult{}
	err := s.update(ctx, func(ix *index, c *change) error {
		now := s.cfg.Now().UTC()
		al := ix.aliasByFactorsOrNil(accessor, a.Name)
		var e *Entity
		switch {
		case al == nil:
			id := uuid.NewString()
			e = &Entity{ID: id, Name: autoName("entity_", id), CreationTime: now, NamespaceID: ns}
			al = &Alias{ID: uuid.NewString(), CanonicalID: id, MountAccessor: accessor, Name: a.Name,
				Metadata: cloneMap(a.Metadata), CreationTime: now, LastUpdateTime: now}
			e.Aliases = []*Alias{al}
			c.putEntity(e)
			res.Created = true
		default:
			e = ix.entities[al.CanonicalID]
			if e == nil {
				return core.Errorf(core.CodeInternal, "identity: alias %s belongs to a missing entity %s", al.ID, al.CanonicalID)
			}
			if !sameMap(al.Metadata, a.Metadata) {
				e = e.clone()
				ea := e.alias(al.ID)
				ea.Metadata, ea.LastUpdateTime = cloneMap(a.Metadata), now
				c.putEntity(e)
			}
		}
		if e.Disabled {
			return disabled(e)
		}
		want := map[string]bool{}
		for _, ga := range groupAliases {
			if ga == nil {
				continue
			}
			if gid, ok := ix.groupAliasByFactors[factorKey(accessor, ga.Name)]; ok {
				want[gid] = true
			}
		}
		for gid, g := range ix.groups {
			if g.Type != GroupExternal || g.Alias == nil || g.Alias.MountAccessor != accessor {
				continue
			}
			member := slices.Contains(g.MemberEntityIDs, e.ID)
			switch {
			case want[gid] && !member:
				ng := g.clone()
				ng.MemberEntityIDs = append(ng.MemberEntityIDs, e.ID)
				c.putGroup(ng)
			case !want[gid] && member:
				ng := g.clone()
				ng.MemberEntityIDs = slices.DeleteFunc(ng.MemberEntityIDs, func(id string) bool { return id == e.ID })
				c.putGroup(ng)
			}
		}
		res.EntityID, res.AliasID = e.ID, al.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.view(func(ix *index) error {
		e := ix.entity(res.EntityID)
		if e == nil {
			return errors.New("identity: the login's entity disappeared")
		}
		res.Identity = s.identityOf(ix, e, res.AliasID)
		return nil
	})
	return res, err
}

func sameMap(a, b map[string]string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return maps.Equal(a, b)
}

// EntityIDs returns the ids audit records of the entity named by actor
// may carry: when actor is an entity's id (current or merged into it) or
// its name (case-insensitive), the entity's id followed by the ids merged
// into it; else nil. A name is looked up in every namespace (each
// namespace's entity of that name counts). Audit queries use it so that
// filtering by a person's entity finds them through every auth method and
// every merge. Nil while sealed.
func (s *Store) EntityIDs(actor string) []string {
	var out []string
	_ = s.view(func(ix *index) error {
		if e := ix.entity(actor); e != nil {
			out = append([]string{e.ID}, e.MergedEntityIDs...)
			return nil
		}
		var named []*Entity
		for _, e := range ix.entities {
			if fold(e.Name) == fold(actor) {
				named = append(named, e)
			}
		}
		sort.Slice(named, func(i, j int) bool { return named[i].NamespaceID < named[j].NamespaceID })
		for _, e := range named {
			out = append(append(out, e.ID), e.MergedEntityIDs...)
		}
		return nil
	})
	return out
}

// Summaries lists every entity with its effective identity policies and
// groups, sorted by name then id (an access review's view of the store).
// It fails with core.ErrSealed before Load.
func (s *Store) Summaries() ([]core.EntitySummary, error) {
	var out []core.EntitySummary
	err := s.view(func(ix *index) error {
		for _, e := range ix.entities {
			d := s.derive(ix, e)
			sum := core.EntitySummary{ID: e.ID, Name: e.Name, Disabled: e.Disabled, Policies: slices.Clone(d.policies),
				Groups: slices.Clone(d.groups), MergedEntityIDs: slices.Clone(e.MergedEntityIDs), NamespaceID: e.NamespaceID}
			for _, a := range e.Aliases {
				p, _, ok := s.mountPath(a.MountAccessor)
				if !ok {
					p = a.MountAccessor + "/"
				}
				sum.Aliases = append(sum.Aliases, p+a.Name)
			}
			sort.Strings(sum.Aliases)
			out = append(out, sum)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || out[i].Name == out[j].Name && out[i].ID < out[j].ID
	})
	return out, err
}
