package reports

import (
	"fmt"

	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core/authz"
)

// Chart IDs.
const (
	ChartAccessesPerDay = "accesses-per-day"
	ChartTopActors      = "top-actors"
	ChartDenialsBG      = "denials-break-glass"
	ChartPathHeat       = "path-heat"
)

func (g *gen) build() *Report {
	r := &Report{Kind: g.p.Kind, From: g.p.From, To: g.p.To, GeneratedAt: g.p.GeneratedAt, NodeID: g.env.NodeID,
		Backend: g.backend, Checkpoint: g.cp, BusinessHours: g.p.BusinessHours, TimeZone: g.p.TimeZone, Period: g.p.Period, Coverage: g.cov}
	r.Scope = Scope{Tags: []string{"phi=true", "regulated=true"}, Mounts: []string{}, Secrets: append([]string(nil), g.secretNames...)}
	for _, m := range g.scope {
		if g.scopeQ[m][0] == "mount" {
			r.Scope.Mounts = append(r.Scope.Mounts, m)
		}
	}
	switch {
	case len(g.scope) == 0:
		r.Scope.Note = "No mount or secret is tagged phi=true or regulated=true: the access figures cover nothing. Tag the mounts holding regulated data (vigil secrets enable -options=phi=true ..., or secrets tune), or single KV v2 secrets (vigil kv metadata put -custom-metadata=phi=true ...)."
	case len(g.secretNames) == 0:
		r.Scope.Note = "Access figures cover the mounts tagged phi=true or regulated=true (and any mounts added to the scope explicitly); privileged operations, logins, break-glass and root-token use cover every path."
	default:
		r.Scope.Note = "Access figures cover the mounts tagged phi=true or regulated=true (and any mounts added to the scope explicitly) and the KV v2 secrets whose custom_metadata tags them so (every request on the secret: data, metadata, delete, undelete, destroy); privileged operations, logins, break-glass and root-token use cover every path."
	}
	if g.src.TaggedTruncated {
		r.Scope.Note += " More tagged secrets exist than a report lists; tag their mount instead."
	}
	r.Summary = []Figure{
		{Key: "records", Label: "Audited requests in the period (all paths)", Count: g.all.total, Check: g.allCheck("")},
		{Key: "scoped_accesses", Label: "Requests to in-scope mounts", Count: g.scoped(func(c *counts) int64 { return c.total }), Check: g.scopeCheck("")},
		{Key: "scoped_denied", Label: "Denied requests to in-scope mounts", Count: g.scoped(func(c *counts) int64 { return c.denied }), Check: g.scopeCheck("", "allowed", "false")},
		{Key: "break_glass", Label: "Break-glass requests", Count: g.bgCount, Check: g.allCheck("", "flag", "break_glass")},
		{Key: "root_token_use", Label: "Requests made with a root token", Count: g.rootCount, Check: g.allCheck("", "policy", "root")},
		{Key: "failed_logins", Label: "Failed logins", Count: g.loginFail, Check: g.allCheck("", "login", "failed")},
		{Key: "coverage", Label: "Coverage of the period by the log held", Text: strings.ToUpper(g.cov.Status)},
	}
	var cited []string
	switch g.p.Kind {
	case KindHIPAA:
		r.Title = "HIPAA Security Rule audit report"
		r.Regulation = "HIPAA Security Rule, 45 CFR Part 164 Subpart C"
		r.Caveats = []string{compliance.HIPAACaveat}
		r.Sections = []Section{g.gated(g.auditControls("hipaa-164.312(b)", "Audit controls", compliance.H312b)),
			g.gated(g.activity("hipaa-164.308(a)(1)(ii)(D)", "Information system activity review", compliance.H308a1iiD, compliance.H312a2i, compliance.H312a2ii)),
			g.gated(g.logins("hipaa-164.308(a)(5)(ii)(C)", "Log-in monitoring", compliance.H308a5iiC, compliance.H312d)),
			g.gated(g.accessReview("hipaa-164.308(a)(4)(ii)(C)", "Access review: who can reach ePHI", compliance.H308a4iiC, compliance.H308a3iiC, compliance.H312a2ii)),
			g.integrity("hipaa-164.312(c)(1)", "Integrity of the audit records", compliance.H312c1, compliance.H312c2),
			g.retention("hipaa-164.316(b)(2)(i)", "Retention", compliance.H316b2i),
			g.backupDrills("hipaa-164.308(a)(7)(ii)(A)", "Contingency plan: data backup and restore drills", compliance.H308a7iiA, compliance.H308a7iiD),
			g.keyCustody("hipaa-164.308(a)(7)", "Contingency plan: unseal and recovery key custody drills", compliance.H308a7i, compliance.H308a7iiD)}
	case KindNRB:
		r.Title = "Nepal Rastra Bank audit-trail report"
		r.Regulation = "NRB IT Guidelines 2012 and Cyber Resilience Guidelines 2023 (mapping; control numbers unverified)"
		r.Caveats = []string{compliance.NRBCaveat}
		r.Sections = []Section{g.gated(g.eventRecording()),
			g.integrity("nrb-audit-data-protected", "Audit data protected", compliance.NCRGProt, compliance.NITGAudit),
			g.backups(),
			g.clocks(),
			g.centralised(),
			g.gated(g.logins("nrb-access-monitoring", "Log-in monitoring and authentication", compliance.NCRG71d, compliance.NITGAudit)),
			g.gated(g.activity("nrb-regulated-activity", "Activity on regulated data (audit trails)", compliance.NITGAudit, compliance.NCRGRecord)),
			g.gated(g.privilegedReview()),
			g.gated(g.accessReview("nrb-access-review", "Access review: who can reach regulated data", compliance.NITGAudit, compliance.NITGISA)),
			g.retention("nrb-retention", "Log retention", compliance.NCRGBackup),
			g.backupDrills("nrb-bcp-restore-drills", "Business continuity: automated backups and restore drills", compliance.NITGBCP, compliance.NCRGBackup),
			g.keyCustody("nrb-bcp-key-custody", "Business continuity: unseal and recovery key custody drills", compliance.NITGBCP)}
		r.Sections[5].Notes = append(r.Sections[5].Notes, "Vigil has no multi-factor authentication of its own: where CRG 71(d) [U] applies, show MFA at the identity provider in front of Vigil's auth methods.")
	}
	for _, s := range r.Sections {
		for _, c := range s.Controls {
			if !slices.Contains(cited, c.ID) {
				cited = append(cited, c.ID)
			}
		}
	}
	for _, id := range cited {
		r.Controls = append(r.Controls, compliance.MustLookup(id))
	}
	if ns := g.p.Namespace; !ns.IsRoot() && ns.Path != "" {
		r.Namespace = ns.Path
		r.Caveats = append(r.Caveats, "Scoped to namespace "+ns.Path+": the access, login, break-glass and privileged-operation figures count the requests made in it and in its child namespaces; its tokens and policies are the namespace's own. The audit trail's evidence (devices, verification, retention, snapshots) is the server's, which records every namespace.")
	}
	for i := range r.Sections {
		for j := range r.Sections[i].Tables {
			bound(&r.Sections[i].Tables[j], g.p.Rows)
		}
	}
	r.Charts = g.charts()
	return r
}

// gated applies the coverage to a section whose judgement comes from
// audit records.
func (g *gen) gated(s Section) Section {
	g.cov.gate(&s)
	return s
}

func (g *gen) auditControls(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...)}
	working, failed := 0, 0
	t := Table{ID: "audit-devices", Title: "Audit devices", Columns: []string{"Device", "Type", "Path", "Status"}, Empty: "No audit device is enabled."}
	for _, d := range g.env.Devices {
		st := "recording"
		if d.Failed {
			st, failed = "FAILED: "+d.Error, failed+1
		} else {
			working++
		}
		t.Rows = append(t.Rows, []string{d.Name, d.Type, d.Path, st})
	}
	s.Tables = append(s.Tables, t, g.streamTable())
	s.Figures = []Figure{
		{Key: "devices", Label: "Audit devices enabled", Count: int64(len(g.env.Devices))},
		{Key: "devices_failed", Label: "Audit devices failed", Count: int64(failed)},
		{Key: "streams", Label: "Audit streams (remote copies)", Count: int64(len(g.env.Streams))},
		{Key: "fail_closed", Label: "Fail-closed (requests refused when nothing can record)", Text: yesNo(g.env.AuditRequired)},
		{Key: "records", Label: "Audited requests in the period (all paths)", Count: g.all.total, Check: g.allCheck("")},
		{Key: "scoped_accesses", Label: "Requests to in-scope mounts", Count: g.scoped(func(c *counts) int64 { return c.total }), Check: g.scopeCheck("")},
		{Key: "incomplete", Label: "Requests without a response entry (crash or unrecordable response)", Count: g.incompl, Check: g.allCheck("", "incomplete", "true")},
	}
	s.Notes = []string{"Every request, denied ones included, passes through one dispatcher that writes the request entry before routing and the response entry after; a request whose entry cannot be written is refused (fail closed). Only Vault's unaudited endpoints (health, seal status, init, unseal, leader) are not recorded."}
	switch {
	case working == 0:
		s.Result, s.ResultText = ResultFail, "No audit device records."
	case !g.env.AuditRequired:
		s.Result, s.ResultText = ResultFail, "Audit is not required: requests would be served unaudited if the devices failed."
	case failed > 0 || g.incompl > 0:
		s.Result, s.ResultText = ResultAttention, fmt.Sprintf("%d failed device(s); %s without a response entry.", failed, plural(g.incompl, "request", "requests"))
	default:
		s.Result, s.ResultText = ResultPass, fmt.Sprintf("%d device(s) recording, fail-closed, every request in the period has its response entry.", working)
	}
	return s
}

func (g *gen) streamTable() Table {
	t := Table{ID: "audit-streams", Title: "Audit streams", Columns: []string{"Stream", "Type", "State", "Lag (entries)", "Lag (s)", "Shipped to seq"},
		Empty: "No audit stream is configured."}
	if !g.env.StreamsKnown {
		t.Empty = "Audit streams are not wired on this server."
	}
	for _, st := range g.env.Streams {
		t.Rows = append(t.Rows, []string{st.Name, st.Type, st.State, itoa(int64(st.LagEntries)), fmt.Sprintf("%.0f", st.LagSeconds), itoa(int64(st.Cursor.Seq))})
	}
	return t
}

func (g *gen) activity(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...), Charts: []string{ChartAccessesPerDay, ChartTopActors, ChartDenialsBG, ChartPathHeat}}
	sc := func(f func(*counts) int64) int64 { return g.scoped(f) }
	denied, errs, off := sc(func(c *counts) int64 { return c.denied }), sc(func(c *counts) int64 { return c.errors }), sc(func(c *counts) int64 { return c.off })
	var privTotal int64
	for _, c := range privCategories {
		privTotal += g.priv[c]
	}
	s.Figures = []Figure{
		{Key: "scoped_accesses", Label: "Requests to in-scope mounts", Count: sc(func(c *counts) int64 { return c.total }), Check: g.scopeCheck("")},
		{Key: "scoped_actors", Label: "Distinct identities accessing in-scope mounts", Count: int64(len(g.byActor)), Check: g.distinctCheck()},
		{Key: "scoped_denied", Label: "Denied requests to in-scope mounts", Count: denied, Check: g.scopeCheck("", "allowed", "false")},
		{Key: "scoped_errors", Label: "Allowed requests to in-scope mounts that failed", Count: errs, Check: g.scopeCheck("error", "allowed", "true")},
		{Key: "scoped_off_hours", Label: fmt.Sprintf("Off-hours requests to in-scope mounts (outside %02d:00-%02d:00 Mon-Fri %s)", g.p.BusinessHours.Start, g.p.BusinessHours.End, g.p.BusinessHours.Location),
			Count: off, Check: g.scopeCheck("", g.offHoursKV()...)},
		{Key: "break_glass", Label: "Break-glass requests (any path)", Count: g.bgCount, Check: g.allCheck("", "flag", "break_glass")},
		{Key: "approved_access", Label: "Requests run after approval (control groups, any path)", Count: g.approvedCount,
			Check: g.allCheck("approved_execution", "flag", "control_group_state=executed")},
		{Key: "root_token_use", Label: "Requests made with a root token (any path)", Count: g.rootCount, Check: g.allCheck("", "policy", "root")},
	}
	for _, c := range privCategories {
		s.Figures = append(s.Figures, Figure{Key: "privileged_" + c, Label: privTitles[c], Count: g.priv[c], Check: g.allCheck("", "category", "privileged:"+c)})
	}
	s.Tables = append(s.Tables, g.actorTable(), g.pathTable(), g.breakGlassTable(), g.approvedTable(), g.privTable(), g.rootTable())
	var why []string
	for _, x := range []struct {
		n    int64
		what string
	}{{denied, "denied"}, {off, "off-hours"}, {g.bgCount, "break-glass"}, {g.rootCount, "root-token"}, {privTotal, "privileged"}} {
		if x.n > 0 {
			why = append(why, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	if len(why) > 0 {
		s.Result, s.ResultText = ResultAttention, "Events to review: "+strings.Join(why, ", ")+"."
	} else {
		s.Result, s.ResultText = ResultPass, "No denied, off-hours, break-glass, root-token or privileged events in the period."
	}
	s.Notes = []string{
		"Break-glass requests are those a policy flagged break_glass (rego/examples/break_glass.rego requires a stated X-Vigil-Reason); the reason and ticket are shown as recorded.",
		"Requests run after approval are those a control group held until other people approved them (164.312(a)(2)(ii) emergency access procedure): each row names the requester, the approvers and the stated reason; `vigil audit query --flag control_group=<id>` lists the request, every approval and the execution.",
		"Unseal is not an audited request (as in Vault); seal, key rotation, rekey and root-token generation are.",
		g.signOff(),
	}
	return s
}

func (g *gen) actorTable() Table {
	t := Table{ID: "accesses-by-identity", Title: "Accesses to in-scope mounts by identity", Columns: []string{"Identity", "Requests", "Denied", "Off-hours"},
		CountCol: 1, Empty: "No access to in-scope mounts in the period."}
	m := map[string]int64{}
	for a, c := range g.byActor {
		m[a] = c.total
	}
	for _, e := range g.topActors(m, 0) {
		c := g.byActor[e.k]
		t.Rows = append(t.Rows, []string{g.actorNames[e.k], itoa(c.total), itoa(c.denied), itoa(c.off)})
		t.RowChecks = append(t.RowChecks, g.actorRowCheck(e.k))
	}
	return t
}

func (g *gen) topPaths() []kc {
	m := map[string]int64{}
	for p, s := range g.byPath {
		m[p] = s.total
	}
	return topN(m, max(15, g.p.Top))
}

func (g *gen) pathTable() Table {
	t := Table{ID: "accesses-by-path", Title: "Accesses by in-scope path", Columns: []string{"Path", "Requests", "Denied", "Off-hours"},
		CountCol: 1, Empty: "No access to in-scope paths in the period."}
	for _, e := range topN(func() map[string]int64 {
		m := map[string]int64{}
		for p, s := range g.byPath {
			m[p] = s.total
		}
		return m
	}(), 0) {
		c := g.byPath[e.k]
		t.Rows = append(t.Rows, []string{e.k, itoa(c.total), itoa(c.denied), itoa(c.off)})
		t.RowChecks = append(t.RowChecks, &Check{Queries: []string{g.queryString("path", e.k, "exact_path", "true")}})
	}
	return t
}

func recReason(flags map[string]string, k string) string { return flags[k] }

func result(allowed bool, err string) string {
	switch {
	case !allowed:
		return "denied"
	case err != "":
		return "error: " + err
	}
	return "ok"
}

func (g *gen) breakGlassTable() Table {
	t := Table{ID: "break-glass", Title: "Break-glass requests", Columns: []string{"Time (" + g.tzName() + ")", "Identity", "Operation", "Path", "Reason", "Ticket", "Result"},
		Empty: "No break-glass request in the period."}
	for _, r := range g.breakGlass {
		t.Rows = append(t.Rows, []string{g.ts(r.Time), Actor(r), r.Operation, r.Path, recReason(r.Flags, "break_glass_reason"), recReason(r.Flags, "break_glass_ticket"), result(r.Allowed, r.Error)})
	}
	if g.bgCount > int64(len(g.breakGlass)) {
		t.Title += fmt.Sprintf(" (first %d of %d)", len(g.breakGlass), g.bgCount)
	}
	return t
}

// approvedTable lists the requests run after approval, with requester,
// approvers and reason as the audit trail recorded them.
func (g *gen) approvedTable() Table {
	t := Table{ID: "approved-access", Title: "Requests run after approval (control groups)",
		Columns: []string{"Time (" + g.tzName() + ")", "Requester", "Operation", "Path", "Approvers", "Reason", "Control group", "Result"},
		Empty:   "No request ran after approval in the period."}
	for _, r := range g.approved {
		t.Rows = append(t.Rows, []string{g.ts(r.Time), Actor(r), r.Operation, r.Path, strings.ReplaceAll(r.Flags["approver"], ",", ", "),
			recReason(r.Flags, "control_group_reason"), r.Flags["control_group"], result(r.Allowed, r.Error)})
	}
	if g.approvedCount > int64(len(g.approved)) {
		t.Title += fmt.Sprintf(" (first %d of %d)", len(g.approved), g.approvedCount)
	}
	return t
}

func (g *gen) privTable() Table {
	t := Table{ID: "privileged-operations", Title: "Privileged operations", Columns: []string{"Time (" + g.tzName() + ")", "Identity", "Category", "Operation", "Path", "Result"},
		Empty: "No privileged operation in the period."}
	for _, r := range g.privList {
		t.Rows = append(t.Rows, []string{g.ts(r.Time), Actor(r), PrivilegedCategory(r), r.Operation, r.Path, result(r.Allowed, r.Error)})
	}
	return t
}

func (g *gen) rootTable() Table {
	t := Table{ID: "root-token-use", Title: "Root token use by path", Columns: []string{"Path", "Requests"}, CountCol: 1, Empty: "No request was made with a root token."}
	for _, e := range topN(g.rootPaths, 0) {
		t.Rows = append(t.Rows, []string{e.k, itoa(e.n)})
		t.RowChecks = append(t.RowChecks, &Check{Queries: []string{g.queryString("path", e.k, "exact_path", "true", "policy", "root")}})
	}
	return t
}

func (g *gen) logins(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...)}
	s.Figures = []Figure{
		{Key: "logins_ok", Label: "Successful logins", Count: g.loginOK, Check: g.allCheck("", "login", "ok")},
		{Key: "failed_logins", Label: "Failed logins", Count: g.loginFail, Check: g.allCheck("", "login", "failed")},
		{Key: "failed_login_users", Label: "Distinct user names with failed logins", Count: int64(len(g.failByUser))},
		{Key: "failed_login_sources", Label: "Distinct source addresses with failed logins", Count: int64(len(g.failByAddr))},
	}
	byUser := Table{ID: "failed-logins-by-user", Title: "Failed logins by user name", Columns: []string{"Auth mount:user", "Failures", "Source addresses"},
		CountCol: 1, Empty: "No failed login in the period."}
	m := map[string]int64{}
	for u, st := range g.failByUser {
		m[u] = st.fails
	}
	for _, e := range topN(m, 0) {
		byUser.Rows = append(byUser.Rows, []string{e.k, itoa(e.n), strings.Join(keys(g.failByUser[e.k].other), " ")})
		mount, user, _ := strings.Cut(e.k, ":")
		lp := "auth/" + mount + "/login"
		if user != "(not in path)" {
			lp += "/" + user
		}
		byUser.RowChecks = append(byUser.RowChecks, &Check{Queries: []string{g.queryString("path", lp, "exact_path", "true", "login", "failed")}})
	}
	byAddr := Table{ID: "failed-logins-by-source", Title: "Failed logins by source address", Columns: []string{"Source address", "Failures", "User names tried"},
		CountCol: 1, Empty: "No failed login in the period."}
	m = map[string]int64{}
	for a, st := range g.failByAddr {
		m[a] = st.fails
	}
	for _, e := range topN(m, 0) {
		byAddr.Rows = append(byAddr.Rows, []string{e.k, itoa(e.n), strings.Join(keys(g.failByAddr[e.k].other), " ")})
		c := &Check{Queries: []string{g.queryString("login", "failed", "remote_address", e.k)}}
		if e.k == "" {
			c = &Check{Queries: []string{g.queryString("login", "failed")}, Match: "addr_is:"}
		}
		byAddr.RowChecks = append(byAddr.RowChecks, c)
	}
	s.Tables = []Table{byUser, byAddr}
	if g.loginFail > 0 {
		s.Result, s.ResultText = ResultAttention, fmt.Sprintf("%s from %s: review for guessing or misuse.", plural(g.loginFail, "failed login", "failed logins"), plural(int64(len(g.failByAddr)), "source", "sources"))
	} else {
		s.Result, s.ResultText = ResultPass, "No failed login in the period."
	}
	return s
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k == "" {
			k = "(unknown)"
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (g *gen) integrity(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...)}
	v := g.env.Verification
	if cp := g.cp; cp != nil {
		s.Figures = append(s.Figures,
			Figure{Key: "checkpoint", Label: "Figures computed against signed checkpoint", Text: fmt.Sprintf("node %s seq %d", cp.NodeID, cp.Seq)},
			Figure{Key: "checkpoint_hash", Label: "Checkpoint hash", Text: cp.Hash},
			Figure{Key: "checkpoint_key", Label: "Checkpoint signing key (Ed25519)", Text: cp.KeyID},
			Figure{Key: "checkpoint_time", Label: "Checkpoint time", Text: g.ts(cp.Time)})
	}
	t := Table{ID: "verification", Title: "Last chain verification, per device", Columns: []string{"Device", "Result", "Entries", "Seq range", "Trusted checkpoint", "Signatures"},
		Empty: "No verification result is recorded."}
	switch {
	case v == nil:
		s.Figures = append(s.Figures, Figure{Key: "verification", Label: "Last chain verification", Text: "never run"})
		s.Result, s.ResultText = ResultAttention, "The audit chain has never been verified on this node: run vigil audit verify."
	default:
		res := "passed"
		if !v.OK {
			res = "FAILED"
		}
		s.Figures = append(s.Figures, Figure{Key: "verification", Label: "Last chain verification", Text: res + " at " + g.ts(v.Time)})
		names := make([]string, 0, len(v.Devices))
		for n := range v.Devices {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			d := v.Devices[n]
			r := "ok"
			if !d.OK {
				r = "FAILED: " + d.Failure
			}
			cp := "-"
			if d.CheckpointSeq > 0 {
				cp = fmt.Sprintf("seq %d %s", d.CheckpointSeq, map[bool]string{true: "verified", false: "NOT verified"}[d.CheckpointOK])
			}
			t.Rows = append(t.Rows, []string{n, r, itoa(d.Entries), fmt.Sprintf("%d-%d", d.FirstSeq, d.LastSeq), cp, yesNo(d.SignaturesChecked)})
		}
		age := g.p.GeneratedAt.Sub(v.Time)
		switch {
		case !v.OK:
			s.Result, s.ResultText = ResultFail, "The last verification FAILED: the log may have been altered. Treat as a security incident."
		case age > 7*24*time.Hour:
			s.Result, s.ResultText = ResultAttention, fmt.Sprintf("The last verification passed but is %d days old.", int(age.Hours()/24))
		default:
			s.Result, s.ResultText = ResultPass, "The hash chain and signed checkpoints verified."
		}
	}
	s.Tables = []Table{t}
	s.Notes = []string{"Each entry carries the hash of the previous one; Ed25519-signed checkpoints, stored in the encrypted barrier, pin the chain. Sensitive values are HMAC-SHA256'd with a per-device salt (sys/audit-hash looks values up). " + g.integrityScope()}
	return s
}

func (g *gen) retention(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...)}
	need := RetentionYears * 365
	nrb := g.p.Kind == KindNRB
	if g.oldest != nil {
		days := int64(g.p.GeneratedAt.Sub(g.oldest.Time).Hours() / 24)
		s.Figures = append(s.Figures,
			Figure{Key: "oldest_record", Label: "Oldest audit record held (query backend " + g.backend + ")", Text: g.ts(g.oldest.Time)},
			Figure{Key: "oldest_record_days", Label: "Age of the oldest record, days", Count: days})
		if !nrb {
			s.Figures = append(s.Figures, Figure{Key: "retention_target_days", Label: fmt.Sprintf("Target, days (%d years)", RetentionYears), Count: int64(need)})
		}
	} else {
		s.Figures = append(s.Figures, Figure{Key: "oldest_record", Label: "Oldest audit record held", Text: "none"})
	}
	if nrb {
		s.Figures = append(s.Figures, Figure{Key: "retention_target", Label: "Retention period required", Text: "none found in NRB texts [U]: the bank's own policy sets it"})
	}
	keeps := fmt.Sprintf("Keeps %d years?", RetentionYears)
	if nrb {
		keeps = "Deletes segments?"
	}
	t := Table{ID: "retention-by-sink", Title: "Retention by sink", Columns: []string{"Sink", "Type", "Retention setting", keeps}}
	short := 0
	for _, d := range g.env.Devices {
		if d.Type != "file" {
			t.Rows = append(t.Rows, []string{d.Name, d.Type, "not stored by Vigil", "no"})
			continue
		}
		setting, ok := "keeps every segment", true
		switch {
		case d.RetainDays > 0 && d.RetainDays < need:
			setting, ok = fmt.Sprintf("retain_days = %d", d.RetainDays), false
		case d.MaxBackups > 0:
			setting, ok = fmt.Sprintf("max_backups = %d (time covered depends on volume)", d.MaxBackups), false
		case d.RetainDays > 0:
			setting = fmt.Sprintf("retain_days = %d", d.RetainDays)
		}
		if !ok {
			short++
		}
		if nrb {
			t.Rows = append(t.Rows, []string{d.Name, "file", setting, yesNo(d.RetainDays > 0 || d.MaxBackups > 0)})
			continue
		}
		t.Rows = append(t.Rows, []string{d.Name, "file", setting, map[bool]string{true: "yes", false: "not guaranteed"}[ok]})
	}
	for _, st := range g.env.Streams {
		t.Rows = append(t.Rows, []string{st.Name, st.Type, "set in the sink (TTL / topic retention), not visible to Vigil", "attach the sink's policy"})
	}
	s.Tables = []Table{t}
	s.Notes = []string{compliance.MustLookup(compliance.H316b2i).Note}
	if nrb {
		s.Notes = []string{"No NRB directive setting a log retention period was found; the Cyber Resilience Guidelines 2023 [U] ask that logs be securely backed up. Keep the audit log for the period the bank's IT policy sets (the IT Guidelines 2012 [T] ask that IT policy be reviewed at least annually), and attach that policy."}
		s.Result, s.ResultText = ResultInfo, "Retention settings listed per sink; the history held begins at the oldest record shown. Compare them with the bank's retention policy."
		return s
	}
	switch {
	case short > 0 && len(g.env.Streams) == 0:
		s.Result, s.ResultText = ResultAttention, "A local device deletes segments before 6 years and no stream keeps a copy."
	default:
		s.Result, s.ResultText = ResultInfo, "Retention settings listed per sink; the history held begins at the oldest record shown."
	}
	return s
}

func (g *gen) eventRecording() Section {
	s := Section{ID: "nrb-event-recording", Title: "Events recorded with type, time, user and address", Controls: refs(compliance.NCRGRecord, compliance.NITGAudit)}
	s.Figures = []Figure{
		{Key: "records", Label: "Audited requests in the period (event type and time recorded for each)", Count: g.all.total, Check: g.allCheck("")},
		{Key: "with_actor", Label: "... with the identity recorded", Count: g.withAct, Check: g.allCheck("", "has", "actor")},
		{Key: "with_address", Label: "... with the remote address recorded", Count: g.withAddr, Check: g.allCheck("", "has", "address")},
		{Key: "incomplete", Label: "... without a response entry", Count: g.incompl, Check: g.allCheck("", "incomplete", "true")},
	}
	s.Notes = []string{"Requests without an identity are those made before authentication (logins, unauthenticated endpoints): their user is the name in the login path."}
	if g.withAddr == g.all.total && g.incompl == 0 {
		s.Result, s.ResultText = ResultPass, "Every recorded request has its type, time, address and outcome."
	} else {
		s.Result, s.ResultText = ResultAttention, fmt.Sprintf("%d request(s) without an address, %d without a response entry.", g.all.total-g.withAddr, g.incompl)
	}
	return s
}

func (g *gen) backups() Section {
	s := Section{ID: "nrb-logs-backed-up", Title: "Logs and configuration backed up", Controls: refs(compliance.NCRGBackup, compliance.NITGBCP)}
	s.Figures = []Figure{{Key: "streams", Label: "Audit streams (remote copies of the log)", Count: int64(len(g.env.Streams))},
		{Key: "devices", Label: "Audit devices", Count: int64(len(g.env.Devices))}}
	snap, test := "never", "never"
	if r := g.env.LastSnapshot; r != nil {
		snap = g.ts(r.Time)
	}
	if r := g.env.LastRestore; r != nil {
		test = g.ts(r.Time) + map[bool]string{true: " (passed)", false: " (FAILED: " + r.Error + ")"}[r.OK]
	}
	s.Figures = append(s.Figures, Figure{Key: "last_snapshot", Label: "Last storage snapshot", Text: snap}, Figure{Key: "last_restore_test", Label: "Last snapshot restore test", Text: test})
	s.Tables = []Table{g.streamTable()}
	switch {
	case len(g.env.Streams) == 0 && len(g.env.Devices) < 2:
		s.Result, s.ResultText = ResultAttention, "The audit log exists in one place only: add an audit stream or a second device."
	case (g.env.LastRestore == nil || !g.env.LastRestore.OK) && !g.drillPassed():
		s.Result, s.ResultText = ResultAttention, "No passing snapshot restore test or restore drill is recorded."
	default:
		s.Result, s.ResultText = ResultPass, "The log is copied off the node and a snapshot restore test or restore drill passed."
	}
	return s
}

func (g *gen) clocks() Section {
	return Section{ID: "nrb-timestamps-synchronised", Title: "Timestamps synchronised", Controls: refs(compliance.NCRGClock),
		Figures: []Figure{{Key: "generated_at", Label: "Server clock when this report was generated", Text: g.ts(g.p.GeneratedAt)}},
		Result:  ResultManual, ResultText: "Vigil records UTC timestamps from the host clock but cannot show that the clock is synchronised: attach the NTP/chrony status of each node.",
	}
}

func (g *gen) centralised() Section {
	s := Section{ID: "nrb-events-centralised", Title: "Events centralised", Controls: refs(compliance.NCRGCentr), Tables: []Table{g.streamTable()}}
	up := 0
	for _, st := range g.env.Streams {
		if st.State == ship.StateShipping {
			up++
		}
	}
	s.Figures = []Figure{{Key: "streams_shipping", Label: "Streams shipping to a central store", Count: int64(up)}}
	if up > 0 {
		s.Result, s.ResultText = ResultPass, "The audit log is shipped to a central store."
	} else {
		s.Result, s.ResultText = ResultAttention, "No audit stream ships the log to a central store (ClickHouse, Kafka / SIEM)."
	}
	return s
}

func (g *gen) privilegedReview() Section {
	s := Section{ID: "nrb-privileged-access-review", Title: "Privileged-access review", Controls: refs(compliance.NITGAudit, compliance.NITGISA)}
	var privTotal int64
	for _, c := range privCategories {
		privTotal += g.priv[c]
		s.Figures = append(s.Figures, Figure{Key: "privileged_" + c, Label: privTitles[c], Count: g.priv[c], Check: g.allCheck("", "category", "privileged:"+c)})
	}
	s.Figures = append(s.Figures,
		Figure{Key: "root_token_use", Label: "Requests made with a root token", Count: g.rootCount, Check: g.allCheck("", "policy", "root")},
		Figure{Key: "break_glass", Label: "Break-glass requests", Count: g.bgCount, Check: g.allCheck("", "flag", "break_glass")})
	byActor := Table{ID: "privileged-by-identity", Title: "Privileged operations by identity", Columns: []string{"Identity", "Operations"}, Empty: "No privileged operation in the period."}
	for _, e := range g.topActors(g.privActor, 0) {
		byActor.Rows = append(byActor.Rows, []string{g.actorNames[e.k], itoa(e.n)})
	}
	// Current holders of privilege (state at generation time).
	roots := Table{ID: "valid-root-tokens", Title: "Root tokens valid now", Columns: []string{"Accessor", "Display name", "Created", "Expires"}, Empty: "No valid root token."}
	for _, t := range g.env.Tokens {
		if !t.IsRoot() || (!t.ExpireTime.IsZero() && !g.env.Now.Before(t.ExpireTime)) {
			continue
		}
		exp := "never"
		if !t.ExpireTime.IsZero() {
			exp = g.ts(t.ExpireTime)
		}
		roots.Rows = append(roots.Rows, []string{t.Accessor, t.DisplayName, g.ts(t.CreationTime), exp})
	}
	sort.Slice(roots.Rows, func(i, j int) bool { return roots.Rows[i][0] < roots.Rows[j][0] })
	sudo := Table{ID: "sudo-policies", Title: "Policies granting sudo", Columns: []string{"Policy", "Path", "Capabilities"}, Empty: "No policy grants sudo."}
	for _, p := range g.env.Policies {
		for _, r := range p.Paths {
			if slices.Contains(r.Capabilities, authz.CapSudo) {
				sudo.Rows = append(sudo.Rows, []string{p.Name, r.Pattern, strings.Join(r.Capabilities, ", ")})
			}
		}
	}
	s.Tables = []Table{byActor, g.privTable(), g.rootTable(), g.breakGlassTable(), roots, sudo}
	if privTotal+g.rootCount+g.bgCount > 0 || len(roots.Rows) > 0 {
		s.Result = ResultAttention
		s.ResultText = fmt.Sprintf("%s, %s, %s in the period; %s valid now. Confirm each was authorised.",
			plural(privTotal, "privileged operation", "privileged operations"), plural(g.rootCount, "root-token request", "root-token requests"),
			plural(g.bgCount, "break-glass request", "break-glass requests"), plural(int64(len(roots.Rows)), "root token", "root tokens"))
	} else {
		s.Result, s.ResultText = ResultPass, "No privileged operation, root-token use or break-glass in the period, and no valid root token."
	}
	s.Notes = []string{"Reviewer sign-off: reviewer ______________________  date ____________  exceptions ______________________"}
	return s
}

func (g *gen) charts() []Chart {
	labels := make([]string, len(g.buckets))
	for i := range g.buckets {
		labels[i] = g.bucketLabel(i)
	}
	per := "day"
	if g.bucketW == "week" {
		per = "week"
	}
	out := []Chart{
		{ID: ChartAccessesPerDay, Title: "In-scope accesses per " + per, Kind: ChartStacked, Labels: labels,
			Series: []Series{{Name: "allowed", Values: g.dayAllow}, {Name: "denied", Values: g.dayDeny}}},
	}
	m := map[string]int64{}
	for a, c := range g.byActor {
		m[a] = c.total
	}
	top := Chart{ID: ChartTopActors, Title: "Top identities (in-scope requests)", Kind: ChartBars, Series: []Series{{Name: "requests"}}}
	for _, e := range g.topActors(m, g.p.Top) {
		top.Labels = append(top.Labels, g.actorNames[e.k])
		top.Series[0].Values = append(top.Series[0].Values, e.n)
	}
	out = append(out, top, Chart{ID: ChartDenialsBG, Title: "Denials (all paths) and break-glass per " + per, Kind: ChartLines, Labels: labels,
		Series: []Series{{Name: "denied", Values: g.dayDenyA}, {Name: "break-glass", Values: g.dayBG}}})
	heat := Chart{ID: ChartPathHeat, Title: "In-scope paths per " + per + " (heat)", Kind: ChartHeat, Labels: labels}
	for _, e := range g.topPaths() {
		heat.Series = append(heat.Series, Series{Name: e.k, Values: g.byPath[e.k].buckets})
	}
	out = append(out, heat)
	return out
}

// maxOf returns the largest value of the series (at least 1).
func maxOf(ss []Series, stacked bool) int64 {
	var m int64 = 1
	if stacked && len(ss) > 0 {
		for i := range ss[0].Values {
			var sum int64
			for _, s := range ss {
				if i < len(s.Values) {
					sum += s.Values[i]
				}
			}
			m = max(m, sum)
		}
		return m
	}
	for _, s := range ss {
		for _, v := range s.Values {
			m = max(m, v)
		}
	}
	return m
}

// signOff is the reviewer sign-off line of the activity review.
func (g *gen) signOff() string {
	if g.p.Kind == KindNRB {
		return "Reviewer sign-off (the bank's IT policy sets who reviews the audit trails and how often; the IT Guidelines 2012 wording on audit trails is unverified [U]): reviewer ______________________  date ____________  exceptions / tickets ______________________"
	}
	return "Reviewer sign-off (the OCR audit protocol [T] checks that reviews are timely and certified by appropriate personnel): reviewer ______________________  date ____________  anomalies / tickets ______________________"
}

// integrityScope says how the integrity evidence maps to the regulation.
func (g *gen) integrityScope() string {
	if g.p.Kind == KindNRB {
		return "This is the evidence that audit data is protected from alteration (Cyber Resilience Guidelines 2023, wording unverified [U])."
	}
	return "Applying 164.312(c) to audit records is an interpretation."
}

// distinctCheck reproduces the distinct-identities figure when the scope
// is one query (with several, people on more than one entry would count
// twice in a sum).
func (g *gen) distinctCheck() *Check {
	if len(g.scope) != 1 {
		return nil
	}
	c := g.scopeCheck("")
	c.Distinct = "actor"
	return c
}
