package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

// An audit failure says which stage failed and what that means for the
// client: at the request stage nothing ran (safe to retry); at the response
// stage the request ran and only its answer is withheld.
func TestDispatcherAuditFailureStagesAreTruthful(t *testing.T) {
	ctx := context.Background()
	target := &core.Target{Found: true, Mount: &core.MountInfo{Path: "secret/"}}

	d, r := newDispatcher(t, target, fakeAuthz{}, &fakeAudit{failReq: true}, false)
	_, err := d.Handle(ctx, &core.Request{Operation: core.OpUpdate, Path: "secret/x", ClientToken: "root"})
	if !errors.Is(err, core.ErrAuditRequest) || r.served != 0 {
		t.Fatalf("request stage: err %v, served %d", err, r.served)
	}
	if msg := err.Error(); !strings.Contains(msg, "was not executed") || !strings.Contains(msg, "safe to retry") {
		t.Fatalf("request-stage message %q", msg)
	}

	d, r = newDispatcher(t, target, fakeAuthz{}, &fakeAudit{failResp: true}, false)
	_, err = d.Handle(ctx, &core.Request{Operation: core.OpUpdate, Path: "secret/x", ClientToken: "root"})
	if !errors.Is(err, core.ErrAuditResponse) || r.served != 1 {
		t.Fatalf("response stage: err %v, served %d", err, r.served)
	}
	if msg := err.Error(); !strings.Contains(msg, "was executed") || !strings.Contains(msg, "withheld") || strings.Contains(msg, "not executed") {
		t.Fatalf("response-stage message %q", msg)
	}
	if core.HTTPStatus(core.CodeOf(err)) != 500 || !core.IsAuditFailure(err) {
		t.Fatalf("status %d, audit failure %v", core.HTTPStatus(core.CodeOf(err)), core.IsAuditFailure(err))
	}
}

// A request the HTTP layer could not understand is recorded as rejected
// (request and response entries carrying the error) and never resolved,
// authenticated or routed.
func TestDispatcherRecordsMalformedRequests(t *testing.T) {
	audit := &fakeAudit{}
	r := &resolverFunc{}
	d, err := core.NewDispatcher(core.DispatcherConfig{Resolver: r, Authenticator: fakeAuthn{}, Authorizer: fakeAuthz{}, Auditor: audit, Seal: sealState(false)})
	if err != nil {
		t.Fatal(err)
	}
	bad := core.Invalid("invalid request path: encoded slashes are not allowed")
	_, err = d.Handle(context.Background(), &core.Request{Operation: core.OpRead, Path: "secret%2Fx", Malformed: bad})
	if !errors.Is(err, bad) {
		t.Fatalf("got %v, want the parse error", err)
	}
	if r.calls != 0 {
		t.Fatal("a malformed request was resolved")
	}
	if len(audit.events) != 2 || audit.events[0].Type != "request" || audit.events[1].Type != "response" {
		t.Fatalf("events %+v", audit.events)
	}
	for _, ev := range audit.events {
		if !errors.Is(ev.Err, bad) {
			t.Fatalf("%s entry error %v", ev.Type, ev.Err)
		}
	}
}

type resolverFunc struct{ calls int }

func (r *resolverFunc) Resolve(context.Context, *core.Request) (*core.Target, error) {
	r.calls++
	return &core.Target{}, nil
}

// A client that disconnects does not cut the handler short: it runs under
// the server's deadline, so the response entry records what really happened
// instead of "context canceled" for a change that may have been made.
func TestDispatcherHandlerOutlivesClient(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var handlerErr error
	target := &core.Target{Found: true, Serve: func(ctx context.Context, _ *core.Request) (*core.Response, error) {
		close(started)
		<-release
		if handlerErr = ctx.Err(); handlerErr != nil {
			return nil, handlerErr
		}
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("handler runs without a server-side deadline")
		}
		return &core.Response{Data: map[string]any{"written": true}}, nil
	}}
	audit := &fakeAudit{}
	d, err := core.NewDispatcher(core.DispatcherConfig{Resolver: staticResolver{target}, Authenticator: fakeAuthn{}, Authorizer: fakeAuthz{},
		Auditor: audit, Seal: sealState(false), MaxRequestDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.Handle(ctx, &core.Request{Operation: core.OpUpdate, Path: "secret/x", ClientToken: "root"})
		done <- err
	}()
	<-started
	cancel() // the client goes away while the handler runs
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Handle: %v", err)
	}
	last := audit.events[len(audit.events)-1]
	if last.Type != "response" || last.Err != nil || last.Response == nil {
		t.Fatalf("response entry: %+v (handler saw %v)", last, handlerErr)
	}
}

type staticResolver struct{ t *core.Target }

func (s staticResolver) Resolve(context.Context, *core.Request) (*core.Target, error) {
	t := *s.t
	return &t, nil
}

// sys/seal is fail-safe: it runs even when its request entry cannot be
// recorded (refusing it would keep the server open); its response is then
// withheld as for any request whose response entry fails.
func TestDispatcherFailSafeRouteRunsWithoutRequestEntry(t *testing.T) {
	served := 0
	target := &core.Target{Found: true, FailSafe: true, Serve: func(context.Context, *core.Request) (*core.Response, error) {
		served++
		return nil, nil
	}}
	audit := &fakeAudit{failReq: true}
	d, err := core.NewDispatcher(core.DispatcherConfig{Resolver: staticResolver{target}, Authenticator: fakeAuthn{}, Authorizer: fakeAuthz{},
		Auditor: audit, Seal: sealState(false)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Handle(context.Background(), &core.Request{Operation: core.OpUpdate, Path: "sys/seal", ClientToken: "root"}); err != nil {
		t.Fatal(err)
	}
	if served != 1 || len(audit.events) != 1 || audit.events[0].Type != "response" {
		t.Fatalf("served %d, events %d", served, len(audit.events))
	}
	// A fail-safe route is still authorized first.
	if _, err := d.Handle(context.Background(), &core.Request{Operation: core.OpUpdate, Path: "sys/seal", ClientToken: "user"}); core.CodeOf(err) != core.CodeAuditRequest && core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("denied caller: %v", err)
	}
	if served != 1 {
		t.Fatal("a denied caller ran a fail-safe route")
	}
}
