package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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
	// SealedBuffer caps the requests rejected while sealed that are kept
	// in memory until the devices open at unseal (default 1024).
	SealedBuffer int
	// Intercept, when set, sees every request event before it is written
	// (the audit subsystem starts a relinked chain there, so that the
	// acknowledgement is the new chain's first entry).
	Intercept func(ctx context.Context, ev *core.AuditEvent)
	// BarrierSealed reports whether the server's barrier is sealed. While
	// the devices are closed (SetSealed) and the barrier is sealed, events
	// are buffered; while they are closed but the barrier is open (the
	// moments between unsealing and the devices opening, or between the
	// devices closing and the barrier sealing) events fail closed.
	BarrierSealed func() bool
}

// Broker fans audit events out to the enabled devices. It implements
// core.Auditor: an event counts as recorded when at least one device
// records it durably; each device write is bounded by the device's
// write_timeout, so a hung device fails instead of hanging requests. All
// methods are safe for concurrent use.
type Broker struct {
	cfg BrokerConfig

	mu       sync.RWMutex
	devs     []*Device // sorted by name
	required atomic.Bool
	closed   atomic.Bool // sealed: devices closed, events are buffered

	sealedMu      sync.Mutex
	sealed        []core.AuditEvent
	sealedDropped int
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
	if cfg.SealedBuffer <= 0 {
		cfg.SealedBuffer = 1024
	}
	return &Broker{cfg: cfg}
}

// SetRequired sets the zero-devices policy: when required, an event with
// no enabled device fails (ErrNoDevice); otherwise it is let through
// unrecorded and health reports audit as "critical" (unconfigured).
func (b *Broker) SetRequired(v bool) { b.required.Store(v) }

// SetSealed marks the devices closed because the server sealed (or has
// not unsealed yet): events are then buffered like sealed-state rejections
// (the response entries of requests in flight while the server seals, such
// as sys/seal's own) until FlushSealed.
func (b *Broker) SetSealed(v bool) { b.closed.Store(v) }

// Required reports the zero-devices policy.
func (b *Broker) Required() bool { return b.required.Load() }

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
// read once the call returns) and writes it, returning at the first device
// that records it. Writes use a context detached from the client's: a
// client that goes away must not stop the record of what it did.
func (b *Broker) log(ctx context.Context, ev *core.AuditEvent) error {
	if ev.Sealed || b.closed.Load() && (b.cfg.BarrierSealed == nil || b.cfg.BarrierSealed()) {
		b.bufferSealed(ev)
		return nil
	}
	if b.closed.Load() && b.required.Load() {
		b.cfg.Metrics.refused(ev.Type)
		return ErrNotOpen
	}
	if b.cfg.Intercept != nil && ev.Type == "request" {
		b.cfg.Intercept(ctx, ev)
	}
	devs := b.Devices()
	if len(devs) == 0 {
		if b.required.Load() {
			b.cfg.Metrics.refused(ev.Type)
			return ErrNoDevice
		}
		b.cfg.Metrics.unaudited()
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	if len(devs) == 1 {
		err := b.write(ctx, devs[0], ev)
		if err != nil {
			b.cfg.Metrics.refused(ev.Type)
		}
		return err
	}
	return b.logMany(ctx, devs, ev)
}

// logMany writes ev to several devices concurrently and returns at the
// first that records it. (Apart from log so that ctx does not escape
// there.)
func (b *Broker) logMany(ctx context.Context, devs []*Device, ev *core.AuditEvent) error {
	bodies := make([][]byte, len(devs))
	errs := make([]error, len(devs))
	for i, d := range devs {
		bodies[i], errs[i] = vault.Format(ev, d.fopts)
	}
	results := make(chan error, len(devs))
	for i, d := range devs {
		if errs[i] != nil {
			results <- deviceError(d.Name(), errs[i])
			continue
		}
		go func() { results <- b.writeBody(ctx, d, ev.Type, bodies[i]) }()
	}
	var all []error
	for range devs {
		err := <-results
		if err == nil {
			return nil
		}
		all = append(all, err)
	}
	b.cfg.Metrics.refused(ev.Type)
	return errors.Join(all...)
}

// bodyPool recycles entry buffers of single-device writes (the sinks copy
// what they keep; see Sink).
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBody caps the buffers kept in bodyPool.
const maxPooledBody = 64 << 10

func (b *Broker) write(ctx context.Context, d *Device, ev *core.AuditEvent) error {
	bp := bodyPool.Get().(*[]byte)
	body, err := vault.AppendFormat((*bp)[:0], ev, d.fopts)
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

// bufferSealed keeps a request rejected while sealed (or an entry made
// while the devices are closed for sealing) until the devices open (best effort, as core.AuditEvent.Sealed allows: the salt and the
// checkpoint key are in the barrier, and the chain's checkpoints must all
// be signed, so nothing is written while sealed).
func (b *Broker) bufferSealed(ev *core.AuditEvent) {
	b.sealedMu.Lock()
	defer b.sealedMu.Unlock()
	if len(b.sealed) >= b.cfg.SealedBuffer {
		b.sealedDropped++
		return
	}
	req := *ev.Request
	cp := *ev
	cp.Request = &req
	b.sealed = append(b.sealed, cp)
}

// FlushSealed writes the buffered sealed-state rejections to the devices
// (called once they are open after unseal). It returns how many were
// written and how many were dropped because the buffer was full.
func (b *Broker) FlushSealed(ctx context.Context) (written, dropped int) {
	b.sealedMu.Lock()
	evs, dropped := b.sealed, b.sealedDropped
	b.sealed, b.sealedDropped = nil, 0
	b.sealedMu.Unlock()
	for i := range evs {
		ev := evs[i]
		if len(b.Devices()) == 0 {
			break
		}
		if err := b.logSealed(ctx, &ev); err == nil {
			written++
		}
	}
	if dropped > 0 {
		b.cfg.Logger.Warn("audit: requests rejected while sealed were not recorded (buffer full)", "dropped", dropped)
	}
	return written, dropped
}

func (b *Broker) logSealed(ctx context.Context, ev *core.AuditEvent) error {
	err := error(ErrNoDevice)
	ok := false
	for _, d := range b.Devices() {
		if werr := b.write(context.WithoutCancel(ctx), d, ev); werr != nil {
			err = werr
		} else {
			ok = true
		}
	}
	if ok {
		return nil
	}
	return err
}

// Close closes every device.
func (b *Broker) Close() error {
	b.mu.Lock()
	devs := b.devs
	b.devs = nil
	b.mu.Unlock()
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

// FormatOptions returns how the device renders entries (to replace the
// device with another over the same options).
func (d *Device) FormatOptions() vault.Options { return d.fopts }
