package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Storage layout (in the barrier):
//
//	sys/policy/acl/<name>   {"name": ..., "policy": "<HCL>"}
//	sys/policy/rego/<name>  {"name": ..., "policy": "<Rego>", "enforcement_level": ...}
//	sys/policy/revision     {"revision": N}, bumped in the same transaction
//	                        as every policy write or delete
const (
	policyPrefix = "sys/policy/"
	aclPrefix    = policyPrefix + "acl/"
	regoPrefix   = policyPrefix + "rego/"
	revisionKey  = policyPrefix + "revision"
)

type storedACL struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
	// NamespaceID and NamespacePath name the namespace of a policy of a
	// namespace other than the root (see namespace.go).
	NamespaceID   string `json:"namespace_id,omitempty"`
	NamespacePath string `json:"namespace_path,omitempty"`
}

type revisionDoc struct {
	Revision uint64 `json:"revision"`
}

func readRevision(ctx context.Context, s storage.Storage) (uint64, error) {
	var r revisionDoc
	if _, err := storage.GetJSON(ctx, s, revisionKey, &r); err != nil {
		return 0, fmt.Errorf("authz: read policy revision: %w", err)
	}
	return r.Revision, nil
}

// sanitizeName lower-cases and trims a policy name, as Vault does.
func sanitizeName(n string) string { return strings.ToLower(strings.TrimSpace(n)) }

// Load reads every policy from storage and makes them the enforced
// revision. On first use it stores the built-in default policy. A stored
// policy that no longer parses or compiles makes the revision "broken":
// every non-root request is then denied (fail closed) until it is fixed.
func (a *Authz) Load(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.loadLocked(ctx)
}

func (a *Authz) loadLocked(ctx context.Context) error {
	s := a.cfg.Storage
	rev, err := readRevision(ctx, s)
	if err != nil {
		return err
	}
	acls, mods, loadErr := a.readAll(ctx)
	if loadErr != nil && acls == nil {
		return loadErr
	}
	if _, ok := acls[DefaultPolicy]; !ok && loadErr == nil {
		p, _ := ParseACL(DefaultPolicy, DefaultPolicyRules)
		acls[DefaultPolicy] = p
		rev++
		err := storage.Txn(ctx, s, []storage.TxnOp{
			putJSON(aclPrefix+DefaultPolicy, storedACL{Name: DefaultPolicy, Policy: DefaultPolicyRules}),
			putJSON(revisionKey, revisionDoc{Revision: rev}),
		})
		if err != nil {
			// A standby cannot write; it enforces the built-in default
			// until the active node has stored it.
			a.cfg.Logger.Warn("could not store the default policy", "error", err)
			rev--
		}
	}
	st, err := buildState(ctx, rev, acls, mods, a.cfg.CacheSize)
	if err == nil && loadErr != nil {
		err = loadErr
	}
	if err != nil {
		a.cfg.Logger.Error("stored policies do not load; denying every non-root request until fixed", "error", err)
		a.cur.Store(&state{revision: rev, acl: acls, modules: mods, broken: "stored policies do not load: " + err.Error()})
		return nil
	}
	a.cur.Store(st)
	return nil
}

// readAll reads every stored policy. Policies that fail to parse are
// reported in err (the maps hold the rest); a storage failure returns nil maps.
func (a *Authz) readAll(ctx context.Context) (map[string]*Policy, map[string]*Module, error) {
	s := a.cfg.Storage
	names, err := storage.ListAll(ctx, s, aclPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("authz: list policies: %w", err)
	}
	acls := map[string]*Policy{}
	var errs []error
	for _, n := range names {
		var sp storedACL
		if _, err := storage.GetJSON(ctx, s, aclPrefix+n, &sp); err != nil {
			return nil, nil, fmt.Errorf("authz: read policy %s: %w", n, err)
		}
		p, err := ParseACL(n, sp.Policy)
		if err != nil {
			errs = append(errs, fmt.Errorf("acl policy %s: %w", n, err))
			continue
		}
		acls[n] = p
	}
	nsErrs, err := a.readNamespaced(ctx, acls)
	if err != nil {
		return nil, nil, err
	}
	errs = append(errs, nsErrs...)
	mnames, err := storage.ListAll(ctx, s, regoPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("authz: list rego policies: %w", err)
	}
	mods := map[string]*Module{}
	for _, n := range mnames {
		var m Module
		if _, err := storage.GetJSON(ctx, s, regoPrefix+n, &m); err != nil {
			return nil, nil, fmt.Errorf("authz: read rego policy %s: %w", n, err)
		}
		mods[n] = &m
	}
	return acls, mods, errors.Join(errs...)
}

func putJSON(key string, v any) storage.TxnOp {
	b, _ := json.Marshal(v)
	return storage.TxnOp{Kind: storage.OpPut, Key: key, Value: b}
}

// write applies a change: it builds and validates the next revision in
// memory, stores the change together with the new revision number in one
// transaction, then makes it the enforced revision. Nothing is stored when
// validation fails.
func (a *Authz) write(ctx context.Context, op storage.TxnOp, apply func(acls map[string]*Policy, mods map[string]*Module)) error {
	return a.writeOps(ctx, []storage.TxnOp{op}, apply)
}

// writeOps is write with several storage operations in the transaction.
func (a *Authz) writeOps(ctx context.Context, ops []storage.TxnOp, apply func(acls map[string]*Policy, mods map[string]*Module)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.cur.Load()
	if cur == nil {
		return core.Errorf(core.CodeUnavailable, "%v", errNotLoaded)
	}
	acls := make(map[string]*Policy, len(cur.acl)+1)
	for k, v := range cur.acl {
		acls[k] = v
	}
	mods := make(map[string]*Module, len(cur.modules)+1)
	for k, v := range cur.modules {
		mods[k] = v
	}
	apply(acls, mods)
	rev, err := readRevision(ctx, a.cfg.Storage)
	if err != nil {
		return err
	}
	if rev < cur.revision {
		rev = cur.revision
	}
	rev++
	st, err := buildState(ctx, rev, acls, mods, a.cfg.CacheSize)
	if err != nil {
		return err
	}
	if err := storage.Txn(ctx, a.cfg.Storage, append(ops[:len(ops):len(ops)], putJSON(revisionKey, revisionDoc{Revision: rev}))); err != nil {
		return fmt.Errorf("authz: store policy: %w", err)
	}
	a.cur.Store(st)
	return nil
}

// PutACL parses and stores an ACL policy. The root policy cannot be
// written. Parse errors are CodeInvalid with line and column.
func (a *Authz) PutACL(ctx context.Context, name, src string) error {
	name = sanitizeName(name)
	if err := checkPolicyName(name); err != nil {
		return err
	}
	if name == RootPolicy || name == ResponseWrappingPolicy {
		return core.Invalid("cannot update %q policy", name)
	}
	if strings.TrimSpace(src) == "" {
		return core.Invalid("'policy' parameter not supplied or empty")
	}
	p, err := ParseACL(name, src)
	if err != nil {
		return err
	}
	return a.write(ctx, putJSON(aclPrefix+name, storedACL{Name: name, Policy: src}), func(acls map[string]*Policy, _ map[string]*Module) {
		acls[name] = p
	})
}

// DeleteACL deletes an ACL policy; deleting a missing one is not an error.
// root and default cannot be deleted.
func (a *Authz) DeleteACL(ctx context.Context, name string) error {
	name = sanitizeName(name)
	switch name {
	case RootPolicy:
		return core.Invalid("cannot delete %q policy", RootPolicy)
	case DefaultPolicy:
		return core.Invalid("cannot delete default policy")
	case ResponseWrappingPolicy:
		return core.Invalid("cannot delete %q policy", name)
	}
	return a.write(ctx, storage.TxnOp{Kind: storage.OpDelete, Key: aclPrefix + name}, func(acls map[string]*Policy, _ map[string]*Module) {
		delete(acls, name)
	})
}

// GetACL returns the raw text of an enforced ACL policy ("" for root);
// ok is false when it does not exist.
func (a *Authz) GetACL(name string) (raw string, ok bool) {
	name = sanitizeName(name)
	if name == RootPolicy {
		return "", true
	}
	st := a.cur.Load()
	if st == nil || strings.Contains(name, nsSep) {
		return "", false
	}
	p, ok := st.acl[name]
	if !ok {
		return "", false
	}
	return p.Raw, true
}

// ListACL returns the ACL policy names, sorted, with "root" last (as Vault).
func (a *Authz) ListACL() []string {
	st := a.cur.Load()
	var out []string
	if st != nil {
		for n := range st.acl {
			if !strings.Contains(n, nsSep) {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return append(out, RootPolicy)
}

// PutModule validates, compiles (with the bundle and every other module)
// and stores a custom Rego module. A module that does not compile is
// rejected with OPA's message, which names the line.
func (a *Authz) PutModule(ctx context.Context, m Module) error {
	m.Name = sanitizeName(m.Name)
	if m.Level == "" {
		m.Level = LevelMandatory
	}
	if _, err := checkModule(&m); err != nil {
		return err
	}
	return a.write(ctx, putJSON(regoPrefix+m.Name, m), func(_ map[string]*Policy, mods map[string]*Module) {
		mods[m.Name] = &m
	})
}

// DeleteModule deletes a custom module; deleting a missing one is not an error.
func (a *Authz) DeleteModule(ctx context.Context, name string) error {
	name = sanitizeName(name)
	return a.write(ctx, storage.TxnOp{Kind: storage.OpDelete, Key: regoPrefix + name}, func(_ map[string]*Policy, mods map[string]*Module) {
		delete(mods, name)
	})
}

// GetModule returns an enforced custom module.
func (a *Authz) GetModule(name string) (Module, bool) {
	st := a.cur.Load()
	if st == nil {
		return Module{}, false
	}
	m, ok := st.modules[sanitizeName(name)]
	if !ok {
		return Module{}, false
	}
	return *m, true
}

// ListModules returns the custom module names, sorted.
func (a *Authz) ListModules() []string {
	st := a.cur.Load()
	var out []string
	if st != nil {
		for n := range st.modules {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// ModuleCaching reports whether decisions may be cached with the enforced
// modules ("" when they may, else why not) and which input paths join the
// cache key.
func (a *Authz) ModuleCaching() (uncacheable string, keyed []string) {
	st := a.cur.Load()
	if st == nil {
		return "", nil
	}
	return st.reads.volatile, st.reads.paths
}

func checkPolicyName(n string) error {
	if n == "" {
		return core.Invalid("policy name is required")
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return core.Invalid("invalid policy name %q: control characters are not allowed", n)
		}
	}
	for _, seg := range strings.Split(n, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return core.Invalid("invalid policy name %q", n)
		}
	}
	return nil
}
