package audit

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/vigilsec/vigil/core"
)

// TypeForward is the record type of a forward line: a standby forwarded a
// request to the active node, which audits the request itself under the
// same request id. Such lines are chain records (queries and reports skip
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
}

var _ core.ForwardAuditor = (*Broker)(nil)

// LogForward records that a request was forwarded (see core.ForwardAuditor)
// with the same guarantee as a request entry: it returns once a device has
// the line, and fails when none records it while audit is required.
func (b *Broker) LogForward(ctx context.Context, rec *core.ForwardRecord) error {
	if b.closed.Load() {
		if b.required.Load() {
			b.cfg.Metrics.refused("forward")
			return ErrNotOpen
		}
		return nil
	}
	devs := b.Devices()
	if len(devs) == 0 {
		if b.required.Load() {
			b.cfg.Metrics.refused("forward")
			return ErrNoDevice
		}
		return nil
	}
	body, err := json.Marshal(forwardLine{Type: TypeForward, Forward: forwardBody{
		RequestID: rec.RequestID, Time: rec.Time.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"),
		Method: rec.Method, Path: rec.Path, RemoteAddr: rec.RemoteAddr, ToNode: rec.ToNode, ToAddress: rec.ToAddress}})
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	results := make(chan error, len(devs))
	for _, d := range devs {
		go func() { results <- b.writeBody(ctx, d, "forward", body) }()
	}
	var all []error
	for range devs {
		err := <-results
		if err == nil {
			return nil
		}
		all = append(all, err)
	}
	b.cfg.Metrics.refused("forward")
	return errors.Join(all...)
}
