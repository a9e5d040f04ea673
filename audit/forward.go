package audit

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/vigilsec/vigil/core"
)

// TypeForward is the record type of a forward line: a standby forwarded a
// request to the active node, which audits the request itself under the
// same request id; or, with a status, the standby answered that request
// itself with an error because the forward could not be completed. Such lines are chain records (queries and reports skip
// them as they skip checkpoints); streams ship them like every line.
const TypeForward = "vigil.forward"

// forwardLine is a forward line's body.
type forwardLine struct {
	Type    string      `json:"type"`
	Forward forwardBody `json:"forward"`
}

type forwardBody struct {
	RequestID  string `json:"request_id"`
	Time       string `json:"time"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	RemoteAddr string `json:"remote_address"`
	ToNode     string `json:"to_node"`
	ToAddress  string `json:"to_address"`
	Status     int    `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
}

var _ core.ForwardAuditor = (*Broker)(nil)

// LogForward records that a request was forwarded (see core.ForwardAuditor)
// with the guarantee of a request entry: every durable device has the line
// (or, with none, one device has it) before it returns; it fails when the
// settings require a record that no device made. A standby forwards only
// while unsealed, so the line is never a sealed-mode one.
func (b *Broker) LogForward(ctx context.Context, rec *core.ForwardRecord) error {
	if b.sealedMode.Load() && (b.required.Load() || b.requireDurable.Load()) {
		b.cfg.Metrics.refused("forward")
		return ErrNotOpen
	}
	devs := b.Devices()
	durable := hasDurable(devs)
	if !durable && b.requireDurable.Load() {
		b.cfg.Metrics.refused("forward")
		return ErrNoDurableDevice
	}
	if len(devs) == 0 {
		if b.required.Load() {
			b.cfg.Metrics.refused("forward")
			return ErrNoDevice
		}
		b.cfg.Metrics.unaudited()
		return nil
	}
	body, err := json.Marshal(forwardLine{Type: TypeForward, Forward: forwardBody{
		RequestID: rec.RequestID, Time: rec.Time.UTC().Format(time.RFC3339Nano),
		Method: rec.Method, Path: rec.Path, RemoteAddr: rec.RemoteAddr, ToNode: rec.ToNode, ToAddress: rec.ToAddress,
		Status: rec.Status, Error: rec.Error}})
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(devs))
	for i, d := range devs {
		go func() { results <- result{i, b.writeBody(ctx, d, "forward", body)} }()
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
	} else {
		for range devs {
			r := <-results
			if r.err == nil {
				errs = nil
				break
			}
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		b.cfg.Metrics.refused("forward")
		return errors.Join(errs...)
	}
	return nil
}
