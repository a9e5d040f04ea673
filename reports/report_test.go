package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/core/token"
	"github.com/vigilsec/vigil/reports/query"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0   = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC) // a Saturday
	tEnd = t0.Add(7 * 24 * time.Hour)
	tGen = time.Date(2025, 3, 8, 9, 30, 0, 0, time.UTC)
)

// synthLog is a fixed synthetic week of audit records on node1:
//   - alice, bob read phi/ every weekday at 09:00, 11:00, 15:00 (bob also
//     at 20:00 on Wednesday: off-hours); carol reads secret/ (out of scope);
//   - mallory is denied on phi/data/patients/1001 twice on Tuesday and once
//     on Sunday (off-hours, weekend);
//   - oncall uses break-glass on phi/ twice on Thursday 02:00 (off-hours);
//   - erin reads phi/ once after dave approved it (a control group);
//   - root writes a policy and enables an audit device on Monday, and
//     reads phi/ once;
//   - 4 failed logins for mallory from 203.0.113.9, 1 for alice from
//     10.0.0.5, and successful logins for alice and bob each weekday;
//   - the scheduled job runs a restore drill on Tuesday 03:00, and ops
//     runs one on request on Friday 14:00; mallory is refused one on
//     Wednesday 12:00.
func synthLog() []query.Record {
	var out []query.Record
	seq := uint64(0)
	add := func(r query.Record) {
		seq++
		r.NodeID, r.Seq = "node1", seq*2
		r.RequestID = fmt.Sprintf("req-%04d", seq)
		if r.RemoteAddr == "" {
			r.RemoteAddr = "10.0.0.5"
		}
		if r.TokenType == "" && r.DisplayName != "" {
			r.TokenType = "service"
		}
		out = append(out, r)
	}
	day := func(d int, h, m int) time.Time {
		return t0.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	phi := func(who, p string, at time.Time, allowed bool) query.Record {
		r := query.Record{Time: at, DisplayName: who, EntityID: "ent-" + who, Accessor: "hmac-sha256:acc-" + who, Operation: "read",
			Path: "phi/data/" + p, MountPoint: "phi/", MountType: "kv", Allowed: allowed, Policies: []string{"default", "clinical"}}
		if allowed {
			r.GrantingPolicies = []string{"clinical"}
		} else {
			r.Error = "permission denied"
			r.DenyReasons = []string{"no policy grants read"}
			r.Policies = []string{"default"}
		}
		return r
	}
	for d := 2; d <= 6; d++ { // Monday..Friday
		for i, h := range []int{9, 11, 15} {
			add(phi("userpass-alice", fmt.Sprintf("patients/%d", 1000+i), day(d, h, 5), true))
			add(phi("userpass-bob", "patients/1000", day(d, h, 20), true))
			add(query.Record{Time: day(d, h, 30), DisplayName: "userpass-carol", Operation: "read", Path: "secret/data/app/db", MountPoint: "secret/", MountType: "kv", Allowed: true, Policies: []string{"app"}})
		}
		for _, u := range []string{"alice", "bob"} {
			add(query.Record{Time: day(d, 8, 55), Operation: "update", Path: "auth/userpass/login/" + u, MountPoint: "auth/userpass/", MountType: "userpass", Allowed: true})
		}
	}
	add(phi("userpass-bob", "patients/1002", day(4, 20, 0), true))
	add(phi("userpass-mallory", "patients/1001", day(3, 10, 0), false))
	add(phi("userpass-mallory", "patients/1001", day(3, 10, 1), false))
	add(phi("userpass-mallory", "patients/1001", day(1, 23, 0), false))
	for i := 0; i < 2; i++ {
		r := phi("token-oncall", "patients/1003", day(5, 2, i), true)
		r.Policies = []string{"default"}
		r.GrantingPolicies = []string{"rego:break_glass"}
		r.Flags = map[string]string{"break_glass": "true", "break_glass_reason": "ER patient, EHR down", "break_glass_ticket": "INC-4242"}
		add(r)
	}
	// erin reads a patient file that needs approval: held Wednesday
	// 14:00, approved by dave, run 14:20 (the request itself and the
	// unwrap that ran it; only the former is an approved access).
	cg := map[string]string{"control_group": "req-cg-1", "control_group_state": "executed", "control_group_requester": "erin",
		"control_group_reason": "INC-77 transfer", "approver": "dave", "approver_entity_ids": "ent-dave"}
	held := phi("userpass-erin", "patients/1004", day(4, 14, 0), true)
	held.Flags = map[string]string{"control_group": "req-cg-1", "control_group_state": "pending", "control_group_requester": "erin", "control_group_reason": "INC-77 transfer"}
	add(held)
	ran := phi("userpass-erin", "patients/1004", day(4, 14, 20), true)
	ran.Flags = cg
	add(ran)
	add(query.Record{Time: day(4, 14, 20), DisplayName: "userpass-erin", EntityID: "ent-userpass-erin", Operation: "update", Path: "sys/wrapping/unwrap",
		MountPoint: "sys/", MountType: "system", Allowed: true, Policies: []string{"default"}, GrantingPolicies: []string{"default"}, Flags: cg})
	root := func(at time.Time, op, p, mount string) query.Record {
		return query.Record{Time: at, DisplayName: "root", Operation: op, Path: p, MountPoint: mount, MountType: "system", Allowed: true,
			Policies: []string{"root"}, GrantingPolicies: []string{"root"}, TokenType: "service"}
	}
	add(root(day(2, 10, 0), "update", "sys/policies/acl/clinical", "sys/"))
	add(root(day(2, 10, 5), "update", "sys/audit/file2", "sys/"))
	add(root(day(2, 10, 6), "update", "sys/audit/verify", "sys/"))
	r := root(day(2, 10, 10), "read", "phi/data/patients/1000", "phi/")
	r.MountType = "kv"
	add(r)
	for i := 0; i < 4; i++ {
		add(query.Record{Time: day(3, 3, i), Operation: "update", Path: "auth/userpass/login/mallory", MountPoint: "auth/userpass/", MountType: "userpass",
			Allowed: true, Error: "invalid username or password", RemoteAddr: "203.0.113.9"})
	}
	add(query.Record{Time: day(4, 8, 50), Operation: "update", Path: "auth/userpass/login/alice", MountPoint: "auth/userpass/", MountType: "userpass",
		Allowed: true, Error: "invalid username or password"})
	add(query.Record{Time: day(3, 3, 0), DisplayName: "raft-snapshot-auto", Operation: "update", Path: "sys/storage/raft/snapshot-auto/scheduled-drill/daily",
		MountPoint: "sys/", MountType: "system", Allowed: true, Status: 200, Internal: true})
	add(query.Record{Time: day(6, 14, 0), DisplayName: "userpass-ops", Operation: "update", Path: "sys/storage/raft/snapshot-auto/drill/daily",
		MountPoint: "sys/", MountType: "system", Allowed: true, Status: 200, Policies: []string{"ops"}, GrantingPolicies: []string{"ops"}})
	add(query.Record{Time: day(4, 12, 0), DisplayName: "userpass-mallory", Operation: "update", Path: "sys/storage/raft/snapshot-auto/drill/daily",
		MountPoint: "sys/", MountType: "system", Allowed: false, Error: "permission denied", Status: 403, ErrorCode: "permission_denied", Policies: []string{"default"}})
	inc := phi("userpass-alice", "patients/1000", day(6, 16, 0), true)
	inc.Incomplete = true
	add(inc)
	return out
}

func synthEnv(t testing.TB) *compliance.Env {
	p, err := authz.ParseACL("clinical", `path "phi/data/*" { capabilities = ["read"] }
path "sys/audit/*" { capabilities = ["read", "update", "sudo"] }`)
	if err != nil {
		t.Fatal(err)
	}
	return &compliance.Env{
		Now: tGen, NodeID: "node1", AuditRequired: true, StreamsKnown: true,
		Policies: []*authz.Policy{p},
		Tokens: []*token.Entry{{Accessor: "acc-root", DisplayName: "root", Policies: []string{"root"}, CreationTime: t0.Add(-30 * 24 * time.Hour)},
			{Accessor: "acc-alice", DisplayName: "userpass-alice", Policies: []string{"clinical"}, CreationTime: tGen.Add(-time.Hour), ExpireTime: tGen.Add(time.Hour)}},
		Devices: []compliance.AuditDevice{{Name: "file", Type: "file", Path: "/var/log/vigil/audit.log", RetainDays: 365}},
		Streams: []ship.Status{{Name: "ch", Type: "clickhouse", State: ship.StateShipping, LagEntries: 3, LagSeconds: 1, Cursor: ship.CursorStatus{Seq: 120}}},
		Verification: &audit.Verification{Time: tGen.Add(-2 * time.Hour), OK: true, NodeID: "node1", Devices: map[string]audit.DeviceVerification{
			"file": {OK: true, Path: "/var/log/vigil/audit.log", Entries: 240, FirstSeq: 1, LastSeq: 240, CheckpointSeq: 230, CheckpointOK: true, SignaturesChecked: true}}},
		Mounts: []core.MountInfo{{Path: "phi/", Type: "kv", Options: map[string]string{"version": "2", "phi": "true"}},
			{Path: "secret/", Type: "kv", Options: map[string]string{"version": "2"}}},
		LastSnapshot: &core.SnapshotSaveRecord{Time: tGen.Add(-3 * time.Hour)},
		LastRestore:  &core.SnapshotTestRecord{Time: tGen.Add(-3 * time.Hour), OK: true},
		Backups: []compliance.BackupSchedule{{
			Status: core.SnapshotAutoStatus{Name: "daily", StorageType: "aws-s3", IntervalSecs: 86400, Retain: 7, Configured: t0.Add(-30 * 24 * time.Hour),
				LastSuccess: tGen.Add(-5 * time.Hour), DrillSecs: 7 * 86400, LastDrill: t0.Add(6*24*time.Hour + 14*time.Hour), LastDrillPass: true},
			Drills: synthDrills(),
		}},
		Seal: &core.SealShares{Type: "shamir", SecretShares: 3, SecretThreshold: 2, KeyHolders: 3, Holders: []string{"alice", "bob", "carol"}},
		KeyCustody: &custody.Evidence{ShareSet: "set1", Kind: "unseal", Shares: 3, Threshold: 2, Now: tGen,
			Latest: []custody.Proof{{Number: 1, Holder: "alice", At: tGen.Add(-48 * time.Hour)}, {Number: 3, Holder: "carol", At: tGen.Add(-47 * time.Hour)}},
			Drills: []*custody.Drill{{ID: "drill1", ShareSet: "set1", Kind: "unseal", Shares: 3, Threshold: 2, StartedAt: tGen.Add(-49 * time.Hour),
				StartedBy: "root", ExpiresAt: tGen.Add(119 * time.Hour), FinishedAt: tGen.Add(-46 * time.Hour),
				Proofs:   []custody.Proof{{Number: 1, Holder: "alice", At: tGen.Add(-48 * time.Hour)}, {Number: 3, Holder: "carol", At: tGen.Add(-47 * time.Hour)}},
				Failures: []custody.Failure{{At: tGen.Add(-47 * time.Hour), Reason: "the share does not match any share issued for this server's current key"}}}}},
	}
}

// synthDrills are the restore drills of the schedule "daily", newest first:
// a passing drill on request on Friday, a failed scheduled drill on
// Tuesday (in the period), and a passing one before the period.
func synthDrills() []core.SnapshotDrillRecord {
	counts := core.SnapshotCounts{Keys: 40, Mounts: 2, Secrets: 12, Policies: 1, Leases: 0}
	return []core.SnapshotDrillRecord{
		{Time: t0.Add(6*24*time.Hour + 14*time.Hour), Schedule: "daily", Trigger: "request", Passed: true, Object: "vigil-snapshot-01741320000000000000.snap",
			AgeSecs: 36000, Values: 40, Expected: counts, Restored: counts, TotalMS: 850},
		{Time: t0.Add(3*24*time.Hour + 3*time.Hour), Schedule: "daily", Trigger: "schedule", Passed: false, Object: "vigil-snapshot-01740974400000000000.snap",
			AgeSecs: 82800, Error: "integrity: the object's SHA-256 differs from the one recorded when it was stored", TotalMS: 120},
		{Time: t0.Add(-4 * 24 * time.Hour), Schedule: "daily", Trigger: "schedule", Passed: true, Object: "vigil-snapshot-01740438000000000000.snap",
			AgeSecs: 3600, Values: 38, Expected: counts, Restored: counts, TotalMS: 800},
	}
}

func synthReport(t testing.TB, kind string) (*Report, *memBackend) {
	t.Helper()
	b := newMemBackend(synthLog())
	// The log began before the week and is verified up to the report.
	began, verified := t0.Add(-24*time.Hour), tGen
	b.first, b.last = &began, &verified
	r, err := Generate(context.Background(), Source{Backend: b, Env: synthEnv(t)}, Params{Kind: kind, From: t0, To: tEnd, GeneratedAt: tGen})
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func figure(t testing.TB, r *Report, section, key string) Figure {
	t.Helper()
	for _, s := range r.Sections {
		if s.ID != section {
			continue
		}
		for _, f := range s.Figures {
			if f.Key == key {
				return f
			}
		}
	}
	t.Fatalf("no figure %s/%s", section, key)
	return Figure{}
}

// TestHIPAAFiguresSynthetic asserts the exact counts of the synthetic week.
func TestHIPAAFiguresSynthetic(t *testing.T) {
	r, _ := synthReport(t, KindHIPAA)
	act := "hipaa-164.308(a)(1)(ii)(D)"
	want := map[string]int64{
		// 5 days x 3 x (alice+bob) + bob Wed 20:00 + 3 mallory + 2 break-glass + 1 root + 1 incomplete
		// + erin's control group (held, then run)
		act + "/scoped_accesses":                          30 + 1 + 3 + 2 + 1 + 1 + 2,
		act + "/scoped_actors":                            6,
		act + "/approved_access":                          1,
		act + "/scoped_denied":                            3,
		act + "/scoped_errors":                            0,
		act + "/scoped_off_hours":                         1 + 1 + 2, // bob Wed 20:00, mallory Sunday, oncall 02:00
		act + "/break_glass":                              2,
		act + "/root_token_use":                           4,
		act + "/privileged_policy":                        1,
		act + "/privileged_audit":                         1,
		act + "/privileged_seal":                          0,
		"hipaa-164.308(a)(5)(ii)(C)/failed_logins":        5,
		"hipaa-164.308(a)(5)(ii)(C)/logins_ok":            10,
		"hipaa-164.308(a)(5)(ii)(C)/failed_login_users":   2,
		"hipaa-164.308(a)(5)(ii)(C)/failed_login_sources": 2,
		"hipaa-164.312(b)/incomplete":                     1,
		"hipaa-164.312(b)/records":                        int64(len(synthLog())),
	}
	for k, v := range want {
		sec, key, _ := strings.Cut(k, "/")
		if got := figure(t, r, sec, key).Count; got != v {
			t.Errorf("%s = %d, want %d", k, got, v)
		}
	}
	// The approved access names requester, approver and reason.
	var rows [][]string
	for _, s := range r.Sections {
		for _, tb := range s.Tables {
			if s.ID == act && tb.ID == "approved-access" {
				rows = tb.Rows
			}
		}
	}
	if len(rows) != 1 || rows[0][1] != "userpass-erin" || rows[0][4] != "dave" || rows[0][5] != "INC-77 transfer" || rows[0][6] != "req-cg-1" {
		t.Errorf("approved-access rows: %q", rows)
	}
	for _, s := range r.Sections {
		if s.Result == "" || s.ResultText == "" || len(s.Controls) == 0 {
			t.Errorf("section %s incomplete: %+v", s.ID, s)
		}
	}
	if r.Sections[0].Result != ResultAttention { // one incomplete record
		t.Errorf("audit controls: %s", r.Sections[0].Result)
	}
	if r.Checkpoint == nil || r.Checkpoint.Seq == 0 {
		t.Fatal("no checkpoint")
	}
}

// TestFiguresReproducible recomputes every figure and table row that
// carries a Check from the backend's Query API, page by page, exactly as an
// auditor would through GET /v1/sys/audit/query.
func TestFiguresReproducible(t *testing.T) {
	for _, kind := range []string{KindHIPAA, KindNRB} {
		r, b := synthReport(t, kind)
		n := VerifyChecks(t, r, func(f query.Filter) ([]query.Record, error) {
			var out []query.Record
			for {
				f.Limit = 7 // force paging
				res, err := b.Query(context.Background(), f)
				if err != nil {
					return nil, err
				}
				out = append(out, res.Records...)
				if res.Next == "" {
					return out, nil
				}
				f.After = res.Next
			}
		})
		if n < 20 {
			t.Fatalf("%s: only %d checks verified", kind, n)
		}
	}
}

// VerifyChecks recomputes every Check of r with fetch and fails t on any
// difference; it returns how many numbers it checked.
func VerifyChecks(t testing.TB, r *Report, fetch func(query.Filter) ([]query.Record, error)) int {
	t.Helper()
	n := 0
	eval := func(what string, c *Check, want string) {
		var all []query.Record
		for _, q := range c.Queries {
			f, err := FilterFromQuery(q)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			recs, err := fetch(f)
			if err != nil {
				t.Fatalf("%s: query %s: %v", what, q, err)
			}
			all = append(all, recs...)
		}
		got := c.Count(all, r.BusinessHours)
		if itoa(got) != want {
			t.Errorf("%s: report says %s, the query API gives %d (%s)", what, want, got, c)
		}
		n++
	}
	for _, f := range r.Summary {
		if f.Check != nil {
			eval("summary/"+f.Key, f.Check, f.Display())
		}
	}
	for _, s := range r.Sections {
		for _, f := range s.Figures {
			if f.Check != nil {
				eval(s.ID+"/"+f.Key, f.Check, f.Display())
			}
		}
		for _, tb := range s.Tables {
			for i, c := range tb.RowChecks {
				if c != nil {
					eval(fmt.Sprintf("%s/%s[%s]", s.ID, tb.ID, tb.Rows[i][0]), c, tb.Rows[i][tb.CountCol])
				}
			}
		}
	}
	return n
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -run Golden -update)", err)
	}
	if !bytes.Equal(want, got) {
		_ = os.WriteFile(p+".got", got, 0o644)
		t.Fatalf("%s differs from the golden file; see %s.got (rerun with -update if the change is intended)", p, p)
	}
}

func TestGoldenJSONAndHTML(t *testing.T) {
	for _, kind := range []string{KindHIPAA, KindNRB} {
		r, _ := synthReport(t, kind)
		for _, format := range []string{FormatJSON, FormatHTML} {
			var buf bytes.Buffer
			if err := Render(&buf, r, format); err != nil {
				t.Fatal(err)
			}
			golden(t, kind+"."+format, buf.Bytes())
		}
	}
}

func TestHTMLIsSelfContainedWithCharts(t *testing.T) {
	r, _ := synthReport(t, KindHIPAA)
	var buf bytes.Buffer
	if err := RenderHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	h := strings.ReplaceAll(buf.String(), "<wbr>", "")
	for _, want := range []string{"<svg", "In-scope accesses per day", "Top identities", "Denials (all paths) and break-glass", `class="heat"`,
		"45 CFR 164.312(b)", "[T]", "INC-4242", "ER patient, EHR down", "GET /v1/sys/audit/query?"} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?i)(src|href)="https?://`).MatchString(h) {
		t.Error("HTML loads an external resource")
	}
}

func TestCSVIsRFC4180(t *testing.T) {
	r, _ := synthReport(t, KindNRB)
	var buf bytes.Buffer
	if err := RenderCSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	raw := buf.String()
	if !strings.Contains(raw, "\r\n") || strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\n") && !strings.Contains(raw, "\"") {
		t.Fatal("records must end in CRLF")
	}
	cr := csv.NewReader(strings.NewReader(raw))
	cr.FieldsPerRecord = len(csvHeader) // same field count on every record
	rows, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("header %v", rows[0])
	}
	found := false
	for _, row := range rows {
		if row[0] == "nrb-privileged-access-review" && row[2] == "figure" && row[4] == "break_glass" {
			found = row[5] == "2" && strings.Contains(row[6], "flag=break_glass")
		}
	}
	if !found {
		t.Fatal("break-glass figure row missing or wrong")
	}
	// NRB caveat present.
	if !strings.Contains(raw, "unverified [U]") {
		t.Fatal("NRB caveat missing from CSV")
	}
}

// TestPDFReadBack renders the PDFs and reads them back with pdftotext.
func TestPDFReadBack(t *testing.T) {
	testsvc.Tool(t, "pdftotext") // poppler-utils
	for _, kind := range []string{KindHIPAA, KindNRB} {
		r, _ := synthReport(t, kind)
		text := pdfText(t, r)
		checkPDFText(t, r, text)
	}
}

func pdfText(t testing.TB, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := RenderPDF(&buf, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
		t.Fatal("not a PDF")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", p, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

var spaces = regexp.MustCompile(`\s+`)

// checkPDFText checks that every figure's label is followed by its value on
// the same line of the PDF text, and that each section's title and result
// are printed.
func checkPDFText(t testing.TB, r *Report, text string) {
	t.Helper()
	lines := strings.Split(text, "\n")
	hasLine := func(label, value string) bool {
		// Labels may wrap: match the first words of the label and the value
		// at the end of a line.
		words := strings.Fields(label)
		head := strings.Join(words[:min(4, len(words))], " ")
		for _, l := range lines {
			l = spaces.ReplaceAllString(strings.TrimSpace(l), " ")
			if strings.Contains(l, head) && strings.HasSuffix(l, " "+value) {
				return true
			}
		}
		return false
	}
	for _, f := range r.Summary {
		if !hasLine(f.Label, f.Display()) {
			t.Errorf("%s PDF: summary figure %q = %s not found", r.Kind, f.Label, f.Display())
		}
	}
	for _, s := range r.Sections {
		if !strings.Contains(text, s.Title) {
			t.Errorf("%s PDF: section %q missing", r.Kind, s.Title)
		}
		for _, f := range s.Figures {
			if f.Text != "" {
				continue
			}
			if !hasLine(f.Label, f.Display()) {
				t.Errorf("%s PDF: %s figure %q = %s not found", r.Kind, s.ID, f.Label, f.Display())
			}
		}
	}
	for _, c := range r.Controls {
		if !strings.Contains(spaces.ReplaceAllString(text, " "), c.Citation) {
			t.Errorf("%s PDF: control %s not cited", r.Kind, c.Citation)
		}
	}
}

func TestParamsValidation(t *testing.T) {
	b := newMemBackend(nil)
	for _, p := range []Params{{Kind: "sox", From: t0, To: tEnd}, {Kind: KindHIPAA, From: tEnd, To: t0},
		{Kind: KindHIPAA, From: t0, To: tEnd, BusinessHours: BusinessHours{Start: 18, End: 8}}} {
		if _, err := Generate(context.Background(), Source{Backend: b}, p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	r, err := Generate(context.Background(), Source{Backend: b}, Params{Kind: KindNRB, From: t0, To: tEnd, GeneratedAt: tGen})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scope.Mounts == nil || len(r.Scope.Mounts) != 0 || !strings.Contains(r.Scope.Note, "No mount or secret is tagged") {
		t.Fatalf("empty scope not explained: %+v", r.Scope)
	}
	var buf bytes.Buffer
	for _, f := range formatNames {
		buf.Reset()
		if err := Render(&buf, r, f); err != nil || buf.Len() == 0 {
			t.Fatalf("%s on an empty log: %v", f, err)
		}
	}
}

func TestMatchPredicates(t *testing.T) {
	bh := BusinessHours{Start: 8, End: 18, Location: "UTC"}
	sat := query.Record{Time: t0.Add(10 * time.Hour)}
	mon := query.Record{Time: t0.Add(2*24*time.Hour + 10*time.Hour)}
	if !Match("off_hours", sat, bh) || Match("off_hours", mon, bh) {
		t.Fatal("off_hours")
	}
	kathmandu := BusinessHours{Start: 8, End: 18, Location: "Asia/Kathmandu"} // UTC+5:45
	if Match("off_hours", mon, kathmandu) {                                   // 10:00 UTC = 15:45 NPT on Monday: business hours
		t.Fatal("15:45 Kathmandu is in business hours")
	}
	if Match("off_hours", query.Record{Time: mon.Time.Add(3 * time.Hour)}, kathmandu) != true { // 18:45 NPT
		t.Fatal("18:45 Kathmandu is off-hours")
	}
	for p, cat := range map[string]string{"sys/policies/acl/x": PrivPolicy, "sys/policy/x": PrivPolicy, "sys/audit/file": PrivAudit,
		"sys/audit/verify": "", "sys/seal": PrivSealKeys, "sys/mounts/kv": PrivMounts, "sys/auth/userpass": PrivMounts,
		"sys/storage/raft/snapshot": PrivSnapshot, "secret/data/x": ""} {
		if got := PrivilegedCategory(query.Record{Path: p, Operation: "update"}); got != cat {
			t.Errorf("%s: %q want %q", p, got, cat)
		}
	}
	if PrivilegedCategory(query.Record{Path: "sys/policies/acl/x", Operation: "read"}) != "" {
		t.Error("reads are not privileged operations")
	}
	if !Match("login_failed,addr_is:1.2.3.4", query.Record{Path: "auth/userpass/login/x", Error: "bad", RemoteAddr: "1.2.3.4", Allowed: true}, bh) {
		t.Error("conjunction")
	}
	if Match("nonsense", mon, bh) {
		t.Error("unknown predicate must match nothing")
	}
}

// TestTaggedSecretScope: a KV v2 secret tagged phi=true in its
// custom_metadata brings every request on it (data/, metadata/, delete/...)
// into scope, on a mount that is not in scope; a sibling key sharing its
// prefix does not; each figure still reproduces from the query API.
func TestTaggedSecretScope(t *testing.T) {
	recs := synthLog()
	at := t0.Add(2*24*time.Hour + 10*time.Hour) // Monday 10:00
	more := []query.Record{
		{Time: at, DisplayName: "userpass-dave", Operation: "read", Path: "secret/metadata/app/db", MountPoint: "secret/", MountType: "kv", Allowed: true},
		{Time: at.Add(time.Minute), DisplayName: "userpass-dave", Operation: "update", Path: "secret/delete/app/db", MountPoint: "secret/", MountType: "kv", Allowed: false, Error: "permission denied"},
		{Time: at.Add(2 * time.Minute), DisplayName: "userpass-dave", Operation: "read", Path: "secret/data/app/dbx", MountPoint: "secret/", MountType: "kv", Allowed: true},
		{Time: at.Add(3 * time.Minute), DisplayName: "userpass-dave", Operation: "read", Path: "secret/data/odd/x*y", MountPoint: "secret/", MountType: "kv", Allowed: true},
		{Time: at.Add(4 * time.Minute), DisplayName: "userpass-dave", Operation: "read", Path: "secret/data/odd/xzy", MountPoint: "secret/", MountType: "kv", Allowed: true},
	}
	for i := range more {
		more[i].NodeID, more[i].Seq, more[i].RequestID, more[i].RemoteAddr = "node1", uint64(100001+2*i), fmt.Sprintf("req-x%d", i), "10.0.0.9"
	}
	recs = append(recs, more...)
	base, err := Generate(context.Background(), Source{Backend: newMemBackend(recs), Env: synthEnv(t)},
		Params{Kind: KindHIPAA, From: t0, To: tEnd, GeneratedAt: tGen})
	if err != nil {
		t.Fatal(err)
	}
	b := newMemBackend(recs)
	tagged := []compliance.TaggedSecret{{Mount: "secret/", Key: "app/db"}, {Mount: "secret/", Key: "odd/x*y"}, {Mount: "phi/", Key: "patients/1000"}}
	r, err := Generate(context.Background(), Source{Backend: b, Env: synthEnv(t), Tagged: tagged},
		Params{Kind: KindHIPAA, From: t0, To: tEnd, GeneratedAt: tGen})
	if err != nil {
		t.Fatal(err)
	}
	// phi/ is tagged as a whole: its secret adds nothing.
	if fmt.Sprint(r.Scope.Mounts) != "[phi/]" || fmt.Sprint(r.Scope.Secrets) != "[secret/app/db secret/odd/x*y]" || !strings.Contains(r.Scope.Note, "custom_metadata") {
		t.Fatalf("scope: %+v", r.Scope)
	}
	fig := func(r *Report, key string) int64 {
		for _, f := range r.Summary {
			if f.Key == key {
				return f.Count
			}
		}
		t.Fatalf("no summary figure %s", key)
		return 0
	}
	// carol's 15 reads of secret/data/app/db, dave's metadata read and
	// denied delete, and the escaped odd/x*y; not app/dbx nor odd/xzy.
	if got, want := fig(r, "scoped_accesses")-fig(base, "scoped_accesses"), int64(15+2+1); got != want {
		t.Errorf("scoped accesses grew by %d, want %d", got, want)
	}
	if got := fig(r, "scoped_denied") - fig(base, "scoped_denied"); got != 1 {
		t.Errorf("scoped denied grew by %d, want 1", got)
	}
	n := VerifyChecks(t, r, func(f query.Filter) ([]query.Record, error) {
		var out []query.Record
		for {
			f.Limit = 7
			res, err := b.Query(context.Background(), f)
			if err != nil {
				return nil, err
			}
			out = append(out, res.Records...)
			if res.Next == "" {
				return out, nil
			}
			f.After = res.Next
		}
	})
	if n < 20 {
		t.Fatalf("only %d checks verified", n)
	}
}

// TestBackupDrillSection checks the restore-drill section of both reports
// against the synthetic drill records, and that its result follows the
// compliance checks storage.snapshot-schedule and storage.restore-drill.
func TestBackupDrillSection(t *testing.T) {
	gen := func(kind string, edit func(e *compliance.Env)) Section {
		t.Helper()
		env := synthEnv(t)
		edit(env)
		r, err := Generate(context.Background(), Source{Backend: newMemBackend(synthLog()), Env: env}, Params{Kind: kind, From: t0, To: tEnd, GeneratedAt: tGen})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Sections {
			if len(s.Tables) == 2 && s.Tables[1].ID == "restore-drills" {
				return s
			}
		}
		t.Fatalf("%s: no restore-drill section", kind)
		return Section{}
	}
	for kind, id := range map[string]string{KindHIPAA: "hipaa-164.308(a)(7)(ii)(A)", KindNRB: "nrb-bcp-restore-drills"} {
		s := gen(kind, func(*compliance.Env) {})
		if s.ID != id || s.Result != ResultPass {
			t.Fatalf("%s: section %s result %s (%s)", kind, s.ID, s.Result, s.ResultText)
		}
		fig := map[string]string{}
		for _, f := range s.Figures {
			fig[f.Key] = f.Display()
		}
		last := map[string]string{KindHIPAA: "2025-03-07 14:00:00 (UTC)", KindNRB: "2025-03-07 19:45:00 (Asia/Kathmandu)"}[kind] // NRB reports in Nepal time
		want := map[string]string{"schedules": "1", "drills": "2", "drills_passed": "1", "drill_requests": "2", "last_passing_drill": last}
		for k, v := range want {
			if fig[k] != v {
				t.Errorf("%s: figure %s = %q, want %q", kind, k, fig[k], v)
			}
		}
		rows := s.Tables[1].Rows
		if len(rows) != 2 || rows[0][5] != "passed" || !strings.HasPrefix(rows[1][5], "FAILED: integrity") || rows[0][7] != "12 (12)" {
			t.Errorf("%s: drill rows %v", kind, rows)
		}
	}
	cases := []struct {
		name   string
		edit   func(e *compliance.Env)
		result string
		text   string
	}{
		{"latest drill failed", func(e *compliance.Env) { e.Backups[0].Drills = e.Backups[0].Drills[1:] }, ResultFail, "failed: integrity"},
		{"drill too old", func(e *compliance.Env) { e.Now = tGen.Add(8 * 24 * time.Hour); e.Backups[0].Status.LastSuccess = e.Now }, ResultAttention, "last passing restore drill was"},
		{"snapshots stale", func(e *compliance.Env) { e.Backups[0].Status.LastSuccess = tGen.Add(-49 * time.Hour) }, ResultFail, "over twice the interval"},
		{"no schedule", func(e *compliance.Env) { e.Backups = nil }, ResultFail, "No automated snapshot schedule"},
	}
	for _, c := range cases {
		s := gen(KindHIPAA, c.edit)
		if s.Result != c.result || !strings.Contains(s.ResultText, c.text) {
			t.Errorf("%s: %s (%s)", c.name, s.Result, s.ResultText)
		}
	}
}
