package identity

import (
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
)

// Group types, as in Vault.
const (
	GroupInternal = "internal"
	GroupExternal = "external"
)

// Entity is a person or workload: the owner of every token its aliases'
// logins issue. Stored as JSON at sys/identity/entity/<id>, aliases inside.
// Values held by the Store's index are never modified: writers copy them
// (see clone), change the copy, persist it and swap it in.
type Entity struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Policies []string          `json:"policies,omitempty"`
	Disabled bool              `json:"disabled,omitempty"`
	Aliases  []*Alias          `json:"aliases,omitempty"`
	// MergedEntityIDs are the entities merged into this one: tokens and
	// audit records that still carry those ids belong to this entity.
	MergedEntityIDs []string  `json:"merged_entity_ids,omitempty"`
	CreationTime    time.Time `json:"creation_time"`
	LastUpdateTime  time.Time `json:"last_update_time"`
	// NamespaceID is the namespace the entity belongs to ("" for the root
	// namespace). Its name is unique within that namespace, its aliases
	// are on that namespace's auth mounts, and its groups are that
	// namespace's groups.
	NamespaceID string `json:"namespace_id,omitempty"`
}

// Alias ties an entity to the name one auth mount vouches for: the user
// name for userpass, the role id for AppRole, the user claim for OIDC.
type Alias struct {
	ID            string `json:"id"`
	CanonicalID   string `json:"canonical_id"`
	MountAccessor string `json:"mount_accessor"`
	Name          string `json:"name"`
	// Metadata comes from the auth method at login; CustomMetadata is set
	// by operators through the API.
	Metadata               map[string]string `json:"metadata,omitempty"`
	CustomMetadata         map[string]string `json:"custom_metadata,omitempty"`
	MergedFromCanonicalIDs []string          `json:"merged_from_canonical_ids,omitempty"`
	CreationTime           time.Time         `json:"creation_time"`
	LastUpdateTime         time.Time         `json:"last_update_time"`
}

// Group is a set of entities (and of other groups) sharing policies.
// Internal groups list their members; external groups get theirs from
// logins, through their group alias (the group name the auth method
// asserts, e.g. an OIDC groups claim or an LDAP group).
type Group struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Type            string            `json:"type"`
	Policies        []string          `json:"policies,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	MemberEntityIDs []string          `json:"member_entity_ids,omitempty"`
	// MemberGroupIDs are subgroups: their members inherit this group's
	// policies. Stored on the parent; parent_group_ids are derived.
	MemberGroupIDs []string    `json:"member_group_ids,omitempty"`
	Alias          *GroupAlias `json:"alias,omitempty"`
	CreationTime   time.Time   `json:"creation_time"`
	LastUpdateTime time.Time   `json:"last_update_time"`
	ModifyIndex    uint64      `json:"modify_index"`
	// NamespaceID is the namespace the group belongs to ("" for the root
	// namespace); its members are entities and groups of that namespace.
	NamespaceID string `json:"namespace_id,omitempty"`
}

// GroupAlias maps an external group name of one auth mount to an external
// group.
type GroupAlias struct {
	ID             string            `json:"id"`
	CanonicalID    string            `json:"canonical_id"`
	MountAccessor  string            `json:"mount_accessor"`
	Name           string            `json:"name"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	CreationTime   time.Time         `json:"creation_time"`
	LastUpdateTime time.Time         `json:"last_update_time"`
}

func (e *Entity) clone() *Entity {
	c := *e
	c.Metadata = cloneMap(e.Metadata)
	c.Policies = slices.Clone(e.Policies)
	c.MergedEntityIDs = slices.Clone(e.MergedEntityIDs)
	c.Aliases = make([]*Alias, len(e.Aliases))
	for i, a := range e.Aliases {
		c.Aliases[i] = a.clone()
	}
	return &c
}

func (a *Alias) clone() *Alias {
	c := *a
	c.Metadata = cloneMap(a.Metadata)
	c.CustomMetadata = cloneMap(a.CustomMetadata)
	c.MergedFromCanonicalIDs = slices.Clone(a.MergedFromCanonicalIDs)
	return &c
}

func (g *Group) clone() *Group {
	c := *g
	c.Policies = slices.Clone(g.Policies)
	c.Metadata = cloneMap(g.Metadata)
	c.MemberEntityIDs = slices.Clone(g.MemberEntityIDs)
	c.MemberGroupIDs = slices.Clone(g.MemberGroupIDs)
	if g.Alias != nil {
		a := *g.Alias
		a.Metadata = cloneMap(g.Alias.Metadata)
		c.Alias = &a
	}
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// alias returns the entity's alias with id, or nil.
func (e *Entity) alias(id string) *Alias {
	for _, a := range e.Aliases {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// autoName is the name an entity or group gets when none is given, as in
// Vault: "entity_" or "group_" and the first block of the id.
func autoName(prefix, id string) string {
	first, _, _ := strings.Cut(id, "-")
	return prefix + first
}

// AutoNamed reports whether the entity still has the name it was created
// with when none was given (see autoName).
func (e *Entity) AutoNamed() bool { return e.Name == autoName("entity_", e.ID) }

// normPolicies lower-cases, trims and de-duplicates policy names, keeping
// their order.
func normPolicies(in []string) []string {
	var out []string
	for _, p := range in {
		p = strings.ToLower(strings.TrimSpace(p))
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// dedupe removes empty and repeated strings, keeping the order.
func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func fold(s string) string { return strings.ToLower(s) }

// nameKey is the index key of an entity or group name in a namespace
// (names are unique per namespace and compare case-insensitively).
func nameKey(ns, name string) string {
	if ns == "" {
		return fold(name)
	}
	return ns + "\x00" + fold(name)
}

// nsID is the identity store's spelling of a namespace: "" for the root.
func nsID(n core.Namespace) string {
	if n.IsRoot() {
		return ""
	}
	return n.ID
}

// nsOf returns the namespace id of an object as the API shows it.
func nsOf(id string) string {
	if id == "" {
		return core.RootNamespaceID
	}
	return id
}

func factorKey(accessor, name string) string { return accessor + "\x00" + fold(name) }
