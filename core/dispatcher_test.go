package core_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/core"
)

type fakeResolver struct {
	target *core.Target
	served int
	mu     sync.Mutex
}

func (f *fakeResolver) Resolve(ctx context.Context, req *core.Request) (*core.Target, error) {
	t := *f.target
	t.Serve = func(ctx context.Context, req *core.Request) (*core.Response, error) {
		f.mu.Lock()
		f.served++
		f.mu.Unlock()
		return &core.Response{Data: map[string]any{"ok": true}}, nil
	}
	return &t, nil
}

type fakeAuthn struct{}

func (fakeAuthn) Authenticate(ctx context.Context, req *core.Request) (*core.Principal, error) {
	switch req.ClientToken {
	case "root":
		return &core.Principal{ClientToken: "root", Root: true, Policies: []string{"root"}}, nil
	case "user":
		return &core.Principal{ClientToken: "user", Policies: []string{"default"}}, nil
	}
	return nil, core.ErrPermissionDenied
}

type fakeAuthz struct{ err error }

func (f fakeAuthz) Authorize(ctx context.Context, req *core.Request) (*core.Decision, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &core.Decision{Allowed: req.Principal.Root}, nil
}

type fakeAudit struct {
	mu       sync.Mutex
	failReq  bool
	failResp bool
	events   []*core.AuditEvent
}

func (a *fakeAudit) LogRequest(ctx context.Context, ev *core.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failReq {
		return errors.New("disk full")
	}
	a.events = append(a.events, ev)
	return nil
}

func (a *fakeAudit) LogResponse(ctx context.Context, ev *core.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failResp {
		return errors.New("disk full")
	}
	a.events = append(a.events, ev)
	return nil
}

type sealState bool

func (s sealState) Sealed() bool { return bool(s) }

func newDispatcher(t *testing.T, target *core.Target, authz core.Authorizer, audit *fakeAudit, sealed bool) (*core.Dispatcher, *fakeResolver) {
	t.Helper()
	r := &fakeResolver{target: target}
	d, err := core.NewDispatcher(core.DispatcherConfig{Resolver: r, Authenticator: fakeAuthn{}, Authorizer: authz, Auditor: audit, Seal: sealState(sealed)})
	if err != nil {
		t.Fatal(err)
	}
	return d, r
}

func TestDispatcherAuditsBothWaysAndFailsClosed(t *testing.T) {
	ctx := context.Background()
	target := &core.Target{Found: true, Mount: &core.MountInfo{Path: "secret/"}}
	cases := []struct {
		name       string
		token      string
		authz      core.Authorizer
		audit      *fakeAudit
		sealed     bool
		wantCode   core.Code
		wantServed int
		wantEvents int
	}{
		{"root allowed", "root", fakeAuthz{}, &fakeAudit{}, false, "", 1, 2},
		{"denied is audited", "user", fakeAuthz{}, &fakeAudit{}, false, core.CodePermissionDenied, 0, 2},
		{"bad token is audited", "nope", fakeAuthz{}, &fakeAudit{}, false, core.CodePermissionDenied, 0, 2},
		{"authz error denies", "root", fakeAuthz{err: errors.New("rego blew up")}, &fakeAudit{}, false, core.CodePermissionDenied, 0, 2},
		{"request audit failure: not routed", "root", fakeAuthz{}, &fakeAudit{failReq: true}, false, core.CodeAuditRequest, 0, 0},
		{"response audit failure: withheld", "root", fakeAuthz{}, &fakeAudit{failResp: true}, false, core.CodeAuditResponse, 1, 1},
		{"denied, response entry fails: not executed", "user", fakeAuthz{}, &fakeAudit{failResp: true}, false, core.CodeAuditRequest, 0, 1},
		{"sealed", "root", fakeAuthz{}, &fakeAudit{}, true, core.CodeSealed, 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, r := newDispatcher(t, target, tc.authz, tc.audit, tc.sealed)
			resp, err := d.Handle(ctx, &core.Request{Operation: core.OpRead, Path: "secret/x", ClientToken: tc.token})
			if got := core.CodeOf(err); got != tc.wantCode {
				t.Fatalf("code %q, want %q (err %v)", got, tc.wantCode, err)
			}
			if tc.wantCode != "" && resp != nil {
				t.Fatalf("a response escaped with an error: %+v", resp)
			}
			if r.served != tc.wantServed {
				t.Fatalf("served %d times, want %d", r.served, tc.wantServed)
			}
			if len(tc.audit.events) != tc.wantEvents {
				t.Fatalf("%d audit events, want %d", len(tc.audit.events), tc.wantEvents)
			}
			for _, ev := range tc.audit.events {
				if ev.Request == nil || ev.Request.ID == "" {
					t.Fatal("audit event without request id")
				}
			}
			if tc.wantEvents == 2 && tc.audit.events[0].Request.ID != tc.audit.events[1].Request.ID {
				t.Fatal("response entry does not repeat the request id")
			}
		})
	}
}

func TestDispatcherUnauditedAndSealedOK(t *testing.T) {
	ctx := context.Background()
	audit := &fakeAudit{}
	d, r := newDispatcher(t, &core.Target{Found: true, Unaudited: true, Unauthenticated: true, SealedOK: true}, fakeAuthz{}, audit, true)
	if _, err := d.Handle(ctx, &core.Request{Operation: core.OpRead, Path: "sys/health"}); err != nil {
		t.Fatal(err)
	}
	if r.served != 1 || len(audit.events) != 0 {
		t.Fatalf("served=%d events=%d", r.served, len(audit.events))
	}
}

func TestDispatcherExistenceCheckTurnsUpdateIntoCreate(t *testing.T) {
	ctx := context.Background()
	var seen core.Operation
	authz := authzFunc(func(ctx context.Context, req *core.Request) (*core.Decision, error) {
		seen = req.Operation
		return &core.Decision{Allowed: true}, nil
	})
	target := &core.Target{Found: true, Exists: func(context.Context, *core.Request) (bool, error) { return false, nil }}
	d, _ := newDispatcher(t, target, authz, &fakeAudit{}, false)
	if _, err := d.Handle(ctx, &core.Request{Operation: core.OpUpdate, Path: "secret/x", ClientToken: "root"}); err != nil {
		t.Fatal(err)
	}
	if seen != core.OpCreate {
		t.Fatalf("authorizer saw %q, want create", seen)
	}
}

type authzFunc func(ctx context.Context, req *core.Request) (*core.Decision, error)

func (f authzFunc) Authorize(ctx context.Context, req *core.Request) (*core.Decision, error) {
	return f(ctx, req)
}
