package auditsvc

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/witness"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Options tune the audit subsystem. The zero value is production's.
type Options struct {
	// Now overrides the server's clock for entries, checkpoints and disk
	// checks.
	Now func() time.Time
	// Stdout is where stdout devices write (default os.Stdout).
	Stdout io.Writer
	// Rand is the randomness for salts and the checkpoint key (default
	// crypto/rand).
	Rand io.Reader
	// Faults returns fault-injection hooks for a file device (tests).
	Faults func(device string) *chain.Faults
	// Statfs and Allocate override the disk watcher's filesystem calls.
	Statfs   diskwatch.StatfsFunc
	Allocate func(path string, n int64) error
	// Ticker drives maintenance (disk checks, reopening failed devices):
	// it returns the tick channel and a stop function. Default: a real
	// one-second ticker. Tests pass a channel they control.
	Ticker func() (<-chan time.Time, func())
	// Guards are the streaming shippers' segment guards (see also
	// Subsystem.AddSegmentGuard).
	Guards []diskwatch.SegmentGuard
	// WatchInterval overrides how often file devices check that their
	// active file still exists (default 1s).
	WatchInterval time.Duration
	// WitnessTimeout bounds each read of a remote checkpoint witness when
	// a device opens or is verified (default DefaultWitnessTimeout).
	WitnessTimeout time.Duration
}

// Host is what the audit subsystem uses of the server: its configuration
// blocks, encrypted storage for salts, the checkpoint key and records, and
// the registration of the broker, routes, health, header and metrics.
type Host interface {
	Logger() *slog.Logger
	Now() time.Time
	NodeID() string
	Config() *config.Config
	Storage() storage.Storage
	Sealed() bool
	Metrics() prometheus.Registerer
	SetAuditor(core.Auditor)
	// SetForwardAuditor: a standby records the requests it forwards.
	SetForwardAuditor(core.ForwardAuditor)
	AddSysPart(framework.Part)
	AddHealth(f func(ctx context.Context, hi *core.HealthInfo))
	AddResponseHeaders(f func(http.Header))
	// AddApplyHook sees the storage keys each replicated write changes (on
	// Raft's goroutine: it must not block): the cluster witness
	// countersigns other nodes' checkpoints from there.
	AddApplyHook(f func(keys []string))
}

// Subsystem plugs the audit broker into a server. Build it with
// NewSubsystem; the wiring (cmd/vigil/wire) provisions it first among the
// subsystems, so its devices open before the others start and close after
// they stop. Reload reopens the files on SIGHUP.
type Subsystem struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	nodeID   string
	settings Settings
	declared []*audit.DeviceConfig
	st       store

	broker  *audit.Broker
	watch   *diskwatch.Watcher
	metrics *audit.Metrics

	mu        sync.Mutex // serialises unseal, seal, enable, disable, verify, relink
	unsealed  atomic.Bool
	signer    ed25519.PrivateKey
	pub       atomic.Pointer[ed25519.PublicKey]
	keyTime   time.Time
	stopMaint context.CancelFunc
	maintDone chan struct{}
	diskLevel atomic.Int32

	// Witnesses: the cluster (Raft storage, countersigned by the other
	// nodes), HTTP witnesses, and the streams' checkpoint sources.
	cluster     *witness.Cluster
	witnesses   []*witness.HTTP
	pushers     []*pusher
	stopWitness context.CancelFunc
	witnessDone []chan struct{}
	srcMu       sync.Mutex
	sources     []audit.CheckpointSource

	// Devices refused at start, and relinks done by acknowledgements
	// (by request id, for the handler to report).
	refMu      sync.Mutex
	refused    map[string]*refusal
	relinks    sync.Map   // request id → *Relinked
	relinkErrs sync.Map   // request id → error
	witnessMu  sync.Mutex // serialises this server's witness records

	// Full verification of each file device's log after it opens (Open
	// itself re-verifies only from the newest trusted checkpoint).
	bgCtx    context.Context
	bgStop   context.CancelFunc
	bgWG     sync.WaitGroup
	bgStates map[string]string // device → running, ok, failed: ...
}

// NewSubsystem returns the audit subsystem. In cmd/vigil/wire:
//
//	auditsvc.NewSubsystem(auditsvc.Options{})
func NewSubsystem(opts Options) *Subsystem {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Ticker == nil {
		opts.Ticker = func() (<-chan time.Time, func()) {
			t := time.NewTicker(time.Second)
			return t.C, t.Stop
		}
	}
	return &Subsystem{opts: opts, refused: map[string]*refusal{}, bgStates: map[string]string{}}
}

// Name names the subsystem in logs and errors.
func (a *Subsystem) Name() string { return "audit" }

// EveryNode: the audit devices run on every unsealed node, standbys
// included (a standby records the requests it forwards).
func (a *Subsystem) EveryNode() bool { return true }

// Broker returns the broker (after Provision).
func (a *Subsystem) Broker() *audit.Broker { return a.broker }

// Watcher returns the disk watcher (after Provision).
func (a *Subsystem) Watcher() *diskwatch.Watcher { return a.watch }

// AddSegmentGuard registers a streaming shipper's guard: retention never
// deletes a segment a guard reports busy. Call it before or after Provision.
func (a *Subsystem) AddSegmentGuard(g diskwatch.SegmentGuard) {
	if a.watch != nil {
		a.watch.AddGuard(g)
		return
	}
	a.opts.Guards = append(a.opts.Guards, g)
}

// DeclaredDevices returns the devices declared in the configuration (after
// Provision); shippers use it to find segment paths.
func (a *Subsystem) DeclaredDevices() []*audit.DeviceConfig { return a.declared }

// Provision validates the audit configuration (unknown keys are errors naming
// the key and line) and installs the broker, the sys/ routes, the health
// contribution, the X-Vigil-Audit-Status header and the metrics.
func (a *Subsystem) Provision(s Host) error {
	a.log = s.Logger().With("component", "audit")
	a.now = a.opts.Now
	if a.now == nil {
		a.now = s.Now
	}
	a.nodeID = s.NodeID()
	if !chain.ValidNodeID(a.nodeID) {
		return fmt.Errorf("audit: node id %q cannot be used in audit logs (letters, digits, '.', '_', ':' and '-')", a.nodeID)
	}
	cfg := s.Config()
	settings, err := ParseSettings(cfg.AuditSettings)
	if err != nil {
		return err
	}
	a.settings = settings
	a.settings.RequestHeaders = vault.HeaderNames(settings.RequestHeaders)
	seenName, seenPath := map[string]bool{}, map[string]string{}
	for _, b := range cfg.Audit {
		dc, err := FromBlock(b)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if seenName[dc.Name] {
			return fmt.Errorf("config: %s:%d: audit device %q declared twice", b.File, b.Line, dc.Name)
		}
		if other, ok := seenPath[dc.Path]; ok && dc.Path != "" {
			return fmt.Errorf("config: %s:%d: audit devices %q and %q write the same file %s", b.File, b.Line, other, dc.Name, dc.Path)
		}
		seenName[dc.Name], seenPath[dc.Path] = true, dc.Name
		a.declared = append(a.declared, dc)
	}
	for _, wb := range cfg.AuditWitnesses {
		w, err := ParseWitness(wb)
		if err != nil {
			return err
		}
		a.witnesses = append(a.witnesses, w)
	}
	a.st = store{s: s.Storage(), rand: a.opts.Rand, now: a.now}
	a.cluster = witness.NewCluster(witness.ClusterConfig{Storage: s.Storage(), NodeID: a.nodeID, Now: a.now, Rand: a.opts.Rand,
		Logger: a.log.With("component", "audit-witness"),
		ClusterKey: func() ed25519.PublicKey {
			k, _ := a.PublicKey()
			return k
		}})
	s.AddApplyHook(a.cluster.OnApply)
	a.watch = diskwatch.New(diskwatch.Config{Statfs: a.opts.Statfs, Now: a.now, Logger: a.log, Guards: a.opts.Guards, Allocate: a.opts.Allocate})
	a.metrics = audit.NewMetrics(func() []*audit.Device { return a.broker.Devices() }, a.watch.States, a.now)
	a.metrics.SetRefusals(a.refusals)
	a.broker = audit.NewBroker(audit.BrokerConfig{Now: a.now, Logger: a.log, Metrics: a.metrics, DiskFull: a.watch.ReleaseReserve,
		BarrierSealed: s.Sealed, Intercept: a.interceptRelink})
	a.broker.SetRequired(len(a.declared) > 0)
	a.broker.SetSealed(true)
	if err := s.Metrics().Register(a.metrics); err != nil {
		return fmt.Errorf("audit: register metrics: %w", err)
	}
	s.SetAuditor(a.broker)
	s.SetForwardAuditor(a.broker)
	s.AddSysPart(routes{a})
	s.AddHealth(a.health)
	s.AddResponseHeaders(a.header)
	return nil
}

// Unsealed loads the checkpoint key (creating it on first unseal), opens
// the declared and API-enabled devices, writes the requests buffered while
// sealed and starts disk maintenance. A device that cannot be opened does
// not stop the server: it is reported failed, retried every few seconds,
// and — when no other device records — requests fail closed naming it.
func (a *Subsystem) Unsealed(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	key, created, err := a.st.signingKey(ctx)
	if err != nil {
		return fmt.Errorf("audit: checkpoint key: %w", err)
	}
	a.signer, a.keyTime = key, created
	pub := key.Public().(ed25519.PublicKey)
	a.pub.Store(&pub)
	if _, err := a.cluster.LoadKey(ctx); err != nil {
		// A standby's writes are forwarded to the leader; without a
		// leader (the other nodes still sealed) this fails, and the
		// witness loads the key when the first checkpoint to countersign
		// arrives.
		a.log.Warn("audit: no countersigning key for this node; it will not witness other nodes' checkpoints", "error", err)
	}
	wctx, stopWitness := context.WithCancel(context.Background())
	a.stopWitness = stopWitness
	a.witnessDone = nil
	cdone := make(chan struct{})
	go func() { defer close(cdone); a.cluster.Run(wctx) }()
	a.witnessDone = append(a.witnessDone, cdone)
	a.pushers = a.pushers[:0]
	for _, w := range a.witnesses {
		p := &pusher{w: w, a: a, next: map[string]chain.Checkpoint{}, wake: make(chan struct{}, 1)}
		done := make(chan struct{})
		go p.run(wctx, done)
		a.pushers = append(a.pushers, p)
		a.witnessDone = append(a.witnessDone, done)
	}
	ever, err := a.st.everEnabled(ctx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	api, err := a.st.devices(ctx)
	if err != nil {
		return fmt.Errorf("audit: load devices: %w", err)
	}
	if len(a.declared) > 0 && !ever {
		if err := a.st.setEverEnabled(ctx); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		ever = true
	}
	a.broker.SetRequired(ever || len(api) > 0 || len(a.declared) > 0)
	a.bgCtx, a.bgStop = context.WithCancel(context.Background())
	for _, dc := range a.declared {
		a.open(ctx, dc, "config")
	}
	names := make([]string, 0, len(api))
	for n := range api {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ad := api[n]
		dc, err := audit.ParseDeviceOptions(n, ad.Type, ad.Options, nil)
		if err != nil {
			a.log.Error("stored audit device is invalid", "device", n, "error", err)
			dc = &audit.DeviceConfig{Name: n, Type: ad.Type, Options: ad.Options, WriteTimeout: audit.DefaultWriteTimeout}
			a.broker.Add(audit.NewDevice(dc, "api", vault.Options{}, nil, err))
			continue
		}
		dc.Description, dc.Local = ad.Description, ad.Local
		a.open(ctx, dc, "api")
	}
	a.unsealed.Store(true)
	a.broker.SetSealed(false)
	if n, dropped := a.broker.FlushSealed(ctx); n > 0 || dropped > 0 {
		a.log.Info("recorded requests rejected while sealed", "count", n, "dropped", dropped)
	}
	a.watch.Check()
	a.updateDiskLevel()
	mctx, cancel := context.WithCancel(context.Background())
	a.stopMaint, a.maintDone = cancel, make(chan struct{})
	tick, stop := a.opts.Ticker()
	go a.maintain(mctx, tick, stop, a.maintDone)
	return nil
}

// Sealing stops maintenance and closes every device (each file device
// writes a final signed checkpoint and stores it).
func (a *Subsystem) Sealing(context.Context) {
	a.mu.Lock()
	stop, done := a.stopMaint, a.maintDone
	a.stopMaint = nil
	a.unsealed.Store(false)
	a.mu.Unlock()
	if stop != nil { // outside a.mu: maintenance may be waiting for it
		stop()
		<-done
	}
	if a.bgStop != nil {
		a.bgStop()
		a.bgWG.Wait()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.broker.SetSealed(true)
	for _, d := range a.broker.Devices() {
		a.watch.Remove(d.Name())
	}
	if err := a.broker.Close(); err != nil {
		a.log.Error("closing audit devices", "error", err)
	}
	// The final checkpoints were offered to the witnesses: push them, then stop.
	if a.stopWitness != nil {
		a.stopWitness()
		for _, d := range a.witnessDone {
			<-d
		}
		a.stopWitness = nil
	}
}

// Reload reopens every file device's active file (SIGHUP). A file that was
// deleted or moved is noticed and a new one started (recorded in the chain).
func (a *Subsystem) Reload() {
	for _, d := range a.broker.Devices() {
		if fs, ok := d.Sink().(*audit.FileSink); ok {
			if err := fs.W.Reopen(); err != nil {
				a.log.Error("audit device reopen failed", "device", d.Name(), "error", err)
			}
		}
	}
}

// open opens dc and adds it to the broker (failed when it cannot be opened).
func (a *Subsystem) open(ctx context.Context, dc *audit.DeviceConfig, source string) *audit.Device {
	sink, fopts, err := a.openSink(ctx, dc)
	if err != nil {
		a.log.Error("audit device cannot be opened; requests fail closed unless another device records", "device", dc.Name, "error", err)
	}
	d := audit.NewDevice(dc, source, fopts, sink, err)
	if old := a.broker.Add(d); old != nil {
		_ = old.Close()
	}
	if dc.Type == audit.TypeFile {
		a.watch.Add(a.target(d))
	}
	return d
}

func (a *Subsystem) openSink(ctx context.Context, dc *audit.DeviceConfig) (audit.Sink, vault.Options, error) {
	return a.openSinkWith(ctx, dc, nil, nil)
}

// openSinkWith opens dc; a file device is held to trusted (gathered from
// every witness when nil) or, with relink, starts a new linked chain.
func (a *Subsystem) openSinkWith(ctx context.Context, dc *audit.DeviceConfig, trusted []chain.Checkpoint, relink *chain.Link) (audit.Sink, vault.Options, error) {
	fopts := vault.Options{Raw: dc.LogRaw, HMACAccessor: dc.HMACAccessor, Headers: a.settings.RequestHeaders}
	salt, err := a.st.salt(ctx, dc.Name)
	if err != nil {
		return nil, fopts, fmt.Errorf("salt: %w", err)
	}
	fopts.Salt = salt
	switch dc.Type {
	case audit.TypeStdout:
		return audit.NewStreamSink(a.opts.Stdout, dc.WriteTimeout), fopts, nil
	case audit.TypeFile:
		if trusted == nil && relink == nil {
			trusted = a.trustedCheckpoints(ctx, dc)
		}
		retained, err := a.st.retention(ctx, a.nodeID, dc.Name, dc.Path)
		if err != nil {
			return nil, fopts, fmt.Errorf("load the retention record: %w", err)
		}
		s, err := a.openFile(ctx, dc, trusted, retained, relink)
		var re *chain.RefusalError
		if errors.As(err, &re) {
			return nil, fopts, refusedError(dc.Name, a.noteRefusal(dc.Name, re))
		}
		if err != nil {
			return nil, fopts, err // not a typed nil in the interface
		}
		a.verifyInBackground(dc, s, trusted)
		return s, fopts, nil
	}
	return nil, fopts, fmt.Errorf("unknown device type %q", dc.Type)
}

func (a *Subsystem) openFile(_ context.Context, dc *audit.DeviceConfig, trusted []chain.Checkpoint, retained *chain.DeletedSegment, relink *chain.Link) (*audit.FileSink, error) {
	if err := os.MkdirAll(filepath.Dir(dc.Path), 0o700); err != nil {
		return nil, err
	}
	var faults *chain.Faults
	if a.opts.Faults != nil {
		faults = a.opts.Faults(dc.Name)
	}
	name, path, node := dc.Name, dc.Path, a.nodeID
	return audit.OpenFileSink(dc, audit.FileEnv{
		NodeID: a.nodeID, Signer: a.signer, Trusted: trusted, DeletedThrough: retained, Relink: relink,
		CheckpointSink: func(cp chain.Checkpoint) error {
			for _, p := range a.pushers {
				p.offer(name, cp)
			}
			cj := audit.ToJSON(cp)
			cj.Device, cj.Path = name, path
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := a.st.putCheckpoint(ctx, node, name, cj)
			a.metrics.Witnessed("raft storage", err)
			return err
		},
		OnSync: a.metrics.OnSync(name), Now: a.now, Logger: a.log.With("device", name), Faults: faults,
		WatchInterval: a.opts.WatchInterval,
	})
}

// target describes a file device to the disk watcher.
func (a *Subsystem) target(d *audit.Device) diskwatch.Target {
	dc := d.Config
	return diskwatch.Target{
		Name: dc.Name, Dir: filepath.Dir(dc.Path), Thresholds: dc.Thresholds, ReserveBytes: dc.ReserveBytes,
		MaxBackups: dc.MaxBackups, MaxAge: time.Duration(dc.RetainDays) * 24 * time.Hour,
		Rotate: func() error {
			if fs, ok := d.Sink().(*audit.FileSink); ok {
				return fs.W.Rotate()
			}
			return nil
		},
		BeforeDelete: func(seg diskwatch.Segment) error {
			fs, ok := d.Sink().(*audit.FileSink)
			if !ok {
				return fmt.Errorf("audit device %q is not open: its chain cannot record the deletion", dc.Name)
			}
			infos, err := fs.W.Segments()
			if err != nil {
				return err
			}
			for _, si := range infos {
				if si.Path == seg.Path {
					if si.LastSeq == 0 {
						return fmt.Errorf("the end of %s is not known (the next segment is missing)", filepath.Base(seg.Path))
					}
					ds := chain.DeletedSegment{Index: si.Index, FirstSeq: si.FirstSeq, LastSeq: si.LastSeq, LastHash: si.LastHash, Name: filepath.Base(si.Path)}
					if err := fs.W.RecordDeletion([]chain.DeletedSegment{ds}, "retention deleted "+filepath.Base(si.Path)); err != nil {
						return err
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					return a.st.putRetention(ctx, a.nodeID, dc.Name, dc.Path, ds)
				}
			}
			return fmt.Errorf("%s is not a segment of the log", filepath.Base(seg.Path))
		},
		Segments: func() ([]diskwatch.Segment, error) {
			infos, err := chain.ListSegments(dc.Path)
			if err != nil {
				return nil, err
			}
			var out []diskwatch.Segment
			for _, si := range infos {
				if !si.Active {
					out = append(out, diskwatch.Segment{Path: si.Path, Created: si.Created, Size: si.Size})
				}
			}
			return out, nil
		},
	}
}

// maintain runs disk checks and retries devices that failed to open.
func (a *Subsystem) maintain(ctx context.Context, tick <-chan time.Time, stop func(), done chan struct{}) {
	defer close(done)
	defer stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		n++
		a.watch.Check()
		a.updateDiskLevel()
		if n%5 == 0 {
			a.retryFailedOpens(ctx)
		}
	}
}

func (a *Subsystem) updateDiskLevel() {
	lvl := diskwatch.LevelOK
	for _, s := range a.watch.States() {
		lvl = max(lvl, s.Level)
	}
	a.diskLevel.Store(int32(lvl))
}

func (a *Subsystem) retryFailedOpens(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.unsealed.Load() || ctx.Err() != nil {
		return
	}
	for _, d := range a.broker.Devices() {
		if d.Sink() != nil || ctx.Err() != nil || a.refusalOf(d.Name()) != nil {
			continue // a refused device waits for an operator's relink
		}
		sink, fopts, err := a.openSink(ctx, d.Config)
		if err != nil {
			continue
		}
		nd := audit.NewDevice(d.Config, d.Source, fopts, sink, nil)
		a.broker.Add(nd)
		if nd.Config.Type == audit.TypeFile {
			a.watch.Add(a.target(nd))
		}
		a.log.Info("audit device opened after earlier failure", "device", d.Name())
	}
}

// errAPIDisabled refuses sys/audit changes when the configuration says so.
var errAPIDisabled = &core.Error{Code: core.CodePermissionDenied, Msg: "audit devices cannot be changed through the API: audit_settings { allow_api_changes = false } in the server configuration"}

// Enable enables a device through the API and persists it. The device must
// open: an error (bad options, unwritable path) leaves nothing enabled.
func (a *Subsystem) Enable(ctx context.Context, name, typ, description string, opts map[string]string, local bool) error {
	if !a.settings.AllowAPIChanges {
		return errAPIDisabled
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := audit.ValidName(name); err != nil {
		return err
	}
	if a.broker.Device(name) != nil {
		return core.Invalid("path already in use: an audit device is enabled at %q", name+"/")
	}
	dc, err := audit.ParseDeviceOptions(name, typ, opts, nil)
	if err != nil {
		return err
	}
	dc.Description, dc.Local = description, local
	for _, d := range a.broker.Devices() {
		if dc.Path != "" && d.Config.Path == dc.Path {
			return core.Invalid("audit device %q already writes %s", d.Name(), dc.Path)
		}
	}
	api, err := a.st.devices(ctx)
	if err != nil {
		return err
	}
	sink, fopts, err := a.openSink(ctx, dc)
	if err != nil {
		_ = a.st.deleteSalt(ctx, name)
		return core.Invalid("audit device %q cannot be enabled: %v", name, err)
	}
	// The "ever enabled" marker goes first: if persisting the device then
	// fails, the marker alone makes audit required after a restart (fail
	// closed), whereas a device persisted without the marker could be lost
	// with audit silently optional.
	api[name] = apiDevice{Type: typ, Description: description, Options: opts, Local: local}
	err = a.st.setEverEnabled(ctx)
	if err == nil {
		err = a.st.putDevices(ctx, api)
	}
	if err != nil {
		_ = sink.Close()
		_ = a.st.deleteSalt(ctx, name)
		return fmt.Errorf("audit: persist device %q: %w", name, err)
	}
	d := audit.NewDevice(dc, "api", fopts, sink, nil)
	a.broker.Add(d)
	a.broker.SetRequired(true)
	if dc.Type == audit.TypeFile {
		a.watch.Add(a.target(d))
	}
	a.log.Info("audit device enabled", "device", name, "type", typ)
	return nil
}

// Disable disables an API-enabled device. Disabling the last device while
// audit is required is refused: every later request would fail closed,
// including the one that could enable a new device.
func (a *Subsystem) Disable(ctx context.Context, name string) error {
	if !a.settings.AllowAPIChanges {
		return errAPIDisabled
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.broker.Device(name)
	if d == nil {
		return nil // Vault: disabling a missing device succeeds
	}
	if d.Source == "config" {
		return core.Invalid("audit device %q is declared in the server configuration; remove it there", name)
	}
	if a.broker.Required() && len(a.broker.Devices()) == 1 {
		return core.Invalid("cannot disable %q: it is the last audit device and audit is required (requests would fail closed); enable another device first", name)
	}
	api, err := a.st.devices(ctx)
	if err != nil {
		return err
	}
	delete(api, name)
	if err := a.st.putDevices(ctx, api); err != nil {
		return err
	}
	a.broker.Remove(name)
	a.watch.Remove(name)
	if err := d.Close(); err != nil {
		a.log.Error("closing disabled audit device", "device", name, "error", err)
	}
	a.refMu.Lock()
	delete(a.refused, name)
	a.refMu.Unlock()
	err = errors.Join(a.st.deleteSalt(ctx, name), a.st.s.Delete(ctx, checkpointKey(a.nodeID, name)))
	a.log.Info("audit device disabled", "device", name)
	return err
}
