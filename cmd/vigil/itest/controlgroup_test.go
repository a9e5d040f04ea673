package itest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
	vrego "github.com/vigilsec/vigil/rego"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

const phiPolicy = `
path "secret/data/phi/*" {
  capabilities = ["read"]
  control_group = {
    factor "clinical-lead" {
      identity {
        group_names = ["clinical-leads"]
        approvals = 1
      }
    }
    max_ttl = "4h"
  }
}
path "secret/data/brief/*" {
  capabilities = ["read"]
  control_group {
    ttl = "10m"
    factor "clinical-lead" {
      identity {
        group_names = ["clinical-leads"]
      }
    }
  }
}
`

// controlGroupServer is a dev server with a file audit device, userpass,
// the policies "phi" (control groups on secret/data/phi/* and
// secret/data/brief/*) and "approver" (sys/control-group/authorize), a
// group "clinical-leads", and users carol (requester; phi, approver, in
// the group: she may approve others' requests, never her own) and dave
// (approver, in the group).
type cgServer struct {
	*auditServer
	cgUsers
	dir string
}

// cgUsers are the two people of a control-group test and the secrets they
// ask for.
type cgUsers struct {
	carol, dave  *vaultapi.Client
	carolEntity  string
	daveEntity   string
	secretValues []string
}

func mustControlGroupServer(t *testing.T, clk *fakeClock) *cgServer {
	t.Helper()
	dir := t.TempDir()
	o := servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}
	if clk != nil {
		o.Now = clk.Now
	}
	s := &cgServer{auditServer: mustAuditServer(t, o, auditsvc.Options{}), dir: dir}
	s.cgUsers = setupControlGroups(t, s.Server)
	return s
}

// setupControlGroups gives srv userpass, the policies "phi" and
// "approver", the group "clinical-leads", and carol and dave (see
// mustControlGroupServer), with secrets under secret/data/phi/ and
// secret/data/brief/.
func setupControlGroups(t *testing.T, srv *servertest.Server) cgUsers {
	t.Helper()
	c := srv.Client
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"phi": phiPolicy, "approver": `path "sys/control-group/authorize" { capabilities = ["update"] }`} {
		if err := c.Sys().PutPolicy(name, src); err != nil {
			t.Fatal(err)
		}
	}
	var u cgUsers
	for _, p := range []string{"phi/ward-7", "phi/ward-8", "brief/x"} {
		v := "pw-of-" + strings.ReplaceAll(p, "/", "-")
		u.secretValues = append(u.secretValues, v)
		if _, err := c.Logical().Write("secret/data/"+p, map[string]any{"data": map[string]any{"pw": v}}); err != nil {
			t.Fatal(err)
		}
	}
	ca := userLogin(t, srv, "carol", "phi,approver")
	da := userLogin(t, srv, "dave", "approver")
	u.carol, u.dave, u.carolEntity, u.daveEntity = srv.NewClient(ca.ClientToken), srv.NewClient(da.ClientToken), ca.EntityID, da.EntityID
	for id, name := range map[string]string{ca.EntityID: "carol", da.EntityID: "dave"} {
		if _, err := c.Logical().Write("identity/entity/id/"+id, map[string]any{"name": name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Logical().Write("identity/group", map[string]any{"name": "clinical-leads", "member_entity_ids": []string{ca.EntityID, da.EntityID}}); err != nil {
		t.Fatal(err)
	}
	return u
}

// readWithReason reads path as cl with an X-Vigil-Reason header.
func readWithReason(t *testing.T, cl *vaultapi.Client, path, reason string) *vaultapi.Secret {
	t.Helper()
	c, err := cl.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(cl.Token())
	c.AddHeader("X-Vigil-Reason", reason)
	sec, err := c.Logical().Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// TestControlGroupVaultAPI: a read that needs approval is held (the
// requester gets a wrapping token); the requester can neither unwrap it
// nor approve it herself; an approver sees it and approves it; only the
// requester then runs it, once, with sys/wrapping/unwrap; and the audit
// trail links the request, the refusals, the approval and the execution
// by one id, naming the requester, the approver (entity, method, time)
// and the reason.
func TestControlGroupVaultAPI(t *testing.T) {
	s := mustControlGroupServer(t, nil)
	sec := readWithReason(t, s.carol, "secret/data/phi/ward-7", "INC-42 transfer to ICU")
	w := sec.WrapInfo
	if w == nil || sec.Data != nil || w.CreationPath != "secret/data/phi/ward-7" || w.TTL != 4*3600 || w.Accessor == "" {
		t.Fatalf("held read: %+v %+v", sec, w)
	}

	// Not approved yet: the unwrap is refused and spends nothing.
	_, err := s.carol.Logical().Unwrap(w.Token)
	wantStatus(t, err, http.StatusForbidden)
	if !strings.Contains(err.Error(), "needs further approval") {
		t.Fatalf("early unwrap: %v", err)
	}
	// Self-approval is refused.
	_, err = s.carol.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": w.Accessor})
	wantStatus(t, err, http.StatusForbidden)
	if !strings.Contains(err.Error(), "cannot approve it") {
		t.Fatalf("self-approval: %v", err)
	}

	// The approver looks, then approves.
	st, err := s.dave.Logical().Write("sys/control-group/request", map[string]any{"accessor": w.Accessor})
	if err != nil {
		t.Fatal(err)
	}
	ent, _ := st.Data["request_entity"].(map[string]any)
	if st.Data["approved"] != false || st.Data["request_path"] != "secret/data/phi/ward-7" || ent["id"] != s.carolEntity || ent["name"] != "carol" ||
		st.Data["reason"] != "INC-42 transfer to ICU" {
		t.Fatalf("request state: %+v", st.Data)
	}
	heldID, _ := st.Data["request_id"].(string)
	ok, err := s.dave.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": w.Accessor})
	if err != nil || ok.Data["approved"] != true {
		t.Fatalf("approve: %+v %v", ok, err)
	}
	st, err = s.dave.Logical().Write("sys/control-group/request", map[string]any{"accessor": w.Accessor})
	if err != nil || st.Data["approved"] != true || len(st.Data["authorizations"].([]any)) != 1 {
		t.Fatalf("after approval: %+v %v", st, err)
	}
	if a := st.Data["authorizations"].([]any)[0].(map[string]any); a["entity_id"] != s.daveEntity || a["entity_name"] != "dave" {
		t.Fatalf("authorization: %v", a)
	}

	// Only the requester runs it.
	_, err = s.dave.Logical().Unwrap(w.Token)
	wantStatus(t, err, http.StatusForbidden)
	un, err := s.carol.Logical().Unwrap(w.Token)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := un.Data["data"].(map[string]any); d["pw"] != "pw-of-phi-ward-7" {
		t.Fatalf("executed read: %+v", un.Data)
	}
	_, err = s.carol.Logical().Unwrap(w.Token)
	wantStatus(t, err, http.StatusBadRequest)
	_, err = s.dave.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": w.Accessor})
	wantStatus(t, err, http.StatusBadRequest)

	// The audit trail, linked by the held request's id.
	for _, v := range s.secretValues {
		if hits := fileContains(t, s.dir, v); len(hits) > 0 {
			t.Fatalf("secret %q in clear in %v", v, hits)
		}
	}
	var held, selfRefused, approved, executed, unwrapped bool
	for _, l := range entries(readLog(t, auditLogPath(s.dir))) {
		if m := clearToken.FindString(l.Raw); m != "" {
			t.Fatalf("token %s in clear in the audit log: %s", m, l.Raw)
		}
		fl, _ := l.Vigil["flags"].(map[string]any)
		if fl["control_group"] != heldID || l.Type != "response" {
			continue
		}
		id, _ := l.Vigil["identity"].(map[string]any)
		path, _ := l.Request["path"].(string)
		if fl["control_group_requester"] != "carol" || fl["control_group_reason"] != "INC-42 transfer to ICU" {
			t.Fatalf("entry without requester or reason: %s", l.Raw)
		}
		switch {
		case path == "secret/data/phi/ward-7" && fl["control_group_state"] == "pending":
			held = l.requestID() == heldID && l.Auth["entity_id"] == s.carolEntity && l.Response["wrap_info"] != nil && l.Response["data"] == nil
		case path == "sys/control-group/authorize" && l.Auth["entity_id"] == s.carolEntity:
			selfRefused = l.Error != "" && l.Vigil["status"] == float64(403)
		case path == "sys/control-group/authorize" && fl["control_group_state"] == "approved":
			approved = l.Auth["entity_id"] == s.daveEntity && id["alias"] == "userpass/dave" && fl["approver"] == "dave" && l.Time != ""
		case path == "secret/data/phi/ward-7" && fl["control_group_state"] == "executed":
			d, _ := l.Response["data"].(map[string]any)
			inner, _ := d["data"].(map[string]any)
			pw, _ := inner["pw"].(string)
			executed = l.Auth["entity_id"] == s.carolEntity && fl["approver"] == "dave" && fl["approver_entity_ids"] == s.daveEntity &&
				strings.HasPrefix(pw, "hmac-sha256:") && l.requestID() != heldID
		case path == "sys/wrapping/unwrap" && fl["control_group_state"] == "executed":
			unwrapped = l.Auth["entity_id"] == s.carolEntity && l.Error == ""
		}
	}
	if !held || !selfRefused || !approved || !executed || !unwrapped {
		t.Fatalf("audit trail of control group %s: held=%v self-approval refused=%v approved=%v executed=%v unwrapped=%v",
			heldID, held, selfRefused, approved, executed, unwrapped)
	}
}

// TestControlGroupExpiry: past its TTL a control-group request can no
// longer be approved nor run, approved or not.
func TestControlGroupExpiry(t *testing.T) {
	clk := newFakeClock()
	s := mustControlGroupServer(t, clk)
	pending := readWithReason(t, s.carol, "secret/data/brief/x", "expires unapproved").WrapInfo
	approved := readWithReason(t, s.carol, "secret/data/brief/x", "expires approved").WrapInfo
	if pending.TTL != 600 {
		t.Fatalf("ttl %d", pending.TTL)
	}
	if _, err := s.dave.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": approved.Accessor}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10*time.Minute + time.Second)
	_, err := s.dave.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": pending.Accessor})
	wantStatus(t, err, http.StatusBadRequest)
	if !strings.Contains(err.Error(), "expired") {
		t.Fatalf("late approval: %v", err)
	}
	for _, w := range []*vaultapi.SecretWrapInfo{pending, approved} {
		_, err = s.carol.Logical().Unwrap(w.Token)
		wantStatus(t, err, http.StatusBadRequest)
	}
	// Nothing was executed.
	for _, l := range entries(readLog(t, auditLogPath(s.dir))) {
		if fl, _ := l.Vigil["flags"].(map[string]any); fl["control_group_state"] == "executed" {
			t.Fatalf("an expired request was executed: %s", l.Raw)
		}
	}
}

// TestControlGroupFromRego: a custom Rego module's require_approval holds
// requests as an ACL control group does (rego/examples/phi_approval.rego:
// PHI outside business hours needs a clinical lead's approval).
func TestControlGroupFromRego(t *testing.T) {
	clk := newFakeClock()
	// A Wednesday at 10:00 UTC.
	clk.t = nextUTC(clk.Now(), time.Wednesday, 10)
	s := mustControlGroupServer(t, clk)
	c := s.Client
	if err := c.Sys().Mount("phi", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2", "phi": "true"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("phi/data/p1", map[string]any{"data": map[string]any{"mrn": "100001"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("phi-mount", `path "phi/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("sys/policies/rego/phi_approval", map[string]any{"policy": vrego.Examples()["phi_approval"], "enforcement_level": "mandatory"}); err != nil {
		t.Fatal(err)
	}
	a := userLogin(t, s.Server, "erin", "phi-mount")
	erin := s.NewClient(a.ClientToken)

	// In business hours: read at once.
	if sec, err := erin.Logical().Read("phi/data/p1"); err != nil || sec.WrapInfo != nil || sec.Data["data"] == nil {
		t.Fatalf("business hours: %+v %v", sec, err)
	}
	// 22:00 (new logins: the old tokens have expired): held until a
	// clinical lead approves.
	clk.Advance(12 * time.Hour)
	erin = s.NewClient(userLogin(t, s.Server, "erin", "phi-mount").ClientToken)
	s.dave = s.NewClient(userLogin(t, s.Server, "dave", "approver").ClientToken)
	sec := readWithReason(t, erin, "phi/data/p1", "night shift, patient deteriorating")
	if sec.WrapInfo == nil || sec.Data != nil || sec.WrapInfo.TTL != 7200 {
		t.Fatalf("night: %+v", sec)
	}
	if _, err := s.dave.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": sec.WrapInfo.Accessor}); err != nil {
		t.Fatal(err)
	}
	un, err := erin.Logical().Unwrap(sec.WrapInfo.Token)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := un.Data["data"].(map[string]any); d["mrn"] != "100001" {
		t.Fatalf("executed: %+v", un.Data)
	}
}

// nextUTC is the first time after t on weekday at hour:00 UTC.
func nextUTC(t time.Time, day time.Weekday, hour int) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), hour, 0, 0, 0, time.UTC)
	for !d.After(t) || d.Weekday() != day {
		d = d.Add(24 * time.Hour)
	}
	return d
}

// TestControlGroupAuditQuery: GET sys/audit/query?flag=control_group=<id>
// answers the control group's whole story — the held request with its
// reason, the refused self-approval, the approval by dave, the unwrap and
// the execution as carol — and nothing else.
func TestControlGroupAuditQuery(t *testing.T) {
	dir := t.TempDir()
	s := mustQueryServer(t, dir, nil, nil, querysvc.Options{Poll: 2 * time.Millisecond})
	u := setupControlGroups(t, s.Server)
	w := readWithReason(t, u.carol, "secret/data/phi/ward-7", "INC-7 night shift").WrapInfo
	// A second control group, which the query must leave out.
	other := readWithReason(t, u.carol, "secret/data/phi/ward-8", "INC-8").WrapInfo
	if w == nil || other == nil {
		t.Fatal("reads were not held")
	}
	if _, err := u.carol.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": w.Accessor}); err == nil {
		t.Fatal("self-approval accepted")
	}
	st, err := u.dave.Logical().Write("sys/control-group/request", map[string]any{"accessor": w.Accessor})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := st.Data["request_id"].(string)
	if _, err := u.dave.Logical().Write("sys/control-group/authorize", map[string]any{"accessor": w.Accessor}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.carol.Logical().Unwrap(w.Token); err != nil {
		t.Fatal(err)
	}
	waitQueryCovers(t, s.Server, s.checkpointNow(t), time.Minute)

	res := apiQueryAll(t, s.Server, s.Client.Token(), url.Values{"flag": {"control_group=" + id}})
	seen := map[string]bool{}
	for _, r := range res.Records {
		if r.Flags["control_group"] != id || r.Flags["control_group_reason"] != "INC-7 night shift" || r.Flags["control_group_requester"] != "carol" {
			t.Fatalf("record outside control group %s: %+v", id, r)
		}
		switch {
		case r.Path == "secret/data/phi/ward-7" && r.Flags["control_group_state"] == "pending" && r.RequestID == id:
			seen["held"] = true
		case r.Path == "sys/control-group/authorize" && r.Actor == "carol" && r.Error != "":
			seen["self-approval refused"] = true
		case r.Path == "sys/control-group/authorize" && r.Actor == "dave" && r.Flags["control_group_state"] == "approved":
			seen["approved"] = true
		case r.Path == "sys/wrapping/unwrap" && r.Actor == "carol" && r.Flags["control_group_state"] == "executed":
			seen["unwrapped"] = true
		case r.Path == "secret/data/phi/ward-7" && r.Actor == "carol" && r.Flags["control_group_state"] == "executed" && r.Flags["approver"] == "dave":
			seen["executed"] = true
		}
	}
	for _, k := range []string{"held", "self-approval refused", "approved", "unwrapped", "executed"} {
		if !seen[k] {
			t.Errorf("query by control group id lacks the %s record (%d records)", k, len(res.Records))
		}
	}
}
