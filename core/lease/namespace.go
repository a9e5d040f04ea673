package lease

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core"
)

// Namespaces. A lease belongs to the namespace of the request that created
// it; its id is a full path (the namespace's path in front). The sys/leases
// routes of a namespace see and act on that namespace's leases only (a
// parent namespace's administrator works on a child's leases from inside
// the child, as in Vault); tidy is the root's.

// nsID is a lease's spelling of a namespace: "" for the root.
func nsID(ns core.Namespace) string {
	if ns.IsRoot() {
		return ""
	}
	return ns.ID
}

// lookupIn is Lookup restricted to the request's namespace: a lease of
// another namespace is an invalid lease there.
func (m *Manager) lookupIn(ctx context.Context, req *core.Request, id string) (*Entry, error) {
	e, err := m.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if e.NamespaceID != nsID(req.NS()) {
		return nil, core.Invalid("invalid lease")
	}
	return e, nil
}

// listIn is List restricted to the request's namespace (the root's too: a
// child namespace's leases are listed from inside it).
func (m *Manager) listIn(ctx context.Context, req *core.Request, prefix string) ([]string, error) {
	ids, err := m.List(ctx, prefix)
	if err != nil {
		return ids, err
	}
	want := nsID(req.NS())
	out := ids[:0]
	for _, id := range ids {
		e, err := m.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if e != nil && e.NamespaceID == want {
			out = append(out, id)
		}
	}
	return out, nil
}

// revokePrefixIn is RevokePrefix for the leases of namespace ns only.
func (m *Manager) revokePrefixIn(ctx context.Context, ns core.Namespace, prefix string, force bool) error {
	ids, err := m.List(ctx, prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		e, err := m.get(ctx, id)
		if err != nil {
			return err
		}
		if e == nil || e.NamespaceID != nsID(ns) {
			continue
		}
		if rerr := m.revokeEntry(ctx, e, "revoke-prefix"); rerr != nil {
			if force {
				m.cfg.Logger.Warn("revoke-force: deleting lease whose revocation failed", "lease_id", id, "error", rerr)
				if err := m.delete(ctx, e); err != nil {
					return err
				}
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %w", id, rerr))
		}
	}
	if len(errs) > 0 {
		return core.Errorf(core.CodeInternal, "failed to revoke %d lease(s): %v", len(errs), errors.Join(errs...))
	}
	return nil
}
