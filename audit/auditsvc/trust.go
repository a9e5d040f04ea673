package auditsvc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/witness"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/storage"
)

// AddCheckpointSource registers a source consulted whenever a file device
// opens and by sys/audit/verify. Call it before the server unseals.
func (a *Subsystem) AddCheckpointSource(s audit.CheckpointSource) {
	a.srcMu.Lock()
	a.sources = append(a.sources, s)
	a.srcMu.Unlock()
}

// DefaultWitnessTimeout bounds each witness read at start and at verify.
const DefaultWitnessTimeout = 5 * time.Second

// trustedCheckpoints gathers what every witness holds for device: this
// node's stored checkpoint (Raft), the copies other nodes countersigned,
// each stream source and each HTTP witness. Only checkpoints signed by the
// checkpoint key are returned; unreachable witnesses and foreign
// signatures are logged and counted, never fatal (an outage of a remote
// witness must not stop audit).
func (a *Subsystem) trustedCheckpoints(ctx context.Context, dc *audit.DeviceConfig) []chain.Checkpoint {
	var cands []chain.Checkpoint
	if held, err := a.cluster.Holdings(ctx, a.nodeID, dc.Name, dc.Path); err != nil {
		a.log.Warn("audit: cannot read the cluster's checkpoints", "device", dc.Name, "error", err)
	} else {
		cands = append(cands, held...)
	}
	timeout := a.opts.WitnessTimeout
	if timeout <= 0 {
		timeout = DefaultWitnessTimeout
	}
	type res struct {
		cp   *chain.Checkpoint
		name string
		err  error
	}
	a.srcMu.Lock()
	srcs := append([]audit.CheckpointSource(nil), a.sources...)
	a.srcMu.Unlock()
	out := make(chan res, len(srcs)+len(a.witnesses))
	var wg sync.WaitGroup
	for _, s := range srcs {
		if s.Device != "" && s.Device != dc.Name {
			continue
		}
		if s.Device == "" && len(a.fileDeviceNames()) > 1 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cp, err := s.Latest(rctx, a.nodeID)
			if cp != nil {
				cp.Source = s.Name
			}
			out <- res{cp, s.Name, err}
		}()
	}
	for _, w := range a.witnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cp, err := w.Latest(rctx, a.nodeID, dc.Name)
			if errors.Is(err, witness.ErrNoRecord) {
				out <- res{name: "witness " + w.Name}
				return
			}
			out <- res{&cp, "witness " + w.Name, err}
		}()
	}
	wg.Wait()
	close(out)
	for r := range out {
		if r.err != nil {
			a.metrics.Witnessed(r.name, r.err)
			a.log.Warn("audit: a checkpoint witness could not be read; starting without it", "device", dc.Name, "witness", r.name, "error", r.err)
			continue
		}
		if r.cp != nil {
			cands = append(cands, *r.cp)
		}
	}
	pub, _ := a.PublicKey()
	ok, bad := witness.Verified(pub, a.nodeID, cands)
	for _, err := range bad {
		a.log.Warn("audit: ignoring a checkpoint not signed by this cluster's checkpoint key", "device", dc.Name, "error", err)
	}
	return ok
}

func (a *Subsystem) fileDeviceNames() []string {
	var out []string
	for _, dc := range a.declared {
		if dc.Type == audit.TypeFile {
			out = append(out, dc.Name)
		}
	}
	return out
}

// refusal is a file device refused at start.
type refusal struct {
	Failure chain.Failure
	Trusted *chain.Checkpoint
	Time    time.Time
}

// refusedError is what requests see while a device is refused.
func refusedError(name string, r *refusal) error {
	from := "its own checkpoints"
	if r.Trusted != nil {
		from = fmt.Sprintf("the trusted checkpoint at seq %d (%s)", r.Trusted.Seq, r.Trusted.Source)
	}
	return fmt.Errorf("refused to start: the audit log does not match %s: %s at seq %d (%s line %d): %s. "+
		"The log was left exactly as found. Investigate it (vigil audit verify), then acknowledge with "+
		"`vigil audit relink %s -reason \"...\"` (POST sys/audit/relink/%s) to move it aside and start a new chain linked to the old one",
		from, r.Failure.Kind, r.Failure.Seq, r.Failure.File, r.Failure.Line, r.Failure.Detail, name, name)
}

func (a *Subsystem) noteRefusal(name string, re *chain.RefusalError) *refusal {
	r := &refusal{Failure: *re.Failure, Trusted: re.Trusted, Time: a.now().UTC()}
	a.refMu.Lock()
	a.refused[name] = r
	a.refMu.Unlock()
	a.metrics.Tampered(name, string(re.Failure.Kind), "start")
	a.log.Error("audit device refused: its log does not match its trusted checkpoints", "device", name,
		"kind", re.Failure.Kind, "seq", re.Failure.Seq, "file", re.Failure.File, "detail", re.Failure.Detail)
	return r
}

func (a *Subsystem) refusalOf(name string) *refusal {
	a.refMu.Lock()
	defer a.refMu.Unlock()
	return a.refused[name]
}

// refusals reports refused devices and the kind found (for the metric).
func (a *Subsystem) refusals() map[string]string {
	a.refMu.Lock()
	defer a.refMu.Unlock()
	out := make(map[string]string, len(a.refused))
	for n, r := range a.refused {
		out[n] = string(r.Failure.Kind)
	}
	return out
}

// Relinked is the outcome of an acknowledged relink.
type Relinked struct {
	Device     string    `json:"device"`
	ChainStart uint64    `json:"chain_start"`
	MovedTo    string    `json:"moved_to"`
	Previous   uint64    `json:"previous_checkpoint_seq"`
	Failure    string    `json:"failure"`
	Reason     string    `json:"reason"`
	RequestID  string    `json:"request_id"`
	Actor      string    `json:"actor"`
	Time       time.Time `json:"time"`
}

// relinkPath is the route an operator acknowledges a refusal on.
const relinkPath = "sys/audit/relink/"

// interceptRelink runs before a request entry is written: when the
// request is an authorized acknowledgement on sys/audit/relink/<device>
// of a refused device, the device starts its new chain now, so that the
// acknowledgement itself is the first entry the new chain records (after
// its linked header). The route's handler then reports the outcome.
func (a *Subsystem) interceptRelink(ctx context.Context, ev *core.AuditEvent) {
	req := ev.Request
	if ev.Type != "request" || ev.Sealed || ev.Err != nil || req == nil || req.Decision == nil || !req.Decision.Allowed ||
		(req.Operation != core.OpUpdate && req.Operation != core.OpCreate) || !strings.HasPrefix(req.Path, relinkPath) {
		return
	}
	name := strings.Trim(strings.TrimPrefix(req.Path, relinkPath), "/")
	reason, _ := req.Data["reason"].(string)
	if strings.TrimSpace(reason) == "" || a.refusalOf(name) == nil {
		return // the handler explains
	}
	actor := ""
	if p := req.Principal; p != nil {
		actor = p.DisplayName
	}
	if _, err := a.relink(ctx, name, reason, req.ID, actor); err != nil {
		a.log.Error("audit relink failed", "device", name, "error", err)
		a.relinkErrs.Store(req.ID, err)
	}
}

// relink starts a refused device's new chain (chain.Relink) and records
// it in storage.
func (a *Subsystem) relink(ctx context.Context, name, reason, requestID, actor string) (*Relinked, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.refusalOf(name)
	d := a.broker.Device(name)
	if r == nil || d == nil || d.Config.Type != audit.TypeFile {
		return nil, core.Invalid("audit device %q is not refused: its log matches its checkpoints, there is nothing to relink", name)
	}
	link := chain.Link{Failure: r.Failure.Error(), Reason: reason, RequestID: requestID, Actor: actor}
	if r.Trusted != nil {
		link.Previous = r.Trusted.JSON()
	}
	trusted := a.trustedCheckpoints(ctx, d.Config)
	sink, fopts, err := a.openSinkWith(ctx, d.Config, trusted, &link)
	if err != nil {
		return nil, fmt.Errorf("audit: relink %q: %w", name, err)
	}
	nd := audit.NewDevice(d.Config, d.Source, fopts, sink, nil)
	if old := a.broker.Add(nd); old != nil {
		_ = old.Close()
	}
	a.watch.Add(a.target(nd))
	a.refMu.Lock()
	delete(a.refused, name)
	a.refMu.Unlock()
	fs := sink.(*audit.FileSink)
	_, start := fs.W.LastCheckpoint()
	out := &Relinked{Device: name, ChainStart: start, Previous: link.Previous.Seq, Failure: link.Failure, Reason: reason,
		RequestID: requestID, Actor: actor, Time: a.now().UTC()}
	if segs, err := fs.W.Segments(); err == nil && len(segs) > 0 && segs[0].Header.Link != nil {
		out.MovedTo = segs[0].Header.Link.MovedTo
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := storage.PutJSON(sctx, a.st.s, fmt.Sprintf("%s%s/%s/%020d", keyRelinks, a.nodeID, name, start), out); err != nil {
		a.log.Error("audit: storing the relink record", "device", name, "error", err)
	}
	a.relinks.Store(requestID, out)
	a.log.Warn("audit device relinked: a new chain was started after an acknowledged refusal", "device", name,
		"chain_start", start, "moved_to", out.MovedTo, "actor", actor, "reason", reason)
	return out, nil
}

// pusher hands checkpoints to one HTTP witness, newest only, off the
// write path.
type pusher struct {
	w    *witness.HTTP
	a    *Subsystem
	mu   sync.Mutex
	next map[string]chain.Checkpoint // device → newest not yet pushed
	wake chan struct{}
}

func (p *pusher) offer(device string, cp chain.Checkpoint) {
	p.mu.Lock()
	p.next[device] = cp
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pusher) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	for {
		stopping := false
		select {
		case <-p.wake:
		case <-ctx.Done():
			stopping = true
		}
		p.flush(stopping)
		if stopping {
			return
		}
	}
}

func (p *pusher) flush(final bool) {
	p.mu.Lock()
	batch := p.next
	p.next = map[string]chain.Checkpoint{}
	p.mu.Unlock()
	names := make([]string, 0, len(batch))
	for n := range batch {
		names = append(names, n)
	}
	sort.Strings(names)
	pub, _ := p.a.PublicKey()
	key := ""
	if pub != nil {
		key = base64.StdEncoding.EncodeToString(pub)
	}
	for _, dev := range names {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultWitnessTimeout)
		err := p.w.Push(ctx, dev, batch[dev], key)
		cancel()
		p.a.metrics.Witnessed("witness "+p.w.Name, err)
		if err != nil {
			p.a.log.Warn("audit: a checkpoint witness did not accept a checkpoint", "witness", p.w.Name, "device", dev, "error", err)
			if !final {
				p.mu.Lock()
				if _, newer := p.next[dev]; !newer {
					p.next[dev] = batch[dev] // retried with the next one
				}
				p.mu.Unlock()
			}
		}
	}
}

// ParseWitness reads an audit_witness block: `audit_witness "http" { url
// = "https://...", name = "...", token = "...", header = ["K: V"], timeout
// = "5s" }`. The URL may hold {node} and {device}.
func ParseWitness(b config.Block) (*witness.HTTP, error) {
	if b.Type != "http" {
		return nil, fmt.Errorf("config: %s:%d: unknown audit_witness type %q (supported: http)", b.File, b.Line, b.Type)
	}
	if err := b.Unknown("url", "name", "token", "header", "timeout"); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	u, _ := b.Get("url")
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, fmt.Errorf("config: %s:%d: audit_witness \"http\": url must be an http:// or https:// URL", b.File, b.Line)
	}
	name, _ := b.Get("name")
	if name == "" {
		name = u
	}
	timeout := DefaultWitnessTimeout
	if v, ok := b.Options["timeout"]; ok {
		d, err := config.ParseDuration(v.Value)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("config: %s: audit_witness timeout: expected a duration", v.Where())
		}
		timeout = d
	}
	h := http.Header{}
	if tok, ok := b.Get("token"); ok && tok != "" {
		h.Set("X-Vault-Token", tok)
	}
	if v, ok := b.Options["header"]; ok {
		list := v.List
		if len(list) == 0 && v.Value != "" {
			list = []string{v.Value}
		}
		for _, kv := range list {
			k, val, ok := strings.Cut(kv, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("config: %s: audit_witness header %q: expected \"Name: value\"", v.Where(), kv)
			}
			h.Add(strings.TrimSpace(k), strings.TrimSpace(val))
		}
	}
	return &witness.HTTP{Name: name, URL: u, Header: h, Client: &http.Client{Timeout: timeout}}, nil
}

// verifyInBackground verifies a file device's whole log strictly once it
// has opened (Open re-verified only from the newest trusted checkpoint):
// tampering with older segments is found without delaying the start. On
// failure the device is refused, as if Open had found it.
func (a *Subsystem) verifyInBackground(dc *audit.DeviceConfig, fs *audit.FileSink, trusted []chain.Checkpoint) {
	ctx := a.bgCtx
	if ctx == nil {
		return
	}
	a.setBgState(dc.Name, "running")
	a.bgWG.Add(1)
	go func() {
		defer a.bgWG.Done()
		pub, _ := a.PublicKey()
		rep, err := audit.VerifyFileLog(ctx, dc.Path, a.nodeID, pub, trusted)
		switch {
		case ctx.Err() != nil:
			a.setBgState(dc.Name, "interrupted")
			return
		case err != nil:
			a.setBgState(dc.Name, "error: "+err.Error())
			a.log.Error("audit: verifying the log after start failed", "device", dc.Name, "error", err)
			return
		case rep.OK:
			a.setBgState(dc.Name, "ok")
			return
		}
		a.setBgState(dc.Name, "failed: "+rep.Failure.Error())
		a.refuseOpened(ctx, dc, fs, rep.Failure)
	}()
}

func (a *Subsystem) setBgState(name, st string) {
	a.refMu.Lock()
	a.bgStates[name] = st
	a.refMu.Unlock()
}

func (a *Subsystem) bgState(name string) string {
	a.refMu.Lock()
	defer a.refMu.Unlock()
	return a.bgStates[name]
}

// refuseOpened refuses a device whose log failed the verification after
// start: it stops writing to it, and requests see why.
func (a *Subsystem) refuseOpened(ctx context.Context, dc *audit.DeviceConfig, fs *audit.FileSink, f *chain.Failure) {
	for i := 0; i < 500 && ctx.Err() == nil; i++ { // the device may not be in the broker yet
		a.mu.Lock()
		d := a.broker.Device(dc.Name)
		if d != nil && d.Sink() == audit.Sink(fs) {
			var trusted *chain.Checkpoint
			if last, _ := fs.W.LastCheckpoint(); last.Seq > 0 {
				last.Source = "this device's checkpoint at start"
				trusted = &last
			}
			r := a.noteRefusal(dc.Name, &chain.RefusalError{Failure: f, Trusted: trusted})
			nd := audit.NewDevice(dc, d.Source, d.FormatOptions(), nil, refusedError(dc.Name, r))
			if old := a.broker.Add(nd); old != nil {
				_ = old.Close()
			}
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		if d != nil && d.Sink() != nil && d.Sink() != audit.Sink(fs) {
			return // replaced meanwhile
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}
