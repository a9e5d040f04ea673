package authz

import (
	"context"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core"
)

// MountAccess reports whether a token with these policies may see the mount
// at mountPath (e.g. "secret/" or "auth/userpass/") in
// sys/internal/ui/mounts: it has some capability other than deny on the
// mount path itself, or a rule grants one on a path below it. This is
// Vault's test; custom Rego modules do not take part, as Sentinel does not
// in Vault. Errors are *core.Error values (policies not loaded).
func (a *Authz) MountAccess(ctx context.Context, policies []string, mountPath string) (bool, error) {
	return a.MountAccessNS(ctx, core.RootNamespace, policies, mountPath)
}

// MountAccessNS is MountAccess for a token of namespace ns: policies are
// that namespace's and mountPath is the mount's full path
// ("hospital-a/secret/"). A mount outside ns is never visible.
func (a *Authz) MountAccessNS(ctx context.Context, ns core.Namespace, policies []string, mountPath string) (bool, error) {
	st := a.cur.Load()
	if st == nil {
		return false, core.Errorf(core.CodeUnavailable, "%v", errNotLoaded)
	}
	if !strings.HasPrefix(mountPath, ns.Path) {
		return false, nil
	}
	v, err := st.view(qualifyAll(ns, policies))
	if err != nil {
		return false, core.Errorf(core.CodeInternal, "mount access: %v", err)
	}
	if v.root {
		return true, nil
	}
	caps, err := a.CapabilitiesNS(ctx, ns, policies, mountPath)
	if err != nil {
		return false, err
	}
	if !slices.Contains(caps, CapDeny) {
		return true, nil
	}
	for _, e := range v.entries {
		if e.caps[CapDeny] || len(e.caps) == 0 || e.rule.Templated {
			continue
		}
		if ruleReachesBelow(e.rule, mountPath) {
			return true, nil
		}
	}
	return false, nil
}

// ruleReachesBelow reports whether r can match some path under mountPath
// (which ends in "/"): its literal part lies under the mount, or its "+"
// segments match the mount's segments.
func ruleReachesBelow(r *PathRule, mountPath string) bool {
	switch r.Kind() {
	case "exact":
		return strings.HasPrefix(r.Pattern, mountPath)
	case "prefix":
		return strings.HasPrefix(strings.TrimSuffix(r.Pattern, "*"), mountPath)
	}
	// Segment pattern: compare it segment by segment with the mount path.
	pat := strings.Split(r.Pattern, "/")
	mnt := strings.Split(strings.TrimSuffix(mountPath, "/"), "/")
	for i, m := range mnt {
		if i >= len(pat) {
			return false
		}
		p := pat[i]
		switch {
		case p == "+", p == m:
		case strings.HasSuffix(p, "*") && i == len(pat)-1:
			return strings.HasPrefix(m, strings.TrimSuffix(p, "*"))
		default:
			return false
		}
	}
	return true
}
