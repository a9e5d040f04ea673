package compliance

import (
	"context"

	"github.com/vigilsec/vigil/core"
)

// serverWide are the checks about the server as a whole (audit devices and
// streams, the chain's verification, snapshots, the seal): a run scoped to
// a namespace leaves them out, as a namespace's administrator can neither
// see nor change them.
var serverWide = map[string]bool{
	CheckAuditRedundant: true, CheckAuditDisk: true, CheckAuditShipLag: true, CheckAuditVerify: true,
	CheckAuditRequire: true, CheckAuditDurable: true,
	CheckSnapshot: true, CheckRestoreTest: true, CheckBackupSchedule: true, CheckBackupDrill: true, CheckKeyHolders: true, CheckRecoveryDoc: true, CheckKeyDrill: true,
}

// GatherIn is Gather scoped to namespace ns: the policies, tokens, mounts
// and entities of that namespace only, and none of the server-wide evidence
// (the checks about it are not run in a namespace). The root namespace is
// the whole server (Gather).
func (s *Subsystem) GatherIn(ctx context.Context, ns core.Namespace) (*Env, error) {
	return s.gather(ctx, ns, false)
}

// GatherFor is GatherIn keeping the server-wide evidence (audit devices,
// streams, verification, snapshots, seal): a namespace's report shows the
// audit trail's own evidence, which covers every namespace.
func (s *Subsystem) GatherFor(ctx context.Context, ns core.Namespace) (*Env, error) {
	return s.gather(ctx, ns, true)
}

func (s *Subsystem) gather(ctx context.Context, ns core.Namespace, server bool) (*Env, error) {
	env, err := s.Gather(ctx)
	if err != nil || ns.IsRoot() {
		return env, err
	}
	scoped := &Env{Now: env.Now, NodeID: env.NodeID, Namespace: ns}
	if server {
		c := *env
		scoped = &c
		scoped.Namespace, scoped.Policies, scoped.Tokens, scoped.Mounts, scoped.Entities = ns, nil, nil, nil, nil
	}
	if a := s.opts.Authz.A; a != nil {
		scoped.Policies = a.NamespacePolicies(ns)
	}
	for _, t := range env.Tokens {
		if t.NamespaceID == ns.ID {
			scoped.Tokens = append(scoped.Tokens, t)
		}
	}
	for _, m := range env.Mounts {
		if m.NamespaceID == ns.ID {
			scoped.Mounts = append(scoped.Mounts, m)
		}
	}
	for _, e := range env.Entities {
		if e.NamespaceID == ns.ID {
			scoped.Entities = append(scoped.Entities, e)
		}
	}
	return scoped, nil
}

// RunIn is Run scoped to namespace ns (see GatherIn).
func (s *Subsystem) RunIn(ctx context.Context, ns core.Namespace, th Thresholds) (*Result, error) {
	env, err := s.GatherIn(ctx, ns)
	if err != nil {
		return nil, err
	}
	return Run(env, mergeThresholds(th, s.opts.Thresholds)), nil
}
