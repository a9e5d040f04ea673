package core

import (
	"context"
	"time"
)

// Forwarded describes a request a standby forwarded to this (active) node
// over the authenticated cluster port: the request id the standby chose
// (and recorded) and the standby's node id. The HTTP layer uses the id, so
// both nodes' audit chains name the request the same way.
type Forwarded struct {
	RequestID string
	FromNode  string
}

type forwardedKey struct{}

// WithForwarded returns ctx carrying f. Only the cluster port's handler
// sets it.
func WithForwarded(ctx context.Context, f Forwarded) context.Context {
	return context.WithValue(ctx, forwardedKey{}, f)
}

// ForwardedFrom returns what WithForwarded stored in ctx.
func ForwardedFrom(ctx context.Context) (Forwarded, bool) {
	f, ok := ctx.Value(forwardedKey{}).(Forwarded)
	return f, ok
}

// ForwardRecord is what a standby records, before it forwards a request,
// in its own audit chain: which request (id, method, path, client) went to
// which node. The executing node audits the request itself.
//
// A standby that answers a request itself with an error because it could
// not complete the forward (no active node, the active node unreachable, a
// body it could not read) records a second record, the outcome, under the
// same request id: Status is the HTTP status it answered and Error the
// message; ToNode is empty when no node was chosen. Status is 0 on the
// record written before forwarding.
type ForwardRecord struct {
	RequestID  string
	Time       time.Time
	Method     string
	Path       string
	RemoteAddr string
	ToNode     string
	ToAddress  string
	Status     int
	Error      string
}

// ForwardAuditor records forwards durably: LogForward returns only once
// the record is written as the audit settings require; an error means it
// was not, and the request must not be forwarded.
type ForwardAuditor interface {
	LogForward(ctx context.Context, rec *ForwardRecord) error
}
