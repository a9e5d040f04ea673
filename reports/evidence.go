package reports

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"sort"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/reports/query"
)

// KeySource gives the node's checkpoint public key; *auditsvc.Subsystem
// implements it.
type KeySource interface {
	PublicKey() (ed25519.PublicKey, bool)
}

// evidence serves GET sys/reports/evidence: what an auditor checks before
// trusting any figure — the last chain verification per device, the
// newest signed checkpoint per node the query backend answers against,
// what the log held covers per node, and the checkpoint public key that
// verifies checkpoints and evidence bundles. Read-only; covered by the
// auditor policy's read on sys/reports/*.
func (r routes) evidence(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	s := r.s
	env, err := s.opts.Compliance.Gather(ctx)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"node_id": env.NodeID, "time": s.now().UTC()}
	if v := env.Verification; v != nil {
		names := make([]string, 0, len(v.Devices))
		for n := range v.Devices {
			names = append(names, n)
		}
		sort.Strings(names)
		devs := make([]map[string]any, 0, len(names))
		for _, n := range names {
			d := v.Devices[n]
			devs = append(devs, map[string]any{"device": n, "ok": d.OK, "failure": d.Failure, "entries": d.Entries, "first_seq": d.FirstSeq,
				"last_seq": d.LastSeq, "checkpoint_seq": d.CheckpointSeq, "checkpoint_ok": d.CheckpointOK, "signatures_checked": d.SignaturesChecked})
		}
		data["verification"] = map[string]any{"time": v.Time, "ok": v.OK, "devices": devs}
	}
	if b, err := s.opts.Query(); err == nil {
		if s.opts.CatchUp != nil {
			cctx, cancel := context.WithTimeout(ctx, catchUpWait)
			_ = s.opts.CatchUp(cctx, "")
			cancel()
		}
		if res, err := b.Query(ctx, query.Filter{Limit: 1}); err == nil {
			cps := res.Checkpoints
			if len(cps) == 0 && res.Checkpoint != nil {
				cps = []query.CheckpointRef{*res.Checkpoint}
			}
			data["checkpoints"] = cps
			data["backend"] = res.Backend
			data["verification_note"] = res.Verification
		}
		if cr, ok := b.(query.CoverageReporter); ok {
			if cov, err := cr.Coverage(ctx); err == nil {
				data["coverage"] = cov
			}
		}
	}
	if s.opts.Keys != nil {
		if pub, ok := s.opts.Keys.PublicKey(); ok {
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err == nil {
				data["checkpoint_key"] = map[string]any{"key_id": keyID(pub), "public_key_pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
			}
		}
	}
	return &core.Response{Data: data}, nil
}
