package core

import (
	"context"
	"runtime/debug"
	"slices"
)

// sideEffectFree reports whether req's operation on target changes
// nothing, as the route declares. Fail-safe routes and unknown paths never
// qualify, nor does a request whose handling has side effects of its own
// whatever the route: one held for approval, one asking for its response
// to be wrapped (that stores a wrapping token), one that spends the
// caller's wrapping token.
func sideEffectFree(target *Target, req *Request, hold bool) bool {
	return target.Found && !target.FailSafe && !hold && req.WrapTTL <= 0 && !req.DeferTokenUse &&
		slices.Contains(target.SideEffectFree, req.Operation)
}

// deferredRequest starts the request entry of a side-effect-free operation
// without waiting for it. It returns nil when the operation has side
// effects or the Auditor cannot defer; then the request entry is recorded
// with LogRequest as usual. A failure to start the entry is reported
// through the returned pair, as a request-stage failure.
func (d *Dispatcher) deferredRequest(ctx context.Context, target *Target, req *Request, hold bool) AuditPair {
	if !sideEffectFree(target, req, hold) {
		return nil
	}
	da, ok := d.cfg.Auditor.(DeferredAuditor)
	if !ok {
		return nil
	}
	pair, err := da.LogRequestDeferred(ctx, d.event("request", req, nil, nil))
	if err != nil {
		return failedPair{err}
	}
	return pair
}

// failedPair is a pair whose request entry could not be started.
type failedPair struct{ err error }

func (p failedPair) WaitRequest() error { return p.err }
func (p failedPair) LogResponse(context.Context, *AuditEvent) (error, error) {
	return p.err, nil
}

// servePure runs a side-effect-free operation whose request entry was
// started by deferredRequest. The answer is given only once both entries
// are durable: if the request entry was not recorded the request fails
// as not executed (nothing changed, and no response entry is written);
// if the response entry was not, the response is withheld.
func (d *Dispatcher) servePure(ctx context.Context, target *Target, req *Request, pair AuditPair) (resp *Response, err error) {
	if fp, ok := pair.(failedPair); ok {
		d.cfg.Logger.Error("audit request failed; request refused", "path", req.Path, "error", fp.err)
		return nil, notExecuted(fp.err)
	}
	defer func() {
		if p := recover(); p != nil {
			d.cfg.Logger.Error("dispatch panic", "path", req.Path, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, Errorf(CodeInternal, "internal error")
		}
		reqErr, respErr := pair.LogResponse(ctx, d.event("response", req, resp, err))
		switch {
		case reqErr != nil:
			d.cfg.Logger.Error("audit request failed; response withheld", "path", req.Path, "error", reqErr)
			resp, err = nil, notExecuted(reqErr)
		case respErr != nil:
			d.cfg.Logger.Error("audit response failed; response withheld", "path", req.Path, "error", respErr)
			resp, err = nil, withheld(respErr)
		}
	}()
	resp, err = d.serve(ctx, target, req)
	if err != nil {
		return nil, err
	}
	if resp != nil && resp.Restored {
		return d.wrap(ctx, req, resp) // as in Handle: no post hooks
	}
	if len(d.cfg.PostHooks) > 0 && (resp != nil && (resp.Secret != nil || resp.Auth != nil)) {
		// Post hooks issue tokens and register leases: those are side
		// effects, so they wait for the request entry like any other.
		if werr := pair.WaitRequest(); werr != nil {
			return nil, werr
		}
	}
	for _, h := range d.cfg.PostHooks {
		if herr := h(ctx, req, resp); herr != nil {
			return nil, herr
		}
	}
	return d.wrap(ctx, req, resp) // a no-op: wrapping requests are not side-effect free
}
