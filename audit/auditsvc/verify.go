package auditsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/core"
)

// Verify checks every file device's log on this node strictly against
// every trusted checkpoint the witnesses hold (Raft storage, the other
// nodes' countersignatures, the streams, HTTP witnesses) and the
// checkpoint key. An open device first writes a checkpoint, so the lines
// written up to the call are covered and compared too. The outcome is
// stored in the barrier (sys/audit/verification/<node>) and returned. A
// device whose log cannot be read counts as failed.
func (a *Subsystem) Verify(ctx context.Context) (*audit.Verification, error) {
	pub, ok := a.PublicKey()
	if !ok {
		return nil, core.ErrSealed
	}
	v := &audit.Verification{Time: a.now().UTC(), OK: true, NodeID: a.nodeID, Devices: map[string]audit.DeviceVerification{}}
	for _, d := range a.broker.Devices() {
		if d.Config.Type != audit.TypeFile {
			continue
		}
		dv := audit.DeviceVerification{Path: d.Config.Path}
		trusted := a.trustedCheckpoints(ctx, d.Config)
		if fs, ok := d.Sink().(*audit.FileSink); ok {
			if cp, err := fs.W.Checkpoint(); err == nil {
				cp.Source = "this server's writer, now"
				trusted = append(trusted, cp)
			}
		}
		for _, cp := range trusted {
			dv.CheckpointSeq = max(dv.CheckpointSeq, cp.Seq)
			dv.TrustedSources = append(dv.TrustedSources, fmt.Sprintf("%s (seq %d)", cp.Source, cp.Seq))
		}
		rep, err := audit.VerifyFileLog(ctx, d.Config.Path, a.nodeID, pub, trusted)
		if err != nil {
			dv.Failure, dv.Summary = err.Error(), "cannot read the log: "+err.Error()
		} else {
			dv.OK, dv.Summary = rep.OK, rep.String()
			dv.Segments, dv.Lines, dv.Entries, dv.Checkpoints = rep.Segments, rep.Lines, rep.Entries, rep.Checkpoints
			dv.FirstSeq, dv.LastSeq, dv.Anchor = rep.FirstSeq, rep.LastSeq, rep.Anchor
			dv.SignaturesChecked, dv.CheckpointOK = rep.SignaturesChecked, rep.TrustedCheckpointVerified
			dv.TreeChecked, dv.Uncovered, dv.KeyID = rep.TreeChecked, rep.Uncovered, rep.KeyID
			if rep.Tree.Size > 0 {
				dv.TreeSize, dv.Root = rep.Tree.Size, rep.Tree.Root().String()
			}
			if rep.Failure != nil {
				dv.Failure, dv.FailureKind = rep.Failure.Error(), string(rep.Failure.Kind)
				a.metrics.Tampered(d.Name(), dv.FailureKind, "verify")
			}
			for _, w := range rep.Warnings {
				dv.Warnings = append(dv.Warnings, fmt.Sprintf("%s: %s:%d: %s", w.Kind, w.File, w.Line, w.Detail))
			}
		}
		if r := a.refusalOf(d.Name()); r != nil {
			dv.Refused = fmt.Sprintf("%s at seq %d: %s", r.Failure.Kind, r.Failure.Seq, r.Failure.Detail)
		}
		if !dv.OK {
			v.OK = false
		}
		v.Devices[d.Name()] = dv
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.st.putVerification(sctx, *v); err != nil {
		return v, fmt.Errorf("audit: store verification result: %w", err)
	}
	return v, nil
}

// LastVerification returns this node's last stored verification (nil when
// none was run). Compliance checks and the audit query read it.
func (a *Subsystem) LastVerification(ctx context.Context) (*audit.Verification, error) {
	if a.st.s == nil {
		return nil, errors.New("audit: not provisioned")
	}
	return a.st.verification(ctx, a.nodeID)
}
