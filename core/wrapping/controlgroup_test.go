package wrapping

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/token"
)

// hold has the service hold a request by p, as the Dispatcher does for an
// allowed request that needs approval.
func (e *env) hold(p *holder, path string, a *core.Approval, reason string) (*core.Request, *core.WrapInfo) {
	e.t.Helper()
	req := e.req(p, core.OpRead, path, map[string]any{"version": json.Number("2")})
	if _, err := e.authenticate(req); err != nil {
		e.t.Fatal(err)
	}
	req.Principal.Identity = &core.Identity{EntityID: p.entityID, Actor: strings.TrimPrefix(p.entityID, "entity-"), Groups: p.groups}
	if reason != "" {
		req.Headers.Set(ReasonHeader, reason)
	}
	req.Decision = &core.Decision{Allowed: true, Approval: a}
	resp, err := e.svc.Hold(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.Data != nil || resp.WrapInfo == nil {
		e.t.Fatalf("held response %+v", resp)
	}
	return req, resp.WrapInfo
}

func (e *env) authorizeAs(p *holder, accessor string) (*core.Request, *core.Response, error) {
	r := e.req(p, core.OpUpdate, "sys/control-group/authorize", map[string]any{"accessor": accessor})
	resp, err := e.serve(r, p.groups...)
	return r, resp, err
}

func TestControlGroupFlow(t *testing.T) {
	e := mustEnv(t)
	carol := e.newPerson("carol")                         // the requester
	lead := e.newPerson("lead", "clinical-leads")         // an approver
	lead2 := e.newPerson("lead2", "clinical-leads", "po") // approves in both factors
	outsider := e.newPerson("outsider", "billing")
	a := &core.Approval{MaxTTL: 4 * time.Hour, Sources: []string{"acl:phi"}, Factors: []core.ApprovalFactor{
		{Name: "clinical-lead", GroupNames: []string{"clinical-leads"}, Approvals: 2},
		{Name: "privacy", GroupNames: []string{"po"}, Approvals: 1},
	}}
	held, w := e.hold(&carol, "secret/data/phi/ward-7", a, "INC-42 patient transfer")
	if w.TTL != 4*3600 || w.CreationPath != "secret/data/phi/ward-7" {
		t.Fatalf("wrap info %+v", w)
	}

	// The requester cannot approve; neither can someone in no factor group.
	_, _, err := e.authorizeAs(&holder{token: carol.token, entityID: carol.entityID, groups: []string{"clinical-leads"}}, w.Accessor)
	wantCode(t, err, core.CodePermissionDenied, "cannot approve it")
	_, _, err = e.authorizeAs(&outsider, w.Accessor)
	wantCode(t, err, core.CodePermissionDenied, "in none of the groups")
	// A token with no entity cannot approve, and an accessor is needed.
	raw, _, err := e.tokens.Create(context.Background(), token.CreateParams{Policies: []string{"default"}, DisplayName: "anon"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.authorizeAs(&holder{token: raw, groups: []string{"clinical-leads"}}, w.Accessor)
	wantCode(t, err, core.CodePermissionDenied, "no identity entity")
	_, _, err = e.authorizeAs(&lead, "")
	wantCode(t, err, core.CodeInvalid, "missing accessor")

	// Not yet approved: the requester's unwrap is refused and spends nothing.
	unwrap := func() (*core.Request, *core.Response, error) {
		r := e.req(&carol, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token})
		resp, err := e.serve(r)
		return r, resp, err
	}
	r, _, err := unwrap()
	wantCode(t, err, core.CodePermissionDenied, `needs further approval: factor "clinical-lead" has 0 of 2 approvals`)
	if r.Labels[core.LabelControlGroup] != held.ID {
		t.Fatalf("refused unwrap labels %v", r.Labels)
	}

	r, resp, err := e.authorizeAs(&lead, w.Accessor)
	if err != nil || resp.Data["approved"] != false {
		t.Fatalf("first approval: %+v %v", resp, err)
	}
	if r.Labels[core.LabelControlGroup] != held.ID || r.Labels[core.LabelControlGroupState] != "pending" || r.Labels[core.LabelApprover] != "lead" {
		t.Fatalf("approval labels %v", r.Labels)
	}
	_, _, err = e.authorizeAs(&lead, w.Accessor)
	wantCode(t, err, core.CodeInvalid, "already approved")

	// The state, as an approver sees it.
	st, err := e.serve(e.req(&lead, core.OpUpdate, "sys/control-group/request", map[string]any{"accessor": w.Accessor}))
	if err != nil {
		t.Fatal(err)
	}
	ent := st.Data["request_entity"].(map[string]any)
	if st.Data["approved"] != false || st.Data["request_path"] != "secret/data/phi/ward-7" || st.Data["request_id"] != held.ID ||
		st.Data["reason"] != "INC-42 patient transfer" || ent["id"] != "entity-carol" || len(st.Data["authorizations"].([]map[string]any)) != 1 {
		t.Fatalf("request state %+v", st.Data)
	}

	r, resp, err = e.authorizeAs(&lead2, w.Accessor)
	if err != nil || resp.Data["approved"] != true || r.Labels[core.LabelControlGroupState] != "approved" || r.Labels[core.LabelApprover] != "lead,lead2" {
		t.Fatalf("second approval: %+v %v %v", resp, err, r.Labels)
	}

	// Only the requester runs it, and only with their own token.
	_, err = e.serve(e.req(&lead, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token}))
	wantCode(t, err, core.CodePermissionDenied, "only the requester")
	_, err = e.serve(e.req(&holder{token: w.Token}, core.OpUpdate, "sys/wrapping/unwrap", nil))
	wantCode(t, err, core.CodeInvalid, "runs as its requester")
	if len(e.dispatched) != 0 {
		t.Fatal("executed before the requester unwrapped")
	}

	r, resp, err = unwrap()
	if err != nil || !resp.Restored || resp.Data["executed"] != "secret/data/phi/ward-7" {
		t.Fatalf("execute: %+v %v", resp, err)
	}
	if len(e.dispatched) != 1 {
		t.Fatalf("dispatched %d requests", len(e.dispatched))
	}
	run := e.dispatched[0]
	if run.Approved != held.ID || run.Path != held.Path || run.Operation != core.OpRead || run.Data["version"] != json.Number("2") ||
		run.Principal.EntityID != "entity-carol" || run.Header(ReasonHeader) != "INC-42 patient transfer" {
		t.Fatalf("executed request %+v", run)
	}
	for _, labels := range []map[string]string{run.Labels, r.Labels} {
		if labels[core.LabelControlGroup] != held.ID || labels[core.LabelControlGroupState] != "executed" ||
			labels[core.LabelApprover] != "lead,lead2" || labels[core.LabelApproverEntityIDs] != "entity-lead,entity-lead2" ||
			labels[core.LabelControlGroupRequester] != "carol" || labels[core.LabelControlGroupReason] != "INC-42 patient transfer" {
			t.Fatalf("execution labels %v", labels)
		}
	}
	// Once.
	_, _, err = unwrap()
	wantCode(t, err, core.CodeInvalid, "not valid")
	_, _, err = e.authorizeAs(&lead, w.Accessor)
	wantCode(t, err, core.CodeInvalid, "no control group request")
}

func TestControlGroupExpiry(t *testing.T) {
	e := mustEnv(t)
	carol, lead := e.newPerson("carol"), e.newPerson("lead", "leads")
	a := &core.Approval{TTL: time.Hour, Factors: []core.ApprovalFactor{{Name: "f", GroupNames: []string{"leads"}, Approvals: 1}}}
	_, w := e.hold(&carol, "secret/data/x", a, "")
	if w.TTL != 3600 {
		t.Fatalf("ttl %d", w.TTL)
	}
	e.clk.Advance(time.Hour)
	_, _, err := e.authorizeAs(&lead, w.Accessor)
	wantCode(t, err, core.CodeInvalid, "has expired")
	_, err = e.serve(e.req(&carol, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token}))
	wantCode(t, err, core.CodeInvalid, "not valid")

	// Approved in time, but unwrapped too late: not executed either.
	_, w = e.hold(&carol, "secret/data/x", a, "")
	if _, _, err := e.authorizeAs(&lead, w.Accessor); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Hour + time.Second)
	_, err = e.serve(e.req(&carol, core.OpUpdate, "sys/wrapping/unwrap", map[string]any{"token": w.Token}))
	wantCode(t, err, core.CodeInvalid, "not valid")
	if len(e.dispatched) != 0 {
		t.Fatal("an expired control group request was executed")
	}
}

func TestControlGroupTTLs(t *testing.T) {
	e := mustEnv(t)
	for _, c := range []struct {
		a    core.Approval
		want time.Duration
	}{
		{core.Approval{}, DefaultApprovalTTL},
		{core.Approval{MaxTTL: 4 * time.Hour}, 4 * time.Hour},
		{core.Approval{TTL: time.Hour, MaxTTL: 4 * time.Hour}, time.Hour},
		{core.Approval{TTL: 8 * time.Hour, MaxTTL: 4 * time.Hour}, 4 * time.Hour},
	} {
		if got := e.svc.approvalTTL(&c.a); got != c.want {
			t.Errorf("%+v: %s, want %s", c.a, got, c.want)
		}
	}
}
