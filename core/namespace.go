package core

import "strings"

// RootNamespaceID is the id of the root namespace, as in Vault's audit
// entries ("namespace": {"id": "root"}).
const RootNamespaceID = "root"

// NamespaceHeader is the request header naming the namespace a request is
// made in (Vault's X-Vault-Namespace). A request may also address a
// namespace by prefixing its path ("ns1/secret/data/x"); header and prefix
// combine (header "ns1", path "ns2/secret/..." is ns1/ns2/).
const NamespaceHeader = "X-Vault-Namespace"

// Namespace identifies a tenant of the server: everything a namespace
// holds (mounts, policies, auth methods, tokens, identity) is its own, and
// a token of one namespace acts only in it and its descendants.
//
// The zero value is not a namespace; use RootNamespace for the root.
type Namespace struct {
	// ID is "root" for the root namespace, else a short random id
	// (Vault's namespace accessor, e.g. "HtLcGY"), never reused.
	ID string `json:"id"`
	// Path is "" for the root namespace, else the full path from the root
	// with a trailing slash: "hospital-a/" or "hospital-a/icu/".
	Path string `json:"path,omitempty"`
}

// RootNamespace is the namespace every request is in unless it names
// another. With no other namespace created, Vigil behaves as it would
// without namespaces at all.
var RootNamespace = Namespace{ID: RootNamespaceID}

// IsRoot reports whether n is the root namespace.
func (n Namespace) IsRoot() bool { return n.ID == RootNamespaceID || n.ID == "" && n.Path == "" }

// Contains reports whether other is n or one of its descendants. The root
// namespace contains every namespace.
func (n Namespace) Contains(other Namespace) bool {
	return strings.HasPrefix(other.Path, n.Path)
}

// Relative returns path (a full path, namespace prefix included) relative
// to n, and false when path is not inside n.
func (n Namespace) Relative(path string) (string, bool) {
	if !strings.HasPrefix(path, n.Path) {
		return "", false
	}
	return path[len(n.Path):], true
}

// NS returns the namespace req is in: the root namespace until the
// dispatcher has resolved another.
func (r *Request) NS() Namespace {
	if r.Namespace == nil {
		return RootNamespace
	}
	return *r.Namespace
}

// FullPath is the request path with its namespace's path in front: the
// path policies are matched against and lease ids and mount points are
// built from ("hospital-a/secret/data/ward" for secret/data/ward in
// hospital-a/). In the root namespace it is Path.
func (r *Request) FullPath() string { return r.NS().Path + r.Path }

// NamespaceOf returns the namespace a principal's token belongs to (the
// root namespace for a principal without one).
func (p *Principal) NamespaceOf() Namespace {
	if p == nil || p.Namespace == nil {
		return RootNamespace
	}
	return *p.Namespace
}

// ErrNamespaceNotFound is returned for a request naming a namespace that
// does not exist (404, as Vault answers).
var ErrNamespaceNotFound = &Error{Code: CodeNotFound, Msg: "namespace not found"}
