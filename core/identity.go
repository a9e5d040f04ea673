package core

// EntitySummary is an identity-store entity as an access review reads it:
// who the person is, whether they may log in, and the policies their
// entity and groups give every token they hold.
type EntitySummary struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Disabled bool   `json:"disabled,omitempty"`
	// Policies are the entity's own policies and its groups' (direct and
	// inherited), sorted.
	Policies []string `json:"policies,omitempty"`
	// Groups are the names of its groups (direct and inherited), sorted.
	Groups []string `json:"groups,omitempty"`
	// Aliases are "<auth mount path><alias name>", e.g. "auth/userpass/alice".
	Aliases []string `json:"aliases,omitempty"`
	// MergedEntityIDs are entities merged into this one.
	MergedEntityIDs []string `json:"merged_entity_ids,omitempty"`
	// NamespaceID is the namespace the entity belongs to ("" for the
	// root namespace).
	NamespaceID string `json:"namespace_id,omitempty"`
}
