package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core"
)

// SegmentStart reads the header of a segment file (plain or gzip): the seq
// and hash its first line continues from, and its index. A log whose
// oldest surviving segment has index > 1 lost earlier segments to retention.
func SegmentStart(path string) (index uint64, after chain.StartAfter, err error) {
	rc, err := chain.FileSource(path).Open()
	if err != nil {
		return 0, after, err
	}
	defer rc.Close()
	line, err := bufio.NewReaderSize(rc, 64<<10).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, after, err
	}
	var h struct {
		Type    string              `json:"type"`
		Segment chain.SegmentHeader `json:"segment"`
	}
	if err := json.Unmarshal(line, &h); err != nil || h.Type != chain.TypeSegment {
		return 0, after, fmt.Errorf("%s: first line is not a segment header", path)
	}
	return h.Segment.Index, chain.StartAfter{Seq: h.Segment.PrevSegmentLastSeq, Hash: h.Segment.PrevSegmentLastHash}, nil
}

// VerifyFileLog verifies the log whose active file is path strictly (see
// chain.VerifyOptions.Strict): every segment in chain order, signatures
// against pub, each of the trusted checkpoints, node ids against node.
// When the oldest segments were deleted, a covered segments_deleted record
// must say retention deleted them (Report.Anchor "retention").
func VerifyFileLog(ctx context.Context, path, node string, pub ed25519.PublicKey, trusted []chain.Checkpoint) (*chain.Report, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a rotation may rename files while listing
		infos, err := chain.ListSegments(path)
		if err != nil {
			lastErr = err
			continue
		}
		if len(infos) == 0 {
			return nil, fmt.Errorf("no segments found for %s", path)
		}
		paths := make([]string, len(infos))
		for i, si := range infos {
			paths[i] = si.Path
		}
		opts := chain.VerifyOptions{PublicKey: pub, Checkpoints: trusted, NodeID: node, Strict: true}
		rep, err := chain.Verify(ctx, chain.FileSources(paths), opts)
		if err != nil {
			lastErr = err
			continue
		}
		return rep, nil
	}
	return nil, lastErr
}

// Verify checks every file device's log on this node strictly against
// every trusted checkpoint the witnesses hold (Raft storage, the other
// nodes' countersignatures, the streams, HTTP witnesses) and the
// checkpoint key. An open device first writes a checkpoint, so the lines
// written up to the call are covered and compared too. The outcome is
// stored in the barrier (sys/audit/verification/<node>) and returned. A
// device whose log cannot be read counts as failed.
func (a *Subsystem) Verify(ctx context.Context) (*Verification, error) {
	pub, ok := a.PublicKey()
	if !ok {
		return nil, core.ErrSealed
	}
	v := &Verification{Time: a.now().UTC(), OK: true, NodeID: a.nodeID, Devices: map[string]DeviceVerification{}}
	for _, d := range a.broker.Devices() {
		if d.Config.Type != TypeFile {
			continue
		}
		dv := DeviceVerification{Path: d.Config.Path}
		trusted := a.trustedCheckpoints(ctx, d.Config)
		if fs, ok := d.Sink().(*FileSink); ok {
			if cp, err := fs.W.Checkpoint(); err == nil {
				cp.Source = "this server's writer, now"
				trusted = append(trusted, cp)
			}
		}
		for _, cp := range trusted {
			dv.CheckpointSeq = max(dv.CheckpointSeq, cp.Seq)
			dv.TrustedSources = append(dv.TrustedSources, fmt.Sprintf("%s (seq %d)", cp.Source, cp.Seq))
		}
		rep, err := VerifyFileLog(ctx, d.Config.Path, a.nodeID, pub, trusted)
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
				a.metrics.tampered(d.Name(), dv.FailureKind, "verify")
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
