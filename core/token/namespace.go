package token

import (
	"context"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// Namespaces. A token belongs to the namespace it was created in (a
// login's: the auth mount's namespace). Its policies are that namespace's;
// it authenticates in that namespace and in its descendants only; the
// token store's own routes (lookup, renew, revoke by token or accessor,
// the accessor list) act on the tokens of the namespace they are called
// in. Tokens of a namespace have ids and accessors ending in ".<id>", as
// in Vault.

// SetNamespaces installs the lookup of namespaces by id (wiring happens
// after construction). Without it only the root namespace exists.
func (s *Store) SetNamespaces(f func(id string) (core.Namespace, bool)) { s.namespaces = f }

// NamespaceOf returns the namespace of a token; false when it no longer
// exists.
func (s *Store) NamespaceOf(e *Entry) (core.Namespace, bool) {
	if e.NamespaceID == "" || e.NamespaceID == core.RootNamespaceID {
		return core.RootNamespace, true
	}
	if s.namespaces == nil {
		return core.Namespace{}, false
	}
	return s.namespaces(e.NamespaceID)
}

// principalNamespace is the Principal's namespace (nil for the root).
func (s *Store) principalNamespace(e *Entry) *core.Namespace {
	if e.NamespaceID == "" {
		return nil
	}
	ns, ok := s.NamespaceOf(e)
	if !ok {
		ns = core.Namespace{ID: e.NamespaceID}
	}
	return &ns
}

// InNamespace reports whether the token e belongs to namespace ns.
func InNamespace(e *Entry, ns core.Namespace) bool {
	if ns.IsRoot() {
		return e.NamespaceID == "" || e.NamespaceID == core.RootNamespaceID
	}
	return e.NamespaceID == ns.ID
}

// NamespaceSuffix returns the namespace id a token or accessor names by
// its ".<id>" suffix ("" for none): a hint for routing, never trusted
// without the stored entry.
func NamespaceSuffix(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	j := strings.IndexByte(tok, '.')
	if i < 0 || i == j || i == len(tok)-1 {
		return ""
	}
	return tok[i+1:]
}

// RevokeNamespace revokes every token of the namespace with id, with its
// child tokens and their leases (the namespace's deletion). It returns how
// many tokens it revoked.
func (s *Store) RevokeNamespace(ctx context.Context, id string) (int, error) {
	entries, err := s.All(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.NamespaceID != id {
			continue
		}
		// A tree may already be gone with its parent's.
		cur, err := s.get(ctx, e.Hash)
		if err != nil {
			return n, err
		}
		if cur == nil {
			continue
		}
		if err := s.revokeTree(ctx, e.Hash); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func nsName(ns core.Namespace) string {
	if ns.IsRoot() {
		return "root"
	}
	return ns.Path
}
