package authz

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Namespaces. Every namespace has its own ACL policies, its own "default"
// among them. A policy of a namespace is matched against full paths: its
// rules are read with the namespace's path in front, so `path "secret/*"`
// in hospital-a/ grants hospital-a/secret/..., and `path "icu/secret/*"`
// in hospital-a/ grants what hospital-a/icu/ keeps under secret/ (Vault's
// way for a namespace administrator to act in child namespaces). A token
// carries the policies of its own namespace only.
//
// Storage: the root namespace's policies are where they always were
// (sys/policy/acl/<name>); another namespace's at
// sys/policy/ns/<namespace id>/acl/<name>, the stored document naming the
// namespace and its path. Custom Rego modules are the root namespace's:
// they apply to every request, in every namespace.
//
// Internally a policy of a namespace other than the root is keyed by
// qualify(ns, name): the namespace id and the name, separated by a byte
// no name contains. A token's policy set is always of one namespace, so
// granting policies and explanations name policies by their plain name.

const nsPrefix = policyPrefix + "ns/"

// nsSep separates a namespace id from a policy name in state keys.
const nsSep = "\x1f"

func qualify(ns core.Namespace, name string) string {
	if ns.IsRoot() {
		return name
	}
	return ns.ID + nsSep + name
}

// wrapSep ends the key of the built-in response-wrapping policy in a
// namespace with that namespace's path: the policy is never stored, so its
// rules are put under the path when a policy set is built (wrappingRules).
const wrapSep = "\x1e"

// unqualify returns a state key's plain policy name.
func unqualify(key string) string {
	if i := strings.IndexByte(key, nsSep[0]); i >= 0 {
		key = key[i+1:]
	}
	if i := strings.IndexByte(key, wrapSep[0]); i >= 0 {
		key = key[:i]
	}
	return key
}

// wrappingRules are the rules of the response-wrapping policy of a
// namespace's wrapping token (a key qualifyAll made), under that
// namespace's path; false for any other key.
func wrappingRules(key string) ([]*PathRule, bool) {
	i := strings.IndexByte(key, wrapSep[0])
	if i < 0 || unqualify(key) != ResponseWrappingPolicy || key[i+1:] == "" {
		return nil, false
	}
	return scoped(responseWrapping, core.Namespace{ID: key[:strings.IndexByte(key, nsSep[0])], Path: key[i+1:]}).Paths, true
}

// inNamespace reports whether a state key is a policy of ns.
func inNamespace(key string, ns core.Namespace) bool {
	i := strings.IndexByte(key, nsSep[0])
	if ns.IsRoot() {
		return i < 0
	}
	return i >= 0 && key[:i] == ns.ID
}

// qualifyAll qualifies a token's policies with its namespace. The root
// namespace's are returned as they are.
func qualifyAll(ns core.Namespace, names []string) []string {
	if ns.IsRoot() {
		return names
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = qualify(ns, n)
		if n == ResponseWrappingPolicy {
			out[i] += wrapSep + ns.Path
		}
	}
	return out
}

func aclKey(ns core.Namespace, name string) string {
	if ns.IsRoot() {
		return aclPrefix + name
	}
	return nsPrefix + ns.ID + "/acl/" + name
}

// scoped returns p with every rule's pattern under the namespace's path.
func scoped(p *Policy, ns core.Namespace) *Policy {
	if ns.IsRoot() {
		return p
	}
	c := *p
	c.Paths = make([]*PathRule, len(p.Paths))
	for i, r := range p.Paths {
		rc := *r
		rc.Pattern = ns.Path + r.Pattern
		c.Paths[i] = &rc
	}
	return &c
}

// readNamespaced reads every policy of namespaces other than the root
// into acls (keyed by qualify). Parse failures are returned in errs.
func (a *Authz) readNamespaced(ctx context.Context, acls map[string]*Policy) (errs []error, err error) {
	keys, err := storage.ListAll(ctx, a.cfg.Storage, nsPrefix)
	if err != nil {
		return nil, fmt.Errorf("authz: list namespace policies: %w", err)
	}
	for _, k := range keys {
		id, name, ok := strings.Cut(k, "/acl/")
		if !ok || strings.Contains(id, "/") {
			continue
		}
		var sp storedACL
		if _, err := storage.GetJSON(ctx, a.cfg.Storage, nsPrefix+k, &sp); err != nil {
			return nil, fmt.Errorf("authz: read policy %s: %w", k, err)
		}
		ns := core.Namespace{ID: id, Path: sp.NamespacePath}
		if sp.NamespaceID != id || sp.NamespacePath == "" {
			errs = append(errs, fmt.Errorf("acl policy %s of namespace %s: the stored document does not name its namespace", name, id))
			continue
		}
		p, err := ParseACL(name, sp.Policy)
		if err != nil {
			errs = append(errs, fmt.Errorf("acl policy %s in namespace %s: %w", name, sp.NamespacePath, err))
			continue
		}
		acls[qualify(ns, name)] = scoped(p, ns)
	}
	return errs, nil
}

// PutACLIn is PutACL in namespace ns. The root policy exists only in the
// root namespace and cannot be written anywhere.
func (a *Authz) PutACLIn(ctx context.Context, ns core.Namespace, name, src string) error {
	if ns.IsRoot() {
		return a.PutACL(ctx, name, src)
	}
	name = sanitizeName(name)
	if err := checkPolicyName(name); err != nil {
		return err
	}
	if name == RootPolicy {
		return core.Invalid("cannot update %q policy", RootPolicy)
	}
	if strings.TrimSpace(src) == "" {
		return core.Invalid("'policy' parameter not supplied or empty")
	}
	p, err := ParseACL(name, src)
	if err != nil {
		return err
	}
	op := putJSON(aclKey(ns, name), storedACL{Name: name, Policy: src, NamespaceID: ns.ID, NamespacePath: ns.Path})
	return a.writeOps(ctx, []storage.TxnOp{op}, func(acls map[string]*Policy, _ map[string]*Module) {
		acls[qualify(ns, name)] = scoped(p, ns)
	})
}

// DeleteACLIn is DeleteACL in namespace ns.
func (a *Authz) DeleteACLIn(ctx context.Context, ns core.Namespace, name string) error {
	if ns.IsRoot() {
		return a.DeleteACL(ctx, name)
	}
	name = sanitizeName(name)
	switch name {
	case RootPolicy:
		return core.Invalid("cannot delete %q policy", RootPolicy)
	case DefaultPolicy:
		return core.Invalid("cannot delete default policy")
	}
	return a.writeOps(ctx, []storage.TxnOp{{Kind: storage.OpDelete, Key: aclKey(ns, name)}}, func(acls map[string]*Policy, _ map[string]*Module) {
		delete(acls, qualify(ns, name))
	})
}

// GetACLIn is GetACL in namespace ns.
func (a *Authz) GetACLIn(ns core.Namespace, name string) (raw string, ok bool) {
	if ns.IsRoot() {
		return a.GetACL(name)
	}
	name = sanitizeName(name)
	st := a.cur.Load()
	if st == nil || name == RootPolicy {
		return "", false
	}
	p, ok := st.acl[qualify(ns, name)]
	if !ok {
		return "", false
	}
	return p.Raw, true
}

// ListACLIn is ListACL in namespace ns (whose list has no "root").
func (a *Authz) ListACLIn(ns core.Namespace) []string {
	if ns.IsRoot() {
		return a.ListACL()
	}
	st := a.cur.Load()
	var out []string
	if st != nil {
		for k := range st.acl {
			if inNamespace(k, ns) {
				out = append(out, unqualify(k))
			}
		}
	}
	sort.Strings(out)
	return out
}

// CreateNamespace stores the built-in default policy of a new namespace.
func (a *Authz) CreateNamespace(ctx context.Context, ns core.Namespace) error {
	if ns.IsRoot() {
		return nil
	}
	return a.PutACLIn(ctx, ns, DefaultPolicy, DefaultPolicyRules)
}

// DeleteNamespace deletes every policy of the namespace (its deletion). It
// is safe to run again.
func (a *Authz) DeleteNamespace(ctx context.Context, ns core.Namespace) error {
	if ns.IsRoot() {
		return core.Invalid("the root namespace cannot be deleted")
	}
	keys, err := storage.ListAll(ctx, a.cfg.Storage, nsPrefix+ns.ID+"/")
	if err != nil {
		return fmt.Errorf("authz: list policies of namespace %s: %w", ns.Path, err)
	}
	ops := make([]storage.TxnOp, 0, len(keys))
	for _, k := range keys {
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: nsPrefix + ns.ID + "/" + k})
	}
	return a.writeOps(ctx, ops, func(acls map[string]*Policy, _ map[string]*Module) {
		for k := range acls {
			if inNamespace(k, ns) {
				delete(acls, k)
			}
		}
	})
}

// NamespacePolicies returns the parsed policies of namespace ns, by name,
// with their rules as written (relative to ns), for compliance checks.
func (a *Authz) NamespacePolicies(ns core.Namespace) []*Policy {
	var out []*Policy
	for _, name := range a.ListACLIn(ns) {
		if name == RootPolicy {
			continue
		}
		raw, ok := a.GetACLIn(ns, name)
		if !ok {
			continue
		}
		if p, err := ParseACL(name, raw); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// forPrincipal returns the request as authorization sees it: its path in
// full (the namespace's path in front), and the principal's policies
// qualified with the token's namespace. ok is false when the token's
// namespace does not contain the request's (a token acts only in its own
// namespace and below it).
func forPrincipal(req *core.Request) (r *core.Request, policies []string, ok bool) {
	p := req.Principal
	tokNS, reqNS := p.NamespaceOf(), req.NS()
	if !tokNS.Contains(reqNS) {
		return nil, nil, false
	}
	policies = qualifyAll(tokNS, p.Policies)
	if reqNS.IsRoot() {
		return req, policies, true
	}
	c := *req
	c.Path = reqNS.Path + req.Path
	if !tokNS.IsRoot() && (p.Root || slices.Contains(p.Policies, RootPolicy)) {
		// Only the root namespace has the root policy: a namespace's
		// token never passes for root, whatever its policies are named.
		pc := *p
		pc.Root = false
		pc.Policies = slices.DeleteFunc(slices.Clone(p.Policies), func(n string) bool { return n == RootPolicy })
		c.Principal = &pc
	}
	return &c, policies, true
}

// annotate names the namespace of a decision's granting ACL policies (the
// token's: a policy set is one namespace's).
func annotate(d *core.Decision, ns core.Namespace) {
	if ns.IsRoot() {
		return
	}
	for i := range d.GrantingPolicies {
		if d.GrantingPolicies[i].Type == "acl" {
			d.GrantingPolicies[i].NamespaceID, d.GrantingPolicies[i].NamespacePath = ns.ID, ns.Path
		}
	}
}

// nsName is a namespace as messages name it.
func nsName(ns core.Namespace) string {
	if ns.IsRoot() {
		return "root"
	}
	return ns.Path
}
