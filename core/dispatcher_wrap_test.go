package core_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

// wrapFixture is a dispatcher whose one route answers {"secret": "s"},
// with a recording audit, post hook, wrapper and approval gate.
type wrapFixture struct {
	mu       sync.Mutex
	served   int
	hooks    int
	wrapped  int
	held     int
	events   []*core.AuditEvent
	approval *core.Approval
	restored bool
}

func (f *wrapFixture) Resolve(context.Context, *core.Request) (*core.Target, error) {
	return &core.Target{Found: true, Mount: &core.MountInfo{Path: "secret/", Type: "kv"}, Serve: func(context.Context, *core.Request) (*core.Response, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.served++
		return &core.Response{Data: map[string]any{"secret": "s"}, Restored: f.restored}, nil
	}}, nil
}

func (f *wrapFixture) Authenticate(_ context.Context, req *core.Request) (*core.Principal, error) {
	return &core.Principal{ClientToken: req.ClientToken, DisplayName: "carol", Policies: []string{"p"}}, nil
}

func (f *wrapFixture) Authorize(_ context.Context, req *core.Request) (*core.Decision, error) {
	return &core.Decision{Allowed: true, Operation: req.Operation, Approval: f.approval}, nil
}

func (f *wrapFixture) LogRequest(_ context.Context, ev *core.AuditEvent) error  { return f.log(ev) }
func (f *wrapFixture) LogResponse(_ context.Context, ev *core.AuditEvent) error { return f.log(ev) }
func (f *wrapFixture) log(ev *core.AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Keep what the entry would record at this moment.
	c := *ev
	if ev.Request.Labels != nil {
		r := *ev.Request
		r.Labels = map[string]string{}
		for k, v := range ev.Request.Labels {
			r.Labels[k] = v
		}
		c.Request = &r
	}
	f.events = append(f.events, &c)
	return nil
}

func (f *wrapFixture) Sealed() bool { return false }

func (f *wrapFixture) Wrap(_ context.Context, req *core.Request, resp *core.Response) (*core.Response, error) {
	f.wrapped++
	return &core.Response{WrapInfo: &core.WrapInfo{Token: "hvs.w", TTL: int(req.WrapTTL / time.Second)}, Data: resp.Data}, nil
}

func (f *wrapFixture) Hold(_ context.Context, req *core.Request) (*core.Response, error) {
	f.held++
	return &core.Response{WrapInfo: &core.WrapInfo{Token: "hvs.cg", CreationPath: req.Path}}, nil
}

func (f *wrapFixture) dispatcher(t *testing.T, wrapper, gate bool) *core.Dispatcher {
	t.Helper()
	cfg := core.DispatcherConfig{Resolver: f, Authenticator: f, Authorizer: f, Auditor: f, Seal: f,
		PostHooks: []core.PostHook{func(context.Context, *core.Request, *core.Response) error { f.hooks++; return nil }}}
	if wrapper {
		cfg.Wrapper = f
	}
	if gate {
		cfg.Approvals = f
	}
	d, err := core.NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newReq(wrapTTL time.Duration) *core.Request {
	return &core.Request{Operation: core.OpRead, Path: "secret/data/x", ClientToken: "t", Headers: http.Header{"X-Vigil-Reason": {"INC-1"}}, WrapTTL: wrapTTL}
}

func TestDispatcherWrapsAfterPostHooks(t *testing.T) {
	f := &wrapFixture{}
	d := f.dispatcher(t, true, true)
	resp, err := d.Handle(context.Background(), newReq(time.Minute))
	if err != nil || resp.WrapInfo == nil || resp.WrapInfo.TTL != 60 || f.hooks != 1 || f.wrapped != 1 {
		t.Fatalf("wrapped: %+v %v hooks=%d wrapped=%d", resp, err, f.hooks, f.wrapped)
	}
	// The response entry records the wrapped response (its data kept for HMAC).
	last := f.events[len(f.events)-1]
	if last.Type != "response" || last.Response.WrapInfo == nil || last.Response.Data["secret"] != "s" {
		t.Fatalf("response entry %+v", last.Response)
	}
	// Without a wrap TTL nothing is wrapped; without a wrapper, asking is refused.
	if resp, _ := d.Handle(context.Background(), newReq(0)); resp.WrapInfo != nil || f.wrapped != 1 {
		t.Fatal("wrapped without a wrap TTL")
	}
	f2 := &wrapFixture{}
	_, err = f2.dispatcher(t, false, false).Handle(context.Background(), newReq(time.Minute))
	if core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("no wrapper: %v", err)
	}
	// A restored response skips the post hooks.
	f3 := &wrapFixture{restored: true}
	if _, err := f3.dispatcher(t, true, true).Handle(context.Background(), newReq(0)); err != nil || f3.hooks != 0 {
		t.Fatalf("restored: %v hooks=%d", err, f3.hooks)
	}
}

func TestDispatcherHoldsForApproval(t *testing.T) {
	f := &wrapFixture{approval: &core.Approval{Factors: []core.ApprovalFactor{{Name: "lead", GroupNames: []string{"leads"}, Approvals: 1}}}}
	d := f.dispatcher(t, true, true)
	req := newReq(time.Minute)
	resp, err := d.Handle(context.Background(), req)
	if err != nil || resp.WrapInfo == nil || resp.WrapInfo.Token != "hvs.cg" || f.served != 0 || f.held != 1 || f.hooks != 0 || f.wrapped != 0 {
		t.Fatalf("held: %+v %v served=%d held=%d hooks=%d wrapped=%d", resp, err, f.served, f.held, f.hooks, f.wrapped)
	}
	// Both entries say so, the request entry included (written before Hold).
	if len(f.events) != 2 {
		t.Fatalf("%d audit events", len(f.events))
	}
	for _, ev := range f.events {
		l := ev.Request.Labels
		if l[core.LabelControlGroup] != req.ID || l[core.LabelControlGroupState] != "pending" || l[core.LabelControlGroupReason] != "INC-1" ||
			l[core.LabelControlGroupRequester] != "carol" {
			t.Fatalf("%s entry labels %v", ev.Type, l)
		}
	}
	// The approved execution runs.
	run := newReq(0)
	run.Approved = req.ID
	if resp, err := d.Handle(context.Background(), run); err != nil || resp.Data["secret"] != "s" || f.served != 1 || f.held != 1 {
		t.Fatalf("approved run: %+v %v", resp, err)
	}
	// No gate: refused, not executed.
	f2 := &wrapFixture{approval: f.approval}
	_, err = f2.dispatcher(t, true, false).Handle(context.Background(), newReq(0))
	if core.CodeOf(err) != core.CodePermissionDenied || f2.served != 0 {
		t.Fatalf("no gate: %v served=%d", err, f2.served)
	}
}
