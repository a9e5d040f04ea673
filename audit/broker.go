package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/core"
)

// ErrNoDevice is the failure when audit is required (devices are declared
// in the configuration, or were ever enabled) but none is enabled.
var ErrNoDevice = &core.Error{Code: core.CodeAuditFailed, Msg: "no audit device is enabled, but audit is required (devices are declared in the configuration or were enabled before); enable one with sys/audit or fix the configuration"}

// ErrNotOpen is the failure for an event made while the barrier is open but
// the devices are not (they are being opened at unseal or were just closed
// for sealing).
var ErrNotOpen = &core.Error{Code: core.CodeAuditFailed, Msg: "audit devices are not open (the server is unsealing or sealing); retry"}

// ErrNoDurableDevice is the failure while audit_settings { require_audit =
// true } and no durable device is enabled: every request is refused except
// those that seal the server or read or change the audit devices.
var ErrNoDurableDevice = &core.Error{Code: core.CodeAuditFailed, Msg: "no durable audit device is enabled (a file device with fsync = \"always\"): until one is, only seal, unseal, health and the sys/audit device configuration are served (audit_settings { require_audit = true })"}

// Device is one enabled audit device: its options, its formatting and its
// sink. The sink is nil while the device could not be opened; writes then
// fail with the open error.
type Device struct {
	Config *DeviceConfig
	// Source is "config" (declared in the server configuration) or "api".
	Source string

	fopts vault.Options

	mu      sync.RWMutex
	sink    Sink
	openErr error

	failed  atomic.Bool
	lastErr atomic.Pointer[string]
	// ctrs caches the device's entry counters (see Metrics.recordedOn).
	ctrs  atomic.Pointer[deviceCounters]
	okN   atomic.Uint64
	failN atomic.Uint64
}

// NewDevice returns a device rendering with fopts into sink (which may be
// nil with openErr explaining why).
func NewDevice(dc *DeviceConfig, source string, fopts vault.Options, sink Sink, openErr error) *Device {
	d := &Device{Config: dc, Source: source, fopts: fopts, sink: sink, openErr: openErr}
	if sink == nil {
		msg := "not open"
		if openErr != nil {
			msg = openErr.Error()
		}
		d.failed.Store(true)
		d.lastErr.Store(&msg)
	}
	return d
}

// Name is the device's name (its sys/audit path without the slash).
func (d *Device) Name() string { return d.Config.Name }

// Durable reports whether the device counts towards acknowledging an entry:
// a file device with fsync = "always", which has the entry on disk when its
// write returns. Other devices (stdout, files that fsync on an interval or
// never) are written too, but never acknowledge.
func (d *Device) Durable() bool { return Durable(d.Config) }

// Durable reports whether devices configured as dc are durable (see
// Device.Durable).
func Durable(dc *DeviceConfig) bool { return dc.Type == TypeFile && dc.Fsync == chain.FsyncAlways }

// options returns how the device renders an event: with its salt while
// unsealed; while sealed without it, so tokens, accessors and data are left
// out (never written in clear, whatever log_raw says).
func (d *Device) options(sealed bool) vault.Options {
	if sealed {
		return vault.Options{HMACAccessor: true, Headers: d.fopts.Headers}
	}
	return d.fopts
}

// Sink returns the device's sink (nil when not open).
func (d *Device) Sink() Sink {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.sink
}

// Failed reports whether the device's last write (or its opening) failed,
// and the error.
func (d *Device) Failed() (bool, string) {
	if !d.failed.Load() {
		return false, ""
	}
	if p := d.lastErr.Load(); p != nil {
		return true, *p
	}
	return true, "failed"
}

func (d *Device) note(err error) {
	if err == nil {
		d.okN.Add(1)
		if d.failed.Load() {
			d.failed.Store(false)
			d.lastErr.Store(nil)
		}
		return
	}
	d.failN.Add(1)
	msg := err.Error()
	d.lastErr.Store(&msg)
	d.failed.Store(true)
}

// Close closes the sink (the device then fails writes with "device closed").
func (d *Device) Close() error {
	d.mu.Lock()
	s := d.sink
	d.sink = nil
	d.openErr = errors.New("device closed")
	d.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Close()
}

// BrokerConfig configures a Broker.
type BrokerConfig struct {
	Now    func() time.Time
	Logger *slog.Logger
	// DiskFull is called when a device reports ENOSPC; it returns true when
	// space was released (the emergency reserve), and the write is retried
	// once.
	DiskFull func(device string) bool
	// Metrics, when set, counts entries and failures.
	Metrics *Metrics
	// Intercept, when set, sees every request event before it is written
	// (the audit subsystem starts a relinked chain there, so that the
	// acknowledgement is the new chain's first entry).
	Intercept func(ctx context.Context, ev *core.AuditEvent)
	// BarrierSealed reports whether the server's barrier is sealed. While
	// it is, events are rendered without salts (see Device.options). While
	// the devices are the sealed-mode ones (SetSealedMode) but the barrier
	// is open — the moments between unsealing and the devices reopening —
	// events fail closed with ErrNotOpen.
	BarrierSealed func() bool
}

// Broker fans audit events out to the enabled devices. It implements
// core.Auditor: an event is recorded when every durable device (see
// Device.Durable) has it on disk; with no durable device enabled, when any
// device records it. Non-durable devices are written alongside but never
// acknowledge. Each device write is bounded by the device's write_timeout,
// so a hung device fails instead of hanging requests. All methods are safe
// for concurrent use.
type Broker struct {
	cfg BrokerConfig

	mu             sync.RWMutex
	devs           []*Device // sorted by name
	required       atomic.Bool
	requireDurable atomic.Bool
	sealedMode     atomic.Bool
}

var _ core.Auditor = (*Broker)(nil)

// NewBroker returns a broker with no devices.
func NewBroker(cfg BrokerConfig) *Broker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Broker{cfg: cfg}
}

// SetRequired sets the zero-devices policy: when required, an event with
// no enabled device fails (ErrNoDevice); otherwise it is let through
// unrecorded and health reports audit as "critical" (unconfigured).
func (b *Broker) SetRequired(v bool) { b.required.Store(v) }

// Required reports the zero-devices policy.
func (b *Broker) Required() bool { return b.required.Load() }

// SetRequireDurable sets audit_settings { require_audit }: while no durable
// device is enabled, every event fails with ErrNoDurableDevice except those
// of the requests listed by GateExempt (and those made while sealed).
func (b *Broker) SetRequireDurable(v bool) { b.requireDurable.Store(v) }

// RequireDurable reports the require_audit setting.
func (b *Broker) RequireDurable() bool { return b.requireDurable.Load() }

// SetSealedMode says whether the enabled devices are the sealed-mode ones,
// which record without salts (set from before the barrier seals until
// after the devices reopen at unseal).
func (b *Broker) SetSealedMode(v bool) { b.sealedMode.Store(v) }

// Routes of the audit settings, relative to sys/ (served by auditsvc).
const (
	SettingsPath       = "audit/settings"
	SettingsRecordPath = "audit/settings/record"
)

// GateExempt reports whether req is served while require_audit is on and
// no durable device is enabled: sealing the server, and listing, enabling
// or disabling audit devices (so that a durable one can be enabled).
// Unaudited routes (health, seal status, unseal, init) never reach the
// broker.
func GateExempt(req *core.Request) bool {
	if req == nil || req.Malformed != nil {
		return false
	}
	p := strings.TrimSuffix(req.Path, "/")
	switch {
	case p == "sys/seal":
		return true
	case p == "sys/audit" || p == "sys/"+SettingsPath:
		return req.Operation == core.OpRead
	case p == "sys/"+SettingsRecordPath:
		return req.Internal
	case strings.HasPrefix(p, "sys/audit/"):
		name := p[len("sys/audit/"):]
		switch req.Operation {
		case core.OpUpdate, core.OpCreate, core.OpDelete:
			return !strings.Contains(name, "/") && !reservedNames[name]
		}
	}
	return false
}

// hasDurable reports whether devs has a durable device.
func hasDurable(devs []*Device) bool {
	for _, d := range devs {
		if d.Durable() {
			return true
		}
	}
	return false
}

// Add enables d, replacing a device of the same name (which is returned so
// the caller can close it).
func (b *Broker) Add(d *Device) (old *Device) {
	b.mu.Lock()
	defer b.mu.Unlock()
	devs := make([]*Device, 0, len(b.devs)+1)
	for _, x := range b.devs {
		if x.Name() == d.Name() {
			old = x
			continue
		}
		devs = append(devs, x)
	}
	devs = append(devs, d)
	sort.Slice(devs, func(i, j int) bool { return devs[i].Name() < devs[j].Name() })
	b.devs = devs
	return old
}

// Remove disables the named device and returns it (nil if absent).
func (b *Broker) Remove(name string) *Device {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.devs {
		if x.Name() == name {
			b.devs = append(append([]*Device(nil), b.devs[:i]...), b.devs[i+1:]...)
			return x
		}
	}
	return nil
}

// Devices returns the enabled devices, sorted by name.
func (b *Broker) Devices() []*Device {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.devs
}

// Device returns the named device.
func (b *Broker) Device(name string) *Device {
	for _, d := range b.Devices() {
		if d.Name() == name {
			return d
		}
	}
	return nil
}

// LogRequest records a request entry (see core.Auditor).
func (b *Broker) LogRequest(ctx context.Context, ev *core.AuditEvent) error { return b.log(ctx, ev) }

// LogResponse records a response entry (see core.Auditor).
func (b *Broker) LogResponse(ctx context.Context, ev *core.AuditEvent) error {
	return b.log(ctx, ev)
}

// log formats ev for every device (synchronously: the request must not be
// read once the call returns) and writes it, returning once every durable
// device recorded it (or, without a durable device, once any device did).
// Writes use a context detached from the client's: a client that goes away
// must not stop the record of what it did.
func (b *Broker) log(ctx context.Context, ev *core.AuditEvent) error {
	sealed := ev.Sealed || b.cfg.BarrierSealed != nil && b.cfg.BarrierSealed()
	if !sealed && b.sealedMode.Load() && (b.required.Load() || b.requireDurable.Load()) {
		b.cfg.Metrics.refused(ev.Type)
		return ErrNotOpen
	}
	if b.cfg.Intercept != nil && ev.Type == "request" {
		b.cfg.Intercept(ctx, ev)
	}
	devs := b.Devices()
	exempt := !sealed && GateExempt(ev.Request)
	durable := hasDurable(devs)
	if !sealed && !exempt && !durable && b.requireDurable.Load() {
		b.cfg.Metrics.refused(ev.Type)
		return ErrNoDurableDevice
	}
	if len(devs) == 0 {
		// While sealed, only the configured devices are known; with none,
		// there is nowhere to record a rejection.
		if b.required.Load() && !sealed && !exempt {
			b.cfg.Metrics.refused(ev.Type)
			return ErrNoDevice
		}
		b.cfg.Metrics.unaudited()
		return nil
	}
	// A gate-exempt request made while no durable device exists is
	// recorded where possible, but not refused when nothing records it:
	// it may be the one that enables a durable device.
	bestEffort := exempt && !durable
	ctx = context.WithoutCancel(ctx)
	var err error
	if len(devs) == 1 {
		err = b.write(ctx, devs[0], ev, sealed)
	} else {
		err = b.logMany(ctx, devs, ev, sealed, durable)
	}
	if err != nil && !bestEffort {
		b.cfg.Metrics.refused(ev.Type)
		return err
	}
	return nil
}

// logMany writes ev to several devices concurrently. With a durable device
// among them it returns once every durable device has answered — an error
// if any failed — and leaves the others to finish on their own; without
// one, it returns at the first device that records ev. (Apart from log so
// that ctx does not escape there.)
func (b *Broker) logMany(ctx context.Context, devs []*Device, ev *core.AuditEvent, sealed, durable bool) error {
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(devs))
	for i, d := range devs {
		body, err := vault.Format(ev, d.options(sealed))
		if err != nil {
			d.note(err)
			results <- result{i, deviceError(d.Name(), err)}
			continue
		}
		go func() { results <- result{i, b.writeBody(ctx, d, ev.Type, body)} }()
	}
	var errs []error
	if durable {
		waiting := 0
		for _, d := range devs {
			if d.Durable() {
				waiting++
			}
		}
		for waiting > 0 {
			r := <-results
			if !devs[r.i].Durable() {
				continue
			}
			waiting--
			if r.err != nil {
				errs = append(errs, r.err)
			}
		}
		return errors.Join(errs...)
	}
	for range devs {
		r := <-results
		if r.err == nil {
			return nil
		}
		errs = append(errs, r.err)
	}
	return errors.Join(errs...)
}

// WriteTo records ev on d alone, as an unsealed event. Changing the devices
// uses it so the device being enabled or disabled records the change too.
func (b *Broker) WriteTo(ctx context.Context, d *Device, ev *core.AuditEvent) error {
	return b.write(context.WithoutCancel(ctx), d, ev, false)
}

// bodyPool recycles entry buffers of single-device writes (the sinks copy
// what they keep; see Sink).
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBody caps the buffers kept in bodyPool.
const maxPooledBody = 64 << 10

func (b *Broker) write(ctx context.Context, d *Device, ev *core.AuditEvent, sealed bool) error {
	bp := bodyPool.Get().(*[]byte)
	body, err := vault.AppendFormat((*bp)[:0], ev, d.options(sealed))
	if err != nil {
		bodyPool.Put(bp)
		d.note(err)
		return deviceError(d.Name(), err)
	}
	err = b.writeBody(ctx, d, ev.Type, body)
	if cap(body) <= maxPooledBody {
		*bp = body[:0]
		bodyPool.Put(bp)
	}
	return err
}

// writeBody writes body, which vault.Format produced, to d's sink.
func (b *Broker) writeBody(ctx context.Context, d *Device, typ string, body []byte) error {
	d.mu.RLock()
	sink, openErr := d.sink, d.openErr
	d.mu.RUnlock()
	if sink == nil {
		if openErr == nil {
			openErr = errors.New("not open")
		}
		err := fmt.Errorf("cannot open: %w", openErr)
		d.note(err)
		b.cfg.Metrics.failure(d.Name())
		return deviceError(d.Name(), err)
	}
	// Each write is bounded by the device's write_timeout: by a context
	// deadline, or by the sink itself (a file sink's writer has the same
	// timeout, and a deadline per entry costs a timer and allocations).
	wctx, start := ctx, time.Time{}
	if selfTimed(sink, d.Config.WriteTimeout) {
		start = time.Now()
	} else {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, d.Config.WriteTimeout)
		defer cancel()
	}
	err := writeFormatted(wctx, sink, body)
	if err != nil && errors.Is(err, chain.ErrDiskFull) && b.cfg.DiskFull != nil && b.cfg.DiskFull(d.Name()) {
		b.cfg.Logger.Warn("audit device disk full: emergency reserve released, retrying", "device", d.Name())
		if !start.IsZero() { // the retry gets what is left of the write_timeout
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, start.Add(d.Config.WriteTimeout))
			defer cancel()
		}
		err = writeFormatted(wctx, sink, body)
	}
	d.note(err)
	if err != nil {
		b.cfg.Metrics.failure(d.Name())
		b.cfg.Logger.Error("audit device write failed", "device", d.Name(), "error", err)
		return deviceError(d.Name(), err)
	}
	b.cfg.Metrics.recordedOn(d, typ)
	return nil
}

// RemoveAll disables every device and returns them (for the caller to close).
func (b *Broker) RemoveAll() []*Device {
	b.mu.Lock()
	defer b.mu.Unlock()
	devs := b.devs
	b.devs = nil
	return devs
}

// Close closes every device.
func (b *Broker) Close() error {
	devs := b.RemoveAll()
	var errs []error
	for _, d := range devs {
		if err := d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close audit device %q: %w", d.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// FileDevice returns the file device named name or, with name "", the only
// file device enabled (an error when there are none or several). Streams
// and the query index follow it.
func (b *Broker) FileDevice(name string) (*Device, error) {
	var d *Device
	if name != "" {
		if d = b.Device(name); d == nil {
			return nil, fmt.Errorf("audit device %q is not enabled", name)
		}
	} else {
		var files []*Device
		for _, x := range b.Devices() {
			if x.Config.Type == TypeFile {
				files = append(files, x)
			}
		}
		if len(files) != 1 {
			return nil, fmt.Errorf("%d file audit devices are enabled; name the one to follow", len(files))
		}
		d = files[0]
	}
	if d.Config.Type != TypeFile || d.Config.Path == "" {
		return nil, fmt.Errorf("audit device %q is not a file device", d.Name())
	}
	return d, nil
}

// FileWriter returns the open chain writer of the file device named name
// (false while it is not enabled or not open).
func (b *Broker) FileWriter(name string) (*chain.Writer, bool) {
	d := b.Device(name)
	if d == nil {
		return nil, false
	}
	fs, ok := d.Sink().(*FileSink)
	if !ok || fs == nil || fs.W == nil {
		return nil, false
	}
	return fs.W, true
}

// FileHead returns a function reporting the durable head seq of the file
// device named name, wherever the device is reopened (false while it is
// not open).
func (b *Broker) FileHead(name string) func() (uint64, bool) {
	return func() (uint64, bool) {
		w, ok := b.FileWriter(name)
		if !ok {
			return 0, false
		}
		seq, _ := w.Head()
		return seq, true
	}
}

// Salt returns the HMAC salt the device hashes sensitive values with (nil
// when the device could not be opened).
func (d *Device) Salt() *hmac.Salt { return d.fopts.Salt }

// FormatOptions returns how the device renders events while unsealed (its
// salt, HMAC and header settings), for a device that stands in for it.
func (d *Device) FormatOptions() vault.Options { return d.fopts }
