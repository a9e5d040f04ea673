package auditsvc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/witness"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// relink reports the relink the broker did for this very request (see
// interceptRelink), or explains why there was none.
func (r routes) relink(_ context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("device")
	if strings.TrimSpace(d.String("reason")) == "" {
		return nil, core.Invalid("reason is required: say why the old chain is set aside (it is recorded in the new chain's first line)")
	}
	if v, ok := r.a.relinks.LoadAndDelete(req.ID); ok {
		return &core.Response{Data: structMap(v)}, nil
	}
	if v, ok := r.a.relinkErrs.LoadAndDelete(req.ID); ok {
		return nil, v.(error)
	}
	dev := r.a.broker.Device(name)
	if dev == nil {
		return nil, core.Invalid("no audit device %q", name)
	}
	return nil, core.Invalid("audit device %q is not refused: its log matches its checkpoints, there is nothing to relink", name)
}

// writerFor returns the open chain writer of the named file device (the
// only one when name is "").
func (r routes) writerFor(name string) (*chain.Writer, error) {
	d, err := r.a.broker.FileDevice(name)
	if err != nil {
		return nil, core.Invalid("%v", err)
	}
	w, ok := r.a.broker.FileWriter(d.Name())
	if !ok {
		return nil, core.Errorf(core.CodeUnavailable, "audit device %q is not open", d.Name())
	}
	return w, nil
}

func proofErr(err error) error {
	if errors.Is(err, chain.ErrNoProof) {
		return core.Invalid("%v", err)
	}
	return err
}

func (r routes) proveInclusion(_ context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	seq := d.Int64("seq")
	if seq <= 0 {
		return nil, core.Invalid("seq is required: the audit line to prove")
	}
	w, err := r.writerFor(d.String("device"))
	if err != nil {
		return nil, err
	}
	var cp *chain.Checkpoint
	if s := d.Int64("checkpoint"); s > 0 {
		c, err := w.CheckpointAt(uint64(s))
		if err != nil {
			return nil, proofErr(err)
		}
		cp = &c
	}
	b, err := proveWith(w, uint64(seq), cp)
	if err != nil {
		return nil, proofErr(err)
	}
	return &core.Response{Data: structMap(b)}, nil
}

// proveWith proves seq against cp, or against the newest checkpoint
// (written now when seq is newer than the last one).
func proveWith(w *chain.Writer, seq uint64, cp *chain.Checkpoint) (*chain.InclusionBundle, error) {
	if last, _ := w.LastCheckpoint(); cp == nil && seq > last.Seq {
		if _, err := w.Checkpoint(); err != nil {
			return nil, err
		}
	}
	return w.Prove(seq, cp)
}

// Prove returns the inclusion proof of the line at seq of a file device's
// log (the only one when device is "") against the newest checkpoint.
func (a *Subsystem) Prove(device string, seq uint64) (*chain.InclusionBundle, error) {
	d, err := a.broker.FileDevice(device)
	if err != nil {
		return nil, err
	}
	w, ok := a.broker.FileWriter(d.Name())
	if !ok {
		return nil, fmt.Errorf("audit device %q is not open", d.Name())
	}
	return proveWith(w, seq, nil)
}

func (r routes) proveConsistency(_ context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	from := d.Int64("from")
	if from <= 0 {
		return nil, core.Invalid("from is required: the seq an earlier checkpoint covers")
	}
	w, err := r.writerFor(d.String("device"))
	if err != nil {
		return nil, err
	}
	a, err := w.CheckpointAt(uint64(from))
	if err != nil {
		return nil, proofErr(err)
	}
	var b *chain.Checkpoint
	if to := d.Int64("to"); to > 0 {
		c, err := w.CheckpointAt(uint64(to))
		if err != nil {
			return nil, proofErr(err)
		}
		b = &c
	}
	bundle, err := w.ProveConsistency(a, b)
	if err != nil {
		return nil, proofErr(err)
	}
	return &core.Response{Data: structMap(bundle)}, nil
}

// witnesses lists what every witness holds for this node's file devices
// (or the one named), newest first, with the checkpoint key.
func (r routes) witnesses(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("device")
	if node := d.String("node_id"); node != "" && node != r.a.nodeID {
		return r.nodeWitnesses(ctx, node, name)
	}
	devs := map[string]any{}
	for _, dev := range r.a.broker.Devices() {
		if dev.Config.Type != audit.TypeFile || name != "" && dev.Name() != name {
			continue
		}
		cps := r.a.trustedCheckpoints(ctx, dev.Config)
		if fs, ok := dev.Sink().(*audit.FileSink); ok {
			// Cover what was written up to now, so a verifier also
			// catches the end of the log being cut off.
			if cp, err := fs.W.Checkpoint(); err == nil && cp.Seq > 0 {
				cp.Source = "this server's writer, now"
				cps = append(cps, cp)
			}
		}
		sort.Slice(cps, func(i, j int) bool { return cps[i].Seq > cps[j].Seq })
		list := make([]any, 0, len(cps))
		for _, cp := range cps {
			m := structMap(cp.JSON())
			m["source"] = cp.Source
			list = append(list, m)
		}
		entry := map[string]any{"checkpoints": list, "file": filepath.Base(dev.Config.Path), "startup_verification": r.a.bgState(dev.Name())}
		if rf := r.a.refusalOf(dev.Name()); rf != nil {
			entry["refused"] = fmt.Sprintf("%s at seq %d: %s", rf.Failure.Kind, rf.Failure.Seq, rf.Failure.Detail)
		}
		devs[dev.Name()] = entry
	}
	if name != "" && len(devs) == 0 {
		return nil, core.Invalid("no file audit device %q", name)
	}
	return &core.Response{Data: map[string]any{"node_id": r.a.nodeID, "key_id": r.keyID(), "devices": devs}}, nil
}

// nodeWitnesses is what the cluster holds for another node's file devices:
// its checkpoints as it stored them in Raft and as the other nodes
// countersigned them. Requests run on the active node, which so answers
// for every node of the cluster.
func (r routes) nodeWitnesses(ctx context.Context, node, name string) (*core.Response, error) {
	if !chain.ValidNodeID(node) {
		return nil, core.Invalid("invalid node_id %q", node)
	}
	names, err := r.a.st.s.List(ctx, witness.KeyCheckpoints+node+"/")
	if err != nil {
		return nil, err
	}
	devs := map[string]any{}
	for _, dev := range names {
		if strings.HasSuffix(dev, "/") || name != "" && dev != name {
			continue
		}
		cps, err := r.a.cluster.Holdings(ctx, node, dev, "")
		if err != nil {
			return nil, err
		}
		sort.Slice(cps, func(i, j int) bool { return cps[i].Seq > cps[j].Seq })
		list := make([]any, 0, len(cps))
		for _, cp := range cps {
			m := structMap(cp.JSON())
			m["source"] = cp.Source
			list = append(list, m)
		}
		file := ""
		if cj, err := r.a.st.checkpoint(ctx, node, dev); err == nil && cj != nil && cj.Path != "" {
			file = filepath.Base(cj.Path)
		}
		devs[dev] = map[string]any{"checkpoints": list, "file": file}
	}
	if name != "" && len(devs) == 0 {
		return nil, core.Errorf(core.CodeNotFound, "the cluster holds no checkpoint of node %q's device %q", node, name)
	}
	return &core.Response{Data: map[string]any{"node_id": node, "key_id": r.keyID(), "devices": devs}}, nil
}

func (r routes) keyID() string {
	if pub, ok := r.a.PublicKey(); ok {
		return chain.KeyID(pub)
	}
	return ""
}

// witnessed is a record this server keeps as another Vigil's witness.
type witnessed struct {
	witness.Record
	Received time.Time `json:"received"`
}

func (r routes) witnessGet(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	var rec witnessed
	ok, err := storage.GetJSON(ctx, r.a.st.s, keyWitnessed+d.String("node")+"/"+d.String("device"), &rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: structMap(rec)}, nil
}

// witnessPut keeps the newest checkpoint another Vigil sends. The first
// record pins its key; later ones must be signed by it and must not go
// back: a node whose files were rolled back cannot make its witness forget.
func (r routes) witnessPut(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	node, device := d.String("node"), d.String("device")
	if !chain.ValidNodeID(node) {
		return nil, core.Invalid("invalid node id %q", node)
	}
	raw, err := json.Marshal(d.Map("checkpoint"))
	if err != nil {
		return nil, core.Invalid("checkpoint: %v", err)
	}
	var sc chain.SignedCheckpoint
	if err := json.Unmarshal(raw, &sc); err != nil || sc.Hash == "" || sc.Seq == 0 {
		return nil, core.Invalid("checkpoint is required: {node_id, seq, hash, tree_size, root, time, signature, key_id}")
	}
	cp, err := sc.Checkpoint()
	if err != nil {
		return nil, core.Invalid("checkpoint: %v", err)
	}
	if cp.NodeID != node {
		return nil, core.Invalid("the checkpoint is node %q's, not %q's", cp.NodeID, node)
	}
	key := d.String("public_key")
	pub, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(pub) != 32 {
		return nil, core.Invalid("public_key (base64 of the Ed25519 checkpoint key) is required")
	}
	if err := cp.Verify(pub); err != nil {
		return nil, core.Invalid("checkpoint: %v", err)
	}
	k := keyWitnessed + node + "/" + device
	r.a.witnessMu.Lock()
	defer r.a.witnessMu.Unlock()
	var prev witnessed
	ok, err := storage.GetJSON(ctx, r.a.st.s, k, &prev)
	if err != nil {
		return nil, err
	}
	if ok {
		switch {
		case prev.PublicKey != key:
			return nil, core.Invalid("this witness pinned key %s for %s/%s; the checkpoint is signed by key %s", prev.Checkpoint.KeyID, node, device, cp.KeyID)
		case cp.Seq < prev.Checkpoint.Seq:
			return nil, core.Invalid("this witness holds %s/%s's checkpoint at seq %d; refusing to go back to seq %d", node, device, prev.Checkpoint.Seq, cp.Seq)
		case cp.Seq == prev.Checkpoint.Seq && cp.Hash != prev.Checkpoint.Hash:
			return nil, core.Invalid("this witness holds a different checkpoint at seq %d for %s/%s: the chain forked", cp.Seq, node, device)
		}
	}
	rec := witnessed{Record: witness.Record{Device: device, Checkpoint: sc, PublicKey: key}, Received: r.a.now().UTC()}
	if err := storage.PutJSON(ctx, r.a.st.s, k, rec); err != nil {
		return nil, err
	}
	return &core.Response{Data: structMap(rec)}, nil
}

// structMap turns v into a JSON object map for a response.
func structMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("audit: response does not marshal: %v", err))
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
