package audit

import (
	"context"
	"errors"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/vault"
	"github.com/vigilsec/vigil/core"
)

var _ core.DeferredAuditor = (*Broker)(nil)

// LogRequestDeferred implements core.DeferredAuditor. With a single
// durable file device (the common case) the request entry is handed to
// the chain without waiting and the response entry is linked to it
// (chain.AppendLinked): written only if the request entry was, so both
// become durable with one wait and the log never holds the response
// without its request. In every other case (several devices, sealed, no
// durable device, gate-exempt requests) the request entry is recorded
// with LogRequest before this returns, and the pair only records the
// response.
func (b *Broker) LogRequestDeferred(ctx context.Context, ev *core.AuditEvent) (core.AuditPair, error) {
	if p := b.linkedPair(ctx, ev); p != nil {
		return p, p.startErr()
	}
	if err := b.LogRequest(ctx, ev); err != nil {
		return nil, err
	}
	return syncPair{b}, nil
}

// syncPair: the request entry is already durable.
type syncPair struct{ b *Broker }

func (syncPair) WaitRequest() error { return nil }
func (p syncPair) LogResponse(ctx context.Context, ev *core.AuditEvent) (error, error) {
	return nil, p.b.LogResponse(ctx, ev)
}

// linkedPair is a request entry handed to a file device's chain.
type linkedPair struct {
	b      *Broker
	d      *Device
	sink   *FileSink
	first  chain.Pending
	err    error // handing the request entry over failed
	waited bool
	reqErr error
}

func (p *linkedPair) startErr() error { return p.err }

// linkedPair starts ev's request entry on the only device when it is a
// durable file device and nothing calls for LogRequest's checks; nil
// otherwise.
func (b *Broker) linkedPair(ctx context.Context, ev *core.AuditEvent) *linkedPair {
	if ev.Sealed || b.cfg.BarrierSealed != nil && b.cfg.BarrierSealed() || b.sealedMode.Load() || GateExempt(ev.Request) {
		return nil
	}
	devs := b.Devices()
	if len(devs) != 1 || !devs[0].Durable() {
		return nil
	}
	if b.cfg.Intercept != nil {
		// As in log: the interceptor sees the request event before it is
		// written (and may change the devices).
		b.cfg.Intercept(ctx, ev)
		devs = b.Devices()
	}
	if len(devs) != 1 || !devs[0].Durable() {
		return nil
	}
	d := devs[0]
	d.mu.RLock()
	sink, _ := d.sink.(*FileSink)
	d.mu.RUnlock()
	if sink == nil || !selfTimed(sink, d.Config.WriteTimeout) {
		return nil
	}
	p := &linkedPair{b: b, d: d, sink: sink}
	bp := bodyPool.Get().(*[]byte)
	body, err := vault.AppendFormat((*bp)[:0], ev, d.options(false))
	if err == nil {
		p.first, err = sink.W.AppendLinkedFirst(context.WithoutCancel(ctx), body)
	}
	if cap(body) <= maxPooledBody {
		*bp = body[:0]
		bodyPool.Put(bp)
	}
	if err != nil {
		p.err = p.failed("request", err)
	}
	return p
}

// failed notes a failed entry on the device and in the metrics.
func (p *linkedPair) failed(typ string, err error) error {
	p.d.note(err)
	p.b.cfg.Metrics.failure(p.d.Name())
	p.b.cfg.Metrics.refused(typ)
	p.b.cfg.Logger.Error("audit device write failed", "device", p.d.Name(), "error", err)
	return deviceError(p.d.Name(), err)
}

// WaitRequest implements core.AuditPair.
func (p *linkedPair) WaitRequest() error {
	if p.err != nil {
		return p.err
	}
	if !p.waited {
		p.waited = true
		if _, err := p.first.Wait(context.Background()); err != nil {
			p.reqErr = p.failed("request", err)
		} else {
			p.d.note(nil)
			p.b.cfg.Metrics.recordedOn(p.d, "request")
		}
	}
	return p.reqErr
}

// LogResponse implements core.AuditPair.
func (p *linkedPair) LogResponse(ctx context.Context, ev *core.AuditEvent) (error, error) {
	if p.err != nil {
		return p.err, nil
	}
	bp := bodyPool.Get().(*[]byte)
	body, ferr := vault.AppendFormat((*bp)[:0], ev, p.d.options(false))
	var second chain.Pending
	if ferr == nil {
		second, ferr = p.sink.W.AppendLinked(context.WithoutCancel(ctx), body, p.first)
	}
	if cap(body) <= maxPooledBody {
		*bp = body[:0]
		bodyPool.Put(bp)
	}
	if reqErr := p.WaitRequest(); reqErr != nil {
		if ferr == nil {
			// Normally this fails with ErrFirstNotWritten. A request entry
			// whose wait gave up (its write timeout runs from the moment it
			// was queued, before the handler) may still have been written;
			// the response entry is then durable too, and the trail says
			// the answer was given: give it, so the trail stays true.
			if _, err := second.Wait(context.Background()); err == nil {
				p.reqErr = nil
				p.d.note(nil)
				p.b.cfg.Metrics.recordedOn(p.d, "response")
				return nil, nil
			}
		}
		return reqErr, nil
	}
	if ferr != nil {
		return nil, p.failed("response", ferr)
	}
	if _, err := second.Wait(context.Background()); err != nil {
		if errors.Is(err, chain.ErrFirstNotWritten) {
			return err, nil
		}
		return nil, p.failed("response", err)
	}
	p.d.note(nil)
	p.b.cfg.Metrics.recordedOn(p.d, "response")
	return nil, nil
}
