package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/namespace"
	"github.com/vigilsec/vigil/core/token"
)

// Namespaces: how a request finds its namespace, what a namespace may
// reach of sys/, and what deleting one removes. docs/design.md §5 tells
// the whole story.

// nsSysPaths are the sys/ paths served in a namespace other than the
// root: those about the namespace itself. Everything else under sys/
// (audit devices, seal, raft, configuration, metrics, ...) is the root
// namespace's, and a request for it in a namespace is refused before
// authentication, as Vault and OpenBao refuse it.
var nsSysPaths = []string{
	"mounts", "auth", "remount", "policy", "policies", "capabilities", "capabilities-self", "capabilities-accessor",
	"leases", "renew", "revoke", "revoke-prefix", "revoke-force", "namespaces", "internal/ui/mounts",
	"audit/query", "reports", "compliance/checks", "compliance/controls", "tools", "wrapping", "control-group",
}

// sysAllowedInNamespace reports whether rel (a path relative to a
// namespace other than the root) may be served there.
func sysAllowedInNamespace(rel string) bool {
	rest, ok := strings.CutPrefix(rel, "sys/")
	if !ok {
		return rel != "sys"
	}
	for _, p := range nsSysPaths {
		if rest == p || rest == p+"/" || strings.HasPrefix(rest, p+"/") {
			return true
		}
	}
	return false
}

// anyNamespace are the server's status paths, answered whatever namespace
// the request names (as OpenBao answers them): `vault status` with
// VAULT_NAMESPACE set still works, sealed or not.
var anyNamespace = map[string]bool{"sys/seal-status": true, "sys/leader": true, "sys/ha-status": true}

// ErrRootOnly refuses a root-namespace sys/ path in another namespace.
var ErrRootOnly = core.Invalid("operation unavailable in namespaces: it is served in the root namespace only")

// namespaceOf resolves the namespace req is in and its path relative to
// it: the X-Vault-Namespace header and the path's prefix (Vault's rules),
// then, for the token store's routes that name a token, the token's own
// namespace (as Vault routes auth/token/*-self to the caller's namespace).
// refused is set when the request must not go further: an unknown
// namespace (404), one being deleted, a locked one (503, Vault's message),
// or a root-only sys/ path. Internal requests (lease revocation) are never
// refused for a lock or a deletion in progress: a namespace's leases must
// still be revoked.
func (s *Server) namespaceOf(req *core.Request) (ns core.Namespace, rel string, refused error) {
	if anyNamespace[req.Path] {
		return core.RootNamespace, req.Path, nil
	}
	e, rel, err := s.nss.Resolve(req.Header(core.NamespaceHeader), req.Path)
	if err != nil {
		return core.RootNamespace, req.Path, err
	}
	ns = core.RootNamespace
	if e != nil {
		ns = e.Namespace()
	}
	if !req.Internal {
		if tn, ok := s.tokenNamespace(req, ns, rel); ok {
			ns, e = tn, nil
			if !tn.IsRoot() {
				e, _ = s.nss.ByID(tn.ID)
			}
		}
	}
	if ns.IsRoot() {
		return ns, rel, nil
	}
	if req.Internal {
		return ns, rel, nil
	}
	if e != nil && e.Tainted {
		return ns, rel, core.Errorf(core.CodeNotFound, "namespace %q is being deleted", ns.Path)
	}
	if by, locked := s.nss.LockedBy(ns); locked && !(rel == "sys/namespaces/api-lock/unlock" && by.ID == ns.ID) {
		return ns, rel, core.Errorf(core.CodeUnavailable,
			"API access to this namespace has been locked by an administrator - %q must be unlocked to gain access.", by.Path)
	}
	if !sysAllowedInNamespace(rel) {
		return ns, rel, ErrRootOnly
	}
	return ns, rel, nil
}

// tokenNamespace is the namespace a token store route acts in when the
// token it names says so: auth/token/*-self (and lookup without a token)
// always reach the caller's namespace, and lookup, renew and revoke of a
// token or an accessor that names a namespace inside ns reach that one.
// The id suffix is only a hint: the store checks the token's entry.
func (s *Server) tokenNamespace(req *core.Request, ns core.Namespace, rel string) (core.Namespace, bool) {
	name, ok := strings.CutPrefix(rel, "auth/token/")
	if !ok {
		return core.Namespace{}, false
	}
	str := func(k string) string { v, _ := req.Data[k].(string); return v }
	var hint string
	self := false
	switch name {
	case "lookup-self", "renew-self", "revoke-self":
		hint, self = req.ClientToken, true
	case "lookup":
		if hint = str("token"); hint == "" {
			hint, self = req.ClientToken, true
		}
	case "renew", "revoke", "revoke-orphan":
		hint = str("token")
	case "lookup-accessor", "renew-accessor", "revoke-accessor":
		hint = str("accessor")
	default:
		return core.Namespace{}, false
	}
	id := token.NamespaceSuffix(hint)
	if id == "" {
		if self {
			return core.RootNamespace, true
		}
		return core.Namespace{}, false
	}
	tn, ok := s.nss.Namespace(id)
	if !ok || !self && !ns.Contains(tn) {
		return core.Namespace{}, false
	}
	return tn, true
}

// nsHost is what the sys/namespaces routes use of the server.
type nsHost struct{ s *Server }

var _ namespace.Host = nsHost{}

// MountConflict names a mount at or under p, or one p would cut into.
func (h nsHost) MountConflict(p string) string {
	for _, m := range h.s.router.MountPaths() {
		if strings.HasPrefix(m, p) || strings.HasPrefix(p, m) {
			return m
		}
	}
	return ""
}

// Initialize runs the subsystems' namespace hooks for a new namespace.
func (h nsHost) Initialize(ctx context.Context, ns core.Namespace) error {
	for _, f := range h.s.nsCreated {
		if err := f(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

// Purge removes everything inside ns (see namespace.Host): its tokens
// first (so nothing acts in it while it empties), then its mounts and auth
// methods, its identity, and what the subsystems keep for it.
func (h nsHost) Purge(ctx context.Context, ns core.Namespace) error {
	s := h.s
	n, err := s.tokens.RevokeNamespace(ctx, ns.ID)
	if err != nil {
		return fmt.Errorf("revoke its tokens: %w", err)
	}
	mounts := s.router.NamespaceMounts(ns.ID)
	for _, p := range mounts {
		if err := s.router.Unmount(ctx, p, s.RevokePrefix); err != nil {
			return fmt.Errorf("disable %s: %w", p, err)
		}
	}
	if err := s.ident.DeleteNamespace(ctx, ns.ID); err != nil {
		return fmt.Errorf("delete its identity: %w", err)
	}
	for _, f := range s.nsDeleting {
		if err := f(ctx, ns); err != nil {
			return err
		}
	}
	s.log.Info("namespace emptied", "namespace", ns.Path, "id", ns.ID, "tokens_revoked", n, "mounts_disabled", len(mounts))
	return nil
}

// Sudo reports whether req's caller holds sudo on req's path.
func (h nsHost) Sudo(ctx context.Context, req *core.Request) bool {
	if req.Principal == nil {
		return false
	}
	c := *req
	c.SudoRequired, c.Operation = true, core.OpUpdate
	d, err := h.s.authorize(ctx, &c)
	return err == nil && d != nil && d.Allowed
}

// --- Host capabilities ---

// NamespaceByPath returns the namespace at a full path ("hospital-a/";
// "" is the root namespace); false when there is none.
func (h *Host) NamespaceByPath(p string) (core.Namespace, bool) {
	if namespace.Canonical(p) == "" {
		return core.RootNamespace, true
	}
	e, ok := h.s.nss.ByPath(p)
	if !ok {
		return core.Namespace{}, false
	}
	return e.Namespace(), true
}

// OnNamespace registers what a subsystem does when a namespace is created
// (created) and when one is deleted (deleting: remove what it keeps for
// it; it must be safe to run again). Either may be nil.
func (h *Host) OnNamespace(created, deleting func(ctx context.Context, ns core.Namespace) error) {
	if created != nil {
		h.s.nsCreated = append(h.s.nsCreated, created)
	}
	if deleting != nil {
		h.s.nsDeleting = append(h.s.nsDeleting, deleting)
	}
}

// namespaceOfPath returns the deepest namespace a full path is in and the
// path relative to it (the root namespace when none matches).
func (s *Server) namespaceOfPath(full string) (core.Namespace, string) {
	e, rel, err := s.nss.Resolve("", full)
	if err != nil || e == nil {
		return core.RootNamespace, full
	}
	return e.Namespace(), rel
}
