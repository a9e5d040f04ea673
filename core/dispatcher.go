package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Target is what a request path resolves to: the mount, the route's flags and
// the function that serves it. Resolvers build it; only the Dispatcher calls
// Serve.
type Target struct {
	Mount     *MountInfo // nil when no mount matches
	MountPath string
	// Found is false when no mount matches or the mount has no such route.
	Found           bool
	Unauthenticated bool
	Unaudited       bool
	SealedOK        bool
	Sudo            bool
	// Namespace, when set, is the namespace the request is in and Path
	// its path relative to that namespace: the dispatcher sets
	// Request.Namespace and Request.Path from them.
	Namespace *Namespace
	Path      string
	// Refused, when set, refuses the request before authentication (an
	// unknown or locked namespace, a root-only path in a namespace): it is
	// audited, request and response entries, and returned.
	Refused error
	// DefersTokenUse: the route spends the caller's response-wrapping
	// token itself (see Request.DeferTokenUse).
	DefersTokenUse bool
	// FailSafe routes only take access away (sys/seal): they run even when
	// their request entry cannot be recorded, since refusing them would
	// keep the server open. Their response entry is still required.
	FailSafe bool
	// SideEffectFree lists the route's operations that change nothing
	// (see framework.Route.SideEffectFree). Every other operation has side
	// effects: its request entry is durable before its handler runs.
	SideEffectFree []Operation
	// Exists runs the route's existence check; nil when the route has none.
	Exists func(ctx context.Context, req *Request) (bool, error)
	// Serve runs the handler. It returns the resolver's "not found" error
	// when Found is false.
	Serve func(ctx context.Context, req *Request) (*Response, error)
}

// Resolver maps a request to its target.
type Resolver interface {
	Resolve(ctx context.Context, req *Request) (*Target, error)
}

// Authenticator turns a client token into a Principal. It returns an error
// matching ErrPermissionDenied for a missing, unknown, expired or revoked
// token. It consumes one use of a limited-use token.
type Authenticator interface {
	Authenticate(ctx context.Context, req *Request) (*Principal, error)
}

// Authorizer decides whether req (with Principal and Mount set) is allowed.
// An error means the decision could not be made; the Dispatcher then denies.
type Authorizer interface {
	Authorize(ctx context.Context, req *Request) (*Decision, error)
}

// AuditEvent is one entry handed to the Auditor.
type AuditEvent struct {
	Type     string // "request" or "response"
	Time     time.Time
	Request  *Request
	Response *Response // response events only
	Err      error     // the error returned to the client, if any
	// Sealed marks an event made while the barrier is sealed: the audit
	// salts are out of reach, so tokens and data are left out of the entry
	// (never written in clear).
	Sealed bool
}

// Auditor records audit events durably. LogRequest and LogResponse return
// only after the event is recorded as the audit settings require (every
// durable device has it on disk); an error means it was not, and the
// request must not proceed (request) or its response must be withheld
// (response). Sealed events are recorded the same way, without the fields
// that need a salt.
type Auditor interface {
	LogRequest(ctx context.Context, ev *AuditEvent) error
	LogResponse(ctx context.Context, ev *AuditEvent) error
}

// DeferredAuditor is an Auditor that can make a request entry and its
// response entry durable with one wait, for operations without side
// effects. The Dispatcher uses it, when the Auditor provides it, only for
// operations a route declares side-effect free.
type DeferredAuditor interface {
	// LogRequestDeferred records ev's request entry without waiting for
	// it to be durable. An error means it was not recorded: the request is
	// refused as when LogRequest fails.
	LogRequestDeferred(ctx context.Context, ev *AuditEvent) (AuditPair, error)
}

// AuditPair completes what LogRequestDeferred began. Call WaitRequest at
// most once, then LogResponse exactly once.
type AuditPair interface {
	// WaitRequest returns once the request entry is durable, or with the
	// reason it was not recorded.
	WaitRequest() error
	// LogResponse records the response entry, which is written only if
	// the request entry was, and returns once both are durable: reqErr
	// when the request entry was not recorded (then neither is the
	// response entry), else respErr when the response entry was not.
	LogResponse(ctx context.Context, ev *AuditEvent) (reqErr, respErr error)
}

// SealState reports whether the barrier is sealed.
type SealState interface {
	Sealed() bool
}

// PostHook runs after a handler succeeds and before the response is audited:
// issuing tokens for logins, registering leases for secrets. An error fails
// the request (and is audited).
type PostHook func(ctx context.Context, req *Request, resp *Response) error

// DispatcherConfig wires a Dispatcher.
type DispatcherConfig struct {
	Resolver      Resolver
	Authenticator Authenticator
	Authorizer    Authorizer
	Auditor       Auditor
	Seal          SealState
	PostHooks     []PostHook
	// Wrapper wraps responses (X-Vault-Wrap-TTL); nil: a request asking
	// for wrapping is refused.
	Wrapper ResponseWrapper
	// Approvals holds requests whose decision asks for approval (control
	// groups); nil: such requests are refused.
	Approvals ApprovalGate
	// MaxRequestDuration bounds how long a request may run once it is
	// dispatched (default 90s, Vault's default_max_request_duration). The
	// bound is the server's: a client that disconnects does not cut a
	// request short, so what the audit trail records is what happened.
	MaxRequestDuration time.Duration
	Now                func() time.Time
	Logger             *slog.Logger
}

// DefaultMaxRequestDuration is DispatcherConfig.MaxRequestDuration's default.
const DefaultMaxRequestDuration = 90 * time.Second

// Dispatcher is the one way in: every request — from HTTP or internal — is
// authenticated, authorized and audited here before and after it is routed.
// It is safe for concurrent use.
type Dispatcher struct {
	cfg DispatcherConfig
}

// NewDispatcher returns a dispatcher. Every interface in cfg must be set.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Resolver == nil || cfg.Authenticator == nil || cfg.Authorizer == nil || cfg.Auditor == nil || cfg.Seal == nil {
		return nil, errors.New("dispatcher: resolver, authenticator, authorizer, auditor and seal are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxRequestDuration <= 0 {
		cfg.MaxRequestDuration = DefaultMaxRequestDuration
	}
	return &Dispatcher{cfg: cfg}, nil
}

// Audit failure messages. The request-stage one is also used when the
// response entry of a rejected request cannot be recorded: a rejected
// request was not executed either.
const (
	msgAuditRequest  = "audit: the request entry could not be recorded, so the request was not executed; it is safe to retry"
	msgAuditResponse = "audit: the request was executed, but its response entry could not be recorded, so the response is withheld; retry only if the request is idempotent"
)

// Sentinels for the two stages of an audit failure (match with errors.Is).
var (
	ErrAuditRequest  = &Error{Code: CodeAuditRequest}
	ErrAuditResponse = &Error{Code: CodeAuditResponse}
)

// notExecuted is the error for a request whose audit entry could not be
// recorded before it ran (or, for a rejected request, at all).
func notExecuted(err error) error {
	return &Error{Code: CodeAuditRequest, Msg: fmt.Sprintf("%s: %v", msgAuditRequest, err), Err: err}
}

// withheld is the error for a request that ran but whose response entry
// could not be recorded.
func withheld(err error) error {
	return &Error{Code: CodeAuditResponse, Msg: fmt.Sprintf("%s: %v", msgAuditResponse, err), Err: err}
}

// IsAuditFailure reports whether err is an audit failure, at either stage.
func IsAuditFailure(err error) bool {
	switch CodeOf(err) {
	case CodeAuditFailed, CodeAuditRequest, CodeAuditResponse:
		return true
	}
	return false
}

// PercentInvalidUTF8 returns s with every byte that is not part of valid
// UTF-8, and every '%', percent-encoded (%FF, %25): a rendering of a
// rejected path in which two different byte strings never look the same.
func PercentInvalidUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, "%%%02X", s[i])
		case r == '%':
			b.WriteString("%25")
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Handle serves req. The returned error is a *Error (or wraps one) whose code
// gives the HTTP status. Steps: malformed? → sealed check → resolve →
// authenticate → authorize → audit request (fail closed) → route → post
// hooks → audit response (fail closed; the response is withheld when it
// cannot be recorded). A request rejected at any step — malformed, sealed,
// unauthenticated, denied — is recorded with a request and a response entry.
//
// The request runs under a context detached from ctx's cancellation, bounded
// by MaxRequestDuration: a client that disconnects cannot stop a write
// half-way and make the trail record a failure for a change that happened.
func (d *Dispatcher) Handle(ctx context.Context, req *Request) (resp *Response, err error) {
	if req.ID == "" {
		req.ID = uuid.NewString()
	}
	if req.Time.IsZero() {
		req.Time = d.cfg.Now()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.MaxRequestDuration)
	defer cancel()
	if req.Malformed != nil {
		return d.reject(ctx, req, req.Malformed)
	}
	if !utf8.ValidString(req.Path) {
		// Two different byte strings would log as the same path (JSON
		// writes an invalid byte as U+FFFD): refuse it, and audit the
		// refusal with the bytes shown.
		shown := PercentInvalidUTF8(req.Path)
		req.Path = shown
		return d.reject(ctx, req, Invalid("request path is not valid UTF-8 (its invalid bytes are shown percent-encoded: %s)", shown))
	}
	target, rerr := d.cfg.Resolver.Resolve(ctx, req)
	if rerr != nil && target == nil {
		target = &Target{}
	}
	if target.Namespace != nil {
		req.Namespace, req.Path = target.Namespace, target.Path
	}
	req.Mount = target.Mount
	req.MountPath = target.MountPath

	if d.cfg.Seal.Sealed() {
		if target.SealedOK && target.Found {
			return d.serve(ctx, target, req)
		}
		return d.reject(ctx, req, ErrSealed)
	}
	if target.Refused != nil {
		return d.reject(ctx, req, target.Refused)
	}
	if target.Unaudited && target.Found {
		return d.serve(ctx, target, req)
	}
	req.Unauthenticated = target.Unauthenticated && target.Found
	req.SudoRequired = target.Sudo
	req.DeferTokenUse = target.DefersTokenUse && target.Found

	// From here on every path is audited: a request entry, then a response
	// entry for whatever outcome.
	if !req.Internal && !req.Unauthenticated {
		p, aerr := d.cfg.Authenticator.Authenticate(ctx, req)
		if aerr != nil {
			if CodeOf(aerr) != CodePermissionDenied && CodeOf(aerr) != CodeInvalid {
				d.cfg.Logger.Error("authenticate", "error", aerr)
				aerr = ErrPermissionDenied
			}
			return d.reject(ctx, req, aerr)
		}
		req.Principal = p
	}
	if target.Exists != nil && req.Operation == OpUpdate {
		exists, xerr := target.Exists(ctx, req)
		if xerr != nil {
			if CodeOf(xerr) == CodeInvalid {
				return d.reject(ctx, req, xerr)
			}
			return d.reject(ctx, req, Errorf(CodeInternal, "existence check failed: %w", xerr))
		}
		if !exists {
			req.Operation = OpCreate
		}
	}
	if !req.Internal && !req.Unauthenticated {
		dec, zerr := d.cfg.Authorizer.Authorize(ctx, req)
		if zerr != nil || dec == nil {
			msg := "authorization failed"
			if zerr != nil {
				msg = zerr.Error()
			}
			d.cfg.Logger.Error("authorize", "path", req.Path, "error", msg)
			dec = &Decision{Allowed: false, Operation: req.Operation, Error: msg, DenyReasons: []string{"policy evaluation failed: " + msg}}
		}
		req.Decision = dec
		if !dec.Allowed {
			return d.reject(ctx, req, ErrPermissionDenied)
		}
	}
	// A request that needs approval is held, not executed: its entries
	// say so, and the client gets a wrapping token approvers refer to.
	hold := req.Decision != nil && req.Decision.Approval != nil && req.Approved == "" && target.Found
	if hold {
		if d.cfg.Approvals == nil {
			return d.reject(ctx, req, Errorf(CodePermissionDenied, "permission denied: %s needs approval, and this server cannot hold requests for approval", req.Path))
		}
		labelHeld(req)
	}

	// An operation without side effects does not wait for its request
	// entry before running: the request and response entries become
	// durable together, before the answer, and the response entry is
	// written only if the request entry was. Every other operation waits
	// for its request entry before its handler runs.
	if pair := d.deferredRequest(ctx, target, req, hold); pair != nil {
		return d.servePure(ctx, target, req, pair)
	}
	if err := d.cfg.Auditor.LogRequest(ctx, d.event("request", req, nil, nil)); err != nil {
		if !(target.FailSafe && target.Found) {
			d.cfg.Logger.Error("audit request failed; request refused", "path", req.Path, "error", err)
			return nil, notExecuted(err)
		}
		d.cfg.Logger.Error("audit request failed; running the fail-safe request anyway", "path", req.Path, "error", err)
	}

	// The response entry is written whatever happens below, panics included.
	defer func() {
		if p := recover(); p != nil {
			d.cfg.Logger.Error("dispatch panic", "path", req.Path, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, Errorf(CodeInternal, "internal error")
		}
		if aerr := d.cfg.Auditor.LogResponse(ctx, d.event("response", req, resp, err)); aerr != nil {
			d.cfg.Logger.Error("audit response failed; response withheld", "path", req.Path, "error", aerr)
			resp, err = nil, withheld(aerr)
		}
	}()

	if !target.Found {
		if rerr == nil {
			rerr = ErrUnsupportedPath
		}
		return nil, rerr
	}
	if hold {
		return d.cfg.Approvals.Hold(ctx, req)
	}
	resp, err = d.serve(ctx, target, req)
	if err != nil {
		return nil, err
	}
	if resp == nil || !resp.Restored {
		for _, h := range d.cfg.PostHooks {
			if herr := h(ctx, req, resp); herr != nil {
				return nil, herr
			}
		}
	}
	return d.wrap(ctx, req, resp)
}

// wrap wraps resp when the client asked for it (X-Vault-Wrap-TTL) and it
// is not wrapped already; it runs after the post hooks, so a wrapped login
// holds its issued token and a wrapped secret its lease.
func (d *Dispatcher) wrap(ctx context.Context, req *Request, resp *Response) (*Response, error) {
	if req.WrapTTL <= 0 || resp == nil || resp.WrapInfo != nil {
		return resp, nil
	}
	if d.cfg.Wrapper == nil {
		return nil, Invalid("response wrapping is not available on this server")
	}
	return d.cfg.Wrapper.Wrap(ctx, req, resp)
}

// ReasonHeader is the request header stating why a request is made
// (break-glass, control groups); it is recorded with control-group
// requests and shown to their approvers.
const ReasonHeader = "X-Vigil-Reason"

// labelHeld labels a request held for approval: its id is the control
// group's.
func labelHeld(req *Request) {
	req.Label(LabelControlGroup, req.ID)
	req.Label(LabelControlGroupState, "pending")
	req.Label(LabelControlGroupRequester, req.ActorName())
	if r := req.Header(ReasonHeader); r != "" {
		req.Label(LabelControlGroupReason, r)
	}
}

// event builds an audit event, marked Sealed when the barrier is sealed at
// this moment (the response of sys/seal, or of a request in flight while
// the server seals).
func (d *Dispatcher) event(typ string, req *Request, resp *Response, err error) *AuditEvent {
	return &AuditEvent{Type: typ, Time: d.cfg.Now(), Request: req, Response: resp, Err: err, Sealed: d.cfg.Seal.Sealed()}
}

// reject audits a request refused before routing: a request entry and a
// response entry, both carrying the error. Nothing was executed, so an audit
// failure at either entry is the request-stage error.
func (d *Dispatcher) reject(ctx context.Context, req *Request, rejectErr error) (*Response, error) {
	if err := d.cfg.Auditor.LogRequest(ctx, d.event("request", req, nil, rejectErr)); err != nil {
		return nil, notExecuted(err)
	}
	if err := d.cfg.Auditor.LogResponse(ctx, d.event("response", req, nil, rejectErr)); err != nil {
		return nil, notExecuted(err)
	}
	return nil, rejectErr
}

func (d *Dispatcher) serve(ctx context.Context, t *Target, req *Request) (resp *Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.cfg.Logger.Error("handler panic", "path", req.Path, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, Errorf(CodeInternal, "internal error")
		}
	}()
	return t.Serve(ctx, req)
}
