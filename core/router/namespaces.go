package router

import (
	"maps"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// Namespaces. A mount of a namespace other than the root is kept in the
// one mount table under its full path, its namespace's path in front
// ("hospital-a/secret/"), with the namespace's id and path in its entry;
// the built-in mounts (sys/, auth/token/, identity/) serve every namespace.
// Mount paths and namespace paths never overlap: Mount refuses a path a
// namespace is at or under (SetNamespaceConflict), and the namespace store
// refuses a namespace where a mount is.

// SetNamespaceConflict installs the check Mount runs for a new mount of
// namespace ns at the full path: it returns the path of a namespace the
// mount would hide or cut into, "" when there is none.
func (r *Router) SetNamespaceConflict(f func(ns core.Namespace, path string) string) {
	r.nsConflict = f
}

// checkNamespaced refuses a mount at rel (relative to ns) that would hide a
// built-in mount or overlap a namespace.
func (r *Router) checkNamespaced(ns core.Namespace, rel string) error {
	r.mu.RLock()
	for sp := range r.static {
		if strings.HasPrefix(rel, sp) || strings.HasPrefix(sp, rel) {
			r.mu.RUnlock()
			return core.Invalid("path is already in use at %s%s", ns.Path, sp)
		}
	}
	r.mu.RUnlock()
	if r.nsConflict != nil {
		if nsPath := r.nsConflict(ns, ns.Path+rel); nsPath != "" {
			return core.Invalid("path %s%s conflicts with namespace %s", ns.Path, rel, nsPath)
		}
	}
	return nil
}

// ResolveIn is Resolve (ResolveInternal when internal) for a path
// relative to namespace ns: the built-in mounts first, then the mounts of
// ns (never another namespace's). The returned mount's Path is the full
// path ("hospital-a/sys/" for the built-in sys/ mount in hospital-a/). In
// the root namespace it is Resolve.
func (r *Router) ResolveIn(ns core.Namespace, rel string, internal bool) (*Resolved, error) {
	if ns.IsRoot() {
		return r.resolve(rel, internal)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	notFound := core.Errorf(core.CodeNotFound, "no handler for route %q. route entry not found.", rel)
	for sp, m := range r.static {
		if strings.HasPrefix(rel, sp) || rel+"/" == sp {
			info := m.entry.Info()
			info.Path, info.NamespaceID = ns.Path+m.entry.Path, ns.ID
			return r.resolved(m, strings.TrimPrefix(rel, sp), info, internal), nil
		}
	}
	m, mrel := r.match(ns.Path + rel)
	if m == nil || m.entry.Static || m.entry.NamespaceID != ns.ID {
		return nil, notFound
	}
	return r.resolved(m, mrel, m.entry.Info(), internal), nil
}

// MountsIn returns copies of the mount entries of a class in namespace ns,
// built-in ones included, with Path relative to ns, sorted by path.
func (r *Router) MountsIn(ns core.Namespace, class string) []MountEntry {
	id := ns.ID
	if ns.IsRoot() {
		id = ""
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []MountEntry
	for _, m := range r.mounts {
		if m.entry.Class != class || !m.entry.Static && m.entry.NamespaceID != id {
			continue
		}
		e := *m.entry
		e.Options = maps.Clone(m.entry.Options)
		e.Path = strings.TrimPrefix(e.Path, e.NamespacePath)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// EntryIn returns a copy of the mount entry at rel (relative to ns) when it
// belongs to ns; built-in mounts are found in every namespace.
func (r *Router) EntryIn(ns core.Namespace, rel string) (MountEntry, bool) {
	if e, ok := r.Entry(ns.Path + rel); ok && (e.NamespaceID == ns.ID || ns.IsRoot() && e.NamespaceID == "") {
		return e, true
	}
	if !ns.IsRoot() {
		r.mu.RLock()
		m, ok := r.static[rel]
		r.mu.RUnlock()
		if ok {
			e := *m.entry
			e.Options = maps.Clone(m.entry.Options)
			return e, true
		}
	}
	return MountEntry{}, false
}

// NamespaceMounts returns the full paths of every mount of the namespace
// with id (both classes), for its deletion.
func (r *Router) NamespaceMounts(id string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for p, m := range r.mounts {
		if !m.entry.Static && m.entry.NamespaceID == id {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// MountPaths returns the full path of every mount (for the namespace
// store's conflict check).
func (r *Router) MountPaths() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.mounts))
	for p := range r.mounts {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// MountNamespace returns the namespace of the mount with the accessor:
// its id ("root" for the root namespace) and path.
func (r *Router) MountNamespace(accessor string) (id, path string, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, m := range r.mounts {
		if m.entry.Accessor == accessor {
			if m.entry.NamespaceID == "" {
				return core.RootNamespaceID, "", true
			}
			return m.entry.NamespaceID, m.entry.NamespacePath, true
		}
	}
	return "", "", false
}
