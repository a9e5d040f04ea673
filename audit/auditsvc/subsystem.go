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
	// LifecycleTimeout bounds each opening and closing of a device, and the
	// wait for maintenance to stop, at unseal, seal and shutdown (default
	// 10s). A device whose disk hangs is then reported failed and retried
	// later, instead of hanging the seal (see Subsystem.Sealing).
	LifecycleTimeout time.Duration
	// WitnessTimeout bounds each read of a remote checkpoint witness when
	// a device opens or is verified (default DefaultWitnessTimeout).
	WitnessTimeout time.Duration
}

// DefaultLifecycleTimeout is Options.LifecycleTimeout's default.
const DefaultLifecycleTimeout = 10 * time.Second

// Host is what the audit subsystem uses of the server: its configuration
// blocks, whether it runs in -dev and where its data is, encrypted storage
// for salts, the checkpoint key and records, dispatching the internal
// request that records a change of the audit settings, and the
// registration of the broker, routes, health, header and metrics.
type Host interface {
	Logger() *slog.Logger
	Now() time.Time
	NodeID() string
	Dev() bool
	DataDir() string
	Config() *config.Config
	Storage() storage.Storage
	Sealed() bool
	Handle(ctx context.Context, req *core.Request) (*core.Response, error)
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
// they stop. Reload reopens the files on SIGHUP; Close closes the devices
// that record while sealed when the server shuts down.
type Subsystem struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	nodeID   string
	dev      bool
	settings Settings
	declared []*audit.DeviceConfig
	st       store
	dispatch func(ctx context.Context, req *core.Request) (*core.Response, error)

	broker  *audit.Broker
	watch   *diskwatch.Watcher
	metrics *audit.Metrics

	mu        sync.Mutex // serialises unseal, seal, enable, disable, close
	unsealed  atomic.Bool
	stopMaint context.CancelFunc
	maintDone chan struct{}
	diskLevel atomic.Int32
	// sealedDevs are the devices that record while sealed: those declared
	// in the configuration and, after a seal, those that were enabled.
	sealedDevs []deviceRef
	// headers are sys/config/auditing/request-headers, read by every
	// device's formatter.
	headers atomic.Pointer[[]vault.HeaderRule]

	// keyMu guards the checkpoint key, dropped at seal; pub is its public
	// half, kept (lock-free) once known.
	keyMu   sync.Mutex
	signer  ed25519.PrivateKey
	keyTime time.Time
	pub     atomic.Pointer[ed25519.PublicKey]

	busyMu sync.Mutex
	busy   map[string]chan struct{} // files whose previous writer is still hung

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

// deviceRef is a device's configuration and where it came from.
type deviceRef struct {
	dc     *audit.DeviceConfig
	source string
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
	if opts.LifecycleTimeout <= 0 {
		opts.LifecycleTimeout = DefaultLifecycleTimeout
	}
	return &Subsystem{opts: opts, busy: map[string]chan struct{}{}, refused: map[string]*refusal{}, bgStates: map[string]string{}}
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
// contribution, the X-Vigil-Audit-Status header and the metrics. The server
// starts sealed: the declared devices are opened in sealed mode (see
// Sealing) so that requests rejected before the first unseal are recorded.
func (a *Subsystem) Provision(s Host) error {
	a.log = s.Logger().With("component", "audit")
	a.now = a.opts.Now
	if a.now == nil {
		a.now = s.Now
	}
	a.nodeID = s.NodeID()
	a.dev = s.Dev()
	if !chain.ValidNodeID(a.nodeID) {
		return fmt.Errorf("audit: node id %q cannot be used in audit logs (letters, digits, '.', '_', ':' and '-')", a.nodeID)
	}
	cfg := s.Config()
	def := ProductionSettings()
	if a.dev {
		def = DevSettings(filepath.Dir(s.DataDir()))
	}
	settings, err := ParseSettingsWith(cfg.AuditSettings, def)
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
		a.sealedDevs = append(a.sealedDevs, deviceRef{dc, "config"})
	}
	for _, wb := range cfg.AuditWitnesses {
		w, err := ParseWitness(wb)
		if err != nil {
			return err
		}
		a.witnesses = append(a.witnesses, w)
	}
	a.st = store{s: s.Storage(), rand: a.opts.Rand, now: a.now}
	a.dispatch = s.Handle
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
	a.broker.SetRequireDurable(a.settings.RequireAudit)
	a.broker.SetSealedMode(true)
	if err := s.Metrics().Register(a.metrics); err != nil {
		return fmt.Errorf("audit: register metrics: %w", err)
	}
	s.SetAuditor(a.broker)
	s.SetForwardAuditor(a.broker)
	s.AddSysPart(routes{a})
	s.AddHealth(a.health)
	s.AddResponseHeaders(a.header)
	a.mu.Lock()
	a.openSealedMode(context.Background())
	a.mu.Unlock()
	return nil
}

// Settings returns the effective audit_settings (after Provision).
func (a *Subsystem) Settings() Settings { return a.settings }

// Unsealed loads the checkpoint key (creating it on first unseal), closes
// the sealed-mode devices, opens the declared and API-enabled devices with
// their salts and starts disk maintenance. A device that cannot be opened
// (or whose disk hangs) does not stop the server: it is reported failed,
// retried every few seconds, and — being enabled — fails requests closed
// while it is durable. A change of audit_settings since the last unseal is
// recorded as an internal request (see recordSettings).
func (a *Subsystem) Unsealed(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	key, created, err := a.st.signingKey(ctx)
	if err != nil {
		return fmt.Errorf("audit: checkpoint key: %w", err)
	}
	if err := a.loadHeaders(ctx); err != nil {
		return fmt.Errorf("audit: request headers: %w", err)
	}
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
	a.keyMu.Lock()
	a.signer, a.keyTime = key, created
	a.keyMu.Unlock()
	a.closeBounded(a.standIn(a.broker.Devices(), "being reopened at unseal"))
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
	// Drop the stand-ins of sealed-mode devices that are no longer enabled
	// (an API device removed by a snapshot restore).
	enabled := map[string]bool{}
	for _, dc := range a.declared {
		enabled[dc.Name] = true
	}
	for n := range api {
		enabled[n] = true
	}
	for _, d := range a.broker.Devices() {
		if !enabled[d.Name()] {
			a.broker.Remove(d.Name())
		}
	}
	a.unsealed.Store(true)
	a.broker.SetSealedMode(false)
	a.watch.Check()
	a.updateDiskLevel()
	mctx, cancel := context.WithCancel(context.Background())
	a.stopMaint, a.maintDone = cancel, make(chan struct{})
	tick, stop := a.opts.Ticker()
	go a.maintain(mctx, tick, stop, a.maintDone)
	a.recordSettings(ctx)
	return nil
}

// Sealing runs when the server seals (after sys/seal dropped the keys, or
// before, in an orderly shutdown): it stops maintenance, closes every
// device (each file device writes a final signed checkpoint, stored in the
// barrier when it is still open), stops the witnesses, forgets the
// checkpoint key, and puts the devices back in sealed mode: on their first
// write file devices continue the chain in a segment whose header names no
// key, with unsigned checkpoints, and every entry is written without the
// fields that need a salt, so requests rejected while sealed are recorded
// durably. Every step is bounded by Options.LifecycleTimeout: a device
// whose disk hangs is left failed, never hangs the seal.
func (a *Subsystem) Sealing(context.Context) {
	a.mu.Lock()
	stop, done := a.stopMaint, a.maintDone
	a.stopMaint = nil
	a.unsealed.Store(false)
	a.mu.Unlock()
	if stop != nil { // outside a.mu: maintenance may be waiting for it
		stop()
		select {
		case <-done:
		case <-time.After(a.opts.LifecycleTimeout):
			a.log.Error("audit maintenance did not stop in time (is an audit disk hung?); sealing anyway")
		}
	}
	if a.bgStop != nil {
		a.bgStop()
		done := make(chan struct{})
		go func() { defer close(done); a.bgWG.Wait() }()
		select {
		case <-done:
		case <-time.After(a.opts.LifecycleTimeout):
			a.log.Error("audit log verification did not stop in time; sealing anyway")
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.broker.SetSealedMode(true)
	devs := a.broker.Devices()
	var refs []deviceRef
	for _, d := range devs {
		refs = append(refs, deviceRef{d.Config, d.Source})
	}
	a.closeBounded(a.standIn(devs, "being reopened for the sealed state"))
	a.keyMu.Lock()
	clear(a.signer)
	a.signer, a.keyTime = nil, time.Time{}
	a.keyMu.Unlock()
	if len(refs) > 0 {
		a.sealedDevs = refs
	}
	a.openSealedMode(context.Background())
	a.stopWitnesses()
}

// stopWitnesses stops the witness pushers and the cluster witness, after
// the final checkpoints were offered to them, waiting at most
// Options.LifecycleTimeout. Caller holds a.mu.
func (a *Subsystem) stopWitnesses() {
	if a.stopWitness == nil {
		return
	}
	a.stopWitness()
	deadline := time.NewTimer(a.opts.LifecycleTimeout)
	defer deadline.Stop()
	for _, d := range a.witnessDone {
		select {
		case <-d:
		case <-deadline.C:
			a.log.Error("audit witnesses did not stop in time; sealing anyway")
			a.stopWitness = nil
			return
		}
	}
	a.stopWitness = nil
}

// Close closes every device (server shutdown), each bounded by
// Options.LifecycleTimeout.
func (a *Subsystem) Close(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeBounded(a.broker.RemoveAll())
	return nil
}

// standIn replaces each of devs in the broker by a device that is not open
// (its writes fail naming why) and returns devs, to be closed. While a
// device is being reopened it stays enabled: entries fail closed instead of
// going unrecorded.
func (a *Subsystem) standIn(devs []*audit.Device, why string) []*audit.Device {
	for _, d := range devs {
		a.broker.Add(audit.NewDevice(d.Config, d.Source, d.FormatOptions(), nil, errors.New(why)))
	}
	return devs
}

// openSealedMode adds a.sealedDevs to the broker in sealed mode. Each
// opens its file on its first write (lazySink): a device records while
// sealed only once there is something to record, so a server that unseals
// or stops with no request rejected in between leaves no key-less segment
// in its log. Caller holds a.mu.
func (a *Subsystem) openSealedMode(context.Context) {
	for _, r := range a.sealedDevs {
		dc := r.dc
		sink := &lazySink{open: func() (audit.Sink, error) {
			s, err := a.openBounded(context.Background(), dc, true)
			if err != nil {
				a.log.Error("audit device cannot record while sealed", "device", dc.Name, "error", err)
			}
			return s, err
		}}
		fopts := vault.Options{HMACAccessor: true, Headers: a.settings.RequestHeaders}
		a.broker.Add(audit.NewDevice(dc, r.source, fopts, sink, nil))
	}
}

// lazySink is a sealed-mode sink that opens on its first write. A failed
// open fails that write (the request is refused, fail closed) and is tried
// again at the next one.
type lazySink struct {
	open func() (audit.Sink, error)

	mu     sync.Mutex
	sink   audit.Sink
	closed bool
}

func (l *lazySink) get() (audit.Sink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, audit.ErrSinkClosed
	}
	if l.sink == nil {
		s, err := l.open()
		if err != nil {
			return nil, err
		}
		l.sink = s
	}
	return l.sink, nil
}

// Write opens the sink if needed and writes body to it.
func (l *lazySink) Write(ctx context.Context, body []byte) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Write(ctx, body)
}

// Close closes the sink if it was opened.
func (l *lazySink) Close() error {
	l.mu.Lock()
	l.closed = true
	s := l.sink
	l.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Close()
}

// closeBounded closes devs concurrently, waiting at most
// Options.LifecycleTimeout. A file whose writer does not close in time is
// marked busy until it does: nothing reopens it meanwhile, so a writer that
// wakes up late can never interleave with a new one.
func (a *Subsystem) closeBounded(devs []*audit.Device) {
	if len(devs) == 0 {
		return
	}
	deadline := time.NewTimer(a.opts.LifecycleTimeout)
	defer deadline.Stop()
	type closing struct {
		d    *audit.Device
		done chan struct{}
	}
	var all []closing
	for _, d := range devs {
		c := closing{d, make(chan struct{})}
		go func() {
			defer close(c.done)
			if err := d.Close(); err != nil {
				a.log.Error("closing audit device", "device", d.Name(), "error", err)
			}
		}()
		all = append(all, c)
	}
	for _, c := range all {
		select {
		case <-c.done:
		case <-deadline.C:
			deadline.Reset(0)
			a.log.Error("audit device did not close in time (is its disk hung?); going on without it", "device", c.d.Name())
			a.markBusy(c.d.Config.Path, c.done)
		}
	}
}

// markBusy records that path's previous writer is still running until done
// is closed.
func (a *Subsystem) markBusy(path string, done chan struct{}) {
	if path == "" {
		return
	}
	a.busyMu.Lock()
	a.busy[path] = done
	a.busyMu.Unlock()
	go func() {
		<-done
		a.busyMu.Lock()
		if a.busy[path] == done {
			delete(a.busy, path)
		}
		a.busyMu.Unlock()
	}()
}

func (a *Subsystem) isBusy(path string) bool {
	a.busyMu.Lock()
	defer a.busyMu.Unlock()
	return path != "" && a.busy[path] != nil
}

// errHung is the open error of a device whose previous writer is hung.
var errHung = errors.New("its previous writer is still stuck on the disk (device hung); it is retried once that writer finishes")

// openBounded opens dc's sink (in sealed mode: without salt or checkpoint
// key), waiting at most Options.LifecycleTimeout. If opening takes longer
// the device is reported failed; the late sink is closed when it arrives.
func (a *Subsystem) openBounded(ctx context.Context, dc *audit.DeviceConfig, sealed bool) (audit.Sink, error) {
	sink, _, err := a.openBoundedOpts(ctx, dc, sealed)
	return sink, err
}

func (a *Subsystem) openBoundedOpts(ctx context.Context, dc *audit.DeviceConfig, sealed bool) (audit.Sink, vault.Options, error) {
	if a.isBusy(dc.Path) {
		return nil, vault.Options{}, errHung
	}
	type result struct {
		sink  audit.Sink
		fopts vault.Options
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		if sealed {
			r.sink, r.err = a.openSealedSink(dc)
		} else {
			r.sink, r.fopts, r.err = a.openSink(ctx, dc)
		}
		ch <- r
	}()
	t := time.NewTimer(a.opts.LifecycleTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.sink, r.fopts, r.err
	case <-t.C:
		done := make(chan struct{})
		a.markBusy(dc.Path, done)
		go func() {
			defer close(done)
			if r := <-ch; r.sink != nil {
				_ = r.sink.Close()
			}
		}()
		return nil, vault.Options{}, fmt.Errorf("opening did not finish within %s (is its disk hung?)", a.opts.LifecycleTimeout)
	}
}

// openSealedSink opens dc for recording while sealed: a file device's
// chain continues without the checkpoint key (in the barrier): its lines go
// to a segment whose header names no key, with unsigned checkpoints, and the
// first signed checkpoint after unseal covers them. A stdout device writes
// as usual.
//
// The records the chain is held to — trusted checkpoints and the retention
// record — are in the barrier too, so a sealed-mode writer takes the log's
// own segment headers for what retention deleted (sealedRetention) and has
// no trusted checkpoint; at unseal the device reopens against those records,
// which finds any tampering, the sealed-mode lines included.
func (a *Subsystem) openSealedSink(dc *audit.DeviceConfig) (audit.Sink, error) {
	switch dc.Type {
	case audit.TypeStdout:
		return audit.NewStreamSink(a.opts.Stdout, dc.WriteTimeout), nil
	case audit.TypeFile:
		if err := os.MkdirAll(filepath.Dir(dc.Path), 0o700); err != nil {
			return nil, err
		}
		var faults *chain.Faults
		if a.opts.Faults != nil {
			faults = a.opts.Faults(dc.Name)
		}
		s, err := audit.OpenFileSink(dc, audit.FileEnv{NodeID: a.nodeID, DeletedThrough: sealedRetention(dc.Path), OnSync: a.metrics.OnSync(dc.Name),
			Now: a.now, Logger: a.log.With("device", dc.Name, "sealed", true), Faults: faults, WatchInterval: a.opts.WatchInterval})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown device type %q", dc.Type)
}

// sealedRetention is what a sealed-mode writer takes as the newest segment
// retention deleted: what the header of the current chain's oldest
// remaining segment says came before it (nil when the chain is whole).
func sealedRetention(path string) *chain.DeletedSegment {
	infos, err := chain.ListSegments(path)
	if err != nil || len(infos) == 0 {
		return nil
	}
	sort.SliceStable(infos, func(i, j int) bool { return infos[i].Index < infos[j].Index })
	start := infos[len(infos)-1].Header.ChainStart
	for _, si := range infos {
		if si.Header.ChainStart != start {
			continue
		}
		if si.FirstSeq == start || si.Index == 0 {
			return nil
		}
		return &chain.DeletedSegment{Index: si.Index - 1, LastSeq: si.Header.PrevSegmentLastSeq, LastHash: si.Header.PrevSegmentLastHash}
	}
	return nil
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

// open opens dc (bounded) and adds it to the broker (failed when it cannot
// be opened). Caller holds a.mu.
func (a *Subsystem) open(ctx context.Context, dc *audit.DeviceConfig, source string) *audit.Device {
	sink, fopts, err := a.openBoundedOpts(ctx, dc, false)
	if err != nil {
		a.log.Error("audit device cannot be opened; requests fail closed unless another device records", "device", dc.Name, "error", err)
	}
	d := audit.NewDevice(dc, source, fopts, sink, err)
	if old := a.broker.Add(d); old != nil {
		a.closeBounded([]*audit.Device{old})
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
	fopts := vault.Options{Raw: dc.LogRaw, HMACAccessor: dc.HMACAccessor, Headers: a.settings.RequestHeaders, HeaderRules: a.headerRules}
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
	a.keyMu.Lock()
	signer := a.signer
	a.keyMu.Unlock()
	return audit.OpenFileSink(dc, audit.FileEnv{
		NodeID: a.nodeID, Signer: signer, Trusted: trusted, DeletedThrough: retained, Relink: relink,
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
		sink, fopts, err := a.openBoundedOpts(ctx, d.Config, false)
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
