package itest

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/querysvc"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

// auditorPolicy is the documented auditor policy.
var auditorPolicy = querysvc.AuditorPolicy

// queryTraffic sets up users and policies and makes a known set of
// requests: alice writes and reads her app's secrets, is denied prod, a
// login fails; returns alice's token accessor and the auditor's token.
func queryTraffic(t *testing.T, s *queryServer) (aliceAccessor, auditorToken string) {
	t.Helper()
	c := s.Client
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Sys().PutPolicy("app", `path "secret/data/app/*" { capabilities = ["read", "create", "update"] }`))
	must(c.Sys().PutPolicy("auditor", auditorPolicy))
	must(c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}))
	for user, pol := range map[string]string{"alice": "app", "audrey": "auditor"} {
		_, err := c.Logical().Write("auth/userpass/users/"+user, map[string]any{"password": "pw-" + user, "token_policies": pol})
		must(err)
	}
	anon := s.NewClient("")
	alice, acc := userToken(t, anon, "alice", "pw-alice")
	audrey, _ := userToken(t, anon, "audrey", "pw-audrey")
	ac := s.NewClient(alice)
	for i := 0; i < 3; i++ {
		_, err := ac.Logical().Write("secret/data/app/db", map[string]any{"data": map[string]any{"password": "p" + string(rune('0'+i))}})
		must(err)
		_, err = ac.Logical().Read("secret/data/app/db")
		must(err)
	}
	_, err := ac.Logical().Read("secret/data/prod/payroll")
	wantStatus(t, err, http.StatusForbidden)
	_, err = anon.Logical().Write("auth/userpass/login/mallory", map[string]any{"password": "guess"})
	if err == nil {
		t.Fatal("mallory logged in")
	}
	_, err = c.Logical().Write("secret/data/prod/payroll", map[string]any{"data": map[string]any{"k": "v"}})
	must(err)
	return acc, audrey
}

// The API end to end: policy gating, filters, formats, paging, the
// checkpoint, and results identical to the reference implementation over
// the server's own log.
func TestQueryAPI(t *testing.T) {
	dir := t.TempDir()
	s := mustQueryServer(t, dir, nil, nil, querysvc.Options{Poll: 2 * time.Millisecond, ChunkRows: 40})
	if got := s.Query().BackendName(); got != "embedded" {
		t.Fatalf("backend %q without a ClickHouse stream", got)
	}
	aliceAcc, auditor := queryTraffic(t, s)
	cpSeq := s.checkpointNow(t)
	waitQueryCovers(t, s.Server, cpSeq, time.Minute)

	// Only a token with read on sys/audit/query may query.
	if _, err := apiQuery(t, s.Server, auditor, url.Values{"limit": {"1"}}); err != nil {
		t.Fatalf("auditor: %v", err)
	}
	aliceTok, _ := userToken(t, s.NewClient(""), "alice", "pw-alice")
	_, err := apiQuery(t, s.Server, aliceTok, url.Values{})
	wantStatus(t, err, http.StatusForbidden)

	pub := s.publicKey(t)
	check := func(name string, params url.Values, min int) []query.Record {
		t.Helper()
		res := apiQueryAll(t, s.Server, auditor, params)
		f, err := query.FilterFromParams(params.Get, 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// After the query, and after a checkpoint that flushes its response
		// entry (fsync "interval"): the query's checkpoint and every line
		// it covers are in them.
		s.checkpointNow(t)
		lines := querytest.ReadLines(t, auditLogPath(dir))
		want := referenceAt(t, lines, res.Checkpoint, f, actorHashes(t, s.Client, f)...)
		if d := querytest.Diff(want, res.Records); d != "" {
			t.Fatalf("%s: %s", name, d)
		}
		if len(res.Records) < min {
			t.Fatalf("%s: %d records, want at least %d", name, len(res.Records), min)
		}
		if res.Backend != "embedded" || res.Checkpoint == nil || !strings.Contains(res.Verification, "signature verified") {
			t.Fatalf("%s: backend %q checkpoint %+v verification %q", name, res.Backend, res.Checkpoint, res.Verification)
		}
		mustVerifyCheckpoint(t, res.Checkpoint, pub)
		return res.Records
	}
	recs := check("secret paths", url.Values{"path": {"secret/"}}, 8)
	for _, r := range recs {
		if r.RemoteAddr != "127.0.0.1" || r.Operation == "" || r.Time.IsZero() || r.RequestID == "" {
			t.Fatalf("record lacks fields: %+v", r)
		}
	}
	alice := check("alice", url.Values{"actor": {"userpass-alice"}, "path": {"secret/"}}, 7)
	reads := 0
	for _, r := range alice {
		if r.Operation == "read" && r.Allowed && r.Path == "secret/data/app/db" {
			reads++
			if len(r.GrantingPolicies) != 1 || r.GrantingPolicies[0] != "app" {
				t.Fatalf("granting policy: %+v", r)
			}
		}
	}
	if reads != 3 {
		t.Fatalf("alice's reads: %d", reads)
	}
	denied := check("denied prod", url.Values{"path": {"secret/data/prod/"}, "allowed": {"false"}}, 1)
	if denied[0].DisplayName != "userpass-alice" || denied[0].ErrorCode != "permission_denied" || len(denied[0].DenyReasons) == 0 && denied[0].Error == "" {
		t.Fatalf("denied: %+v", denied[0])
	}
	failed := check("failed login", url.Values{"path": {"auth/userpass/login/"}, "allowed": {"false"}}, 1)
	if failed[0].Path != "auth/userpass/login/mallory" {
		t.Fatalf("failed login: %+v", failed[0])
	}
	check("glob", url.Values{"path": {"secret/data/*/db"}, "operation": {"read"}}, 3)
	check("mount and window", url.Values{"mount": {"secret"}, "since": {"1h"}, "until": {time.Now().Add(time.Hour).Format(time.RFC3339)}}, 8)

	// A raw accessor is hashed with the device salt (sys/audit-hash, an
	// internal request that is itself audited).
	byAcc := check("raw accessor", url.Values{"actor": {aliceAcc}, "path": {"secret/"}}, 7)
	if len(byAcc) != len(alice) {
		t.Fatalf("by accessor %d records, by name %d", len(byAcc), len(alice))
	}

	// Paging returns the same records as one page.
	one := apiQueryAll(t, s.Server, auditor, url.Values{"path": {"secret/"}, "limit": {"1000"}})
	paged := apiQueryAll(t, s.Server, auditor, url.Values{"path": {"secret/"}, "limit": {"2"}})
	if d := querytest.Diff(one.Records, paged.Records); d != "" {
		t.Fatalf("paging: %s", d)
	}

	// CSV (RFC 4180) and OCSF.
	code, h, body := rawQuery(t, s.Server, auditor, url.Values{"path": {"secret/"}, "format": {"csv"}})
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || h.Get(querysvc.HeaderCheckpoint) == "" || h.Get(querysvc.HeaderBackend) != "embedded" {
		t.Fatalf("csv: %d %v", code, h)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(rows) != len(one.Records)+1 || strings.Join(rows[0], ",") != strings.Join(query.CSVHeader(), ",") || !strings.Contains(string(body), "\r\n") {
		t.Fatalf("csv: %v rows %d, want %d\n%s", err, len(rows), len(one.Records)+1, body)
	}
	code, h, body = rawQuery(t, s.Server, auditor, url.Values{"path": {"secret/"}, "format": {"ocsf"}})
	evs := strings.Split(strings.TrimSpace(string(body)), "\n")
	if code != 200 || h.Get("Content-Type") != "application/x-ndjson" || len(evs) != len(one.Records) {
		t.Fatalf("ocsf: %d %v %d events", code, h, len(evs))
	}
	for i, e := range evs {
		var ev struct {
			ClassUID int `json:"class_uid"`
			Metadata struct {
				UID string `json:"uid"`
			} `json:"metadata"`
			API struct {
				Operation string `json:"operation"`
			} `json:"api"`
		}
		if err := json.Unmarshal([]byte(e), &ev); err != nil || ev.ClassUID != 6003 || ev.API.Operation != one.Records[i].Operation ||
			!strings.HasSuffix(ev.Metadata.UID, ":"+seqString(one.Records[i].Seq)) {
			t.Fatalf("ocsf event %d: %v %s", i, err, e)
		}
	}

	// Invalid filters are 400s.
	for _, p := range []url.Values{{"operation": {"frobnicate"}}, {"since": {"yesterday-ish"}}, {"allowed": {"maybe"}}, {"format": {"xml"}}, {"path": {"secret/[x"}}} {
		_, err := apiQuery(t, s.Server, auditor, p)
		wantStatus(t, err, http.StatusBadRequest)
	}

	// The query's own audit entries record who asked what, not the records.
	cpSeq = s.checkpointNow(t)
	waitQueryCovers(t, s.Server, cpSeq, time.Minute)
	own := check("queries by the auditor", url.Values{"path": {"sys/audit/query"}, "actor": {"userpass-audrey"}}, 5)
	for _, line := range querytest.ReadLines(t, auditLogPath(dir)) {
		l, err := logline.Parse(line)
		if err != nil || l.Type != "response" || l.Request().Path != "sys/audit/query" || l.Request().ID != own[0].RequestID {
			continue
		}
		if l.Entry.Response != nil && l.Entry.Response.Data != nil || l.Vigil().ResponseRawBytes == 0 {
			t.Fatalf("the query's response entry holds the records: %s", line)
		}
	}

	// After a restart the index resumes from its files.
	before := s.Query().Index().Status()
	s.Restart()
	cpSeq = s.checkpointNow(t)
	waitQueryCovers(t, s.Server, cpSeq, time.Minute)
	after := s.Query().Index().Status()
	if after.Resets != 0 || after.Chunks < before.Chunks || before.Chunks == 0 {
		t.Fatalf("index after restart: before %+v after %+v", before, after)
	}
	check("secret paths after restart", url.Values{"path": {"secret/"}}, 8)
}

// referenceAt is the reference answer over the whole log, bounded by the
// checkpoint the backend named.
func referenceAt(t testing.TB, lines [][]byte, cp *query.CheckpointRef, f query.Filter, hashes ...string) []query.Record {
	t.Helper()
	if cp == nil {
		t.Fatal("no checkpoint")
	}
	var upTo [][]byte
	for _, l := range lines {
		m, err := logline.ScanMembers(l)
		if err != nil {
			t.Fatal(err)
		}
		if m.Seq <= cp.Seq+1 {
			upTo = append(upTo, l)
		}
	}
	// Requests answered after the checkpoint are not Incomplete: give the
	// reference every response, and keep its horizon at the checkpoint.
	for _, l := range lines {
		if m, _ := logline.ScanMembers(l); m.Seq > cp.Seq+1 && !logline.IsRecord(l) {
			upTo = append(upTo, l)
		}
	}
	want, rcp := querytest.Reference(t, upTo, f, hashes...)
	if rcp == nil || rcp.Seq != cp.Seq {
		t.Fatalf("reference checkpoint %+v, backend %+v", rcp, cp)
	}
	return want
}

func seqString(n uint64) string { return strconv.FormatUint(n, 10) }

// mustVerifyCheckpoint checks a result's checkpoint signature with the
// server's key, as an auditor would.
func mustVerifyCheckpoint(t testing.TB, ref *query.CheckpointRef, pub ed25519.PublicKey) {
	t.Helper()
	sig, err := base64.StdEncoding.DecodeString(ref.Signature)
	if err == nil {
		err = chain.Checkpoint{NodeID: ref.NodeID, Seq: ref.Seq, Hash: ref.Hash, TreeSize: ref.TreeSize, Root: ref.Root, Time: ref.Time,
			Signature: sig, KeyID: ref.KeyID}.Verify(pub)
	}
	if err != nil {
		t.Fatalf("checkpoint %+v does not verify: %v", ref, err)
	}
}

// actorHashes hashes a filter's actor with the file device's salt.
func actorHashes(t testing.TB, c *vaultapi.Client, f query.Filter) []string {
	t.Helper()
	if f.Actor == "" {
		return nil
	}
	h, err := c.Sys().AuditHash("file", f.Actor)
	if err != nil {
		t.Fatal(err)
	}
	return []string{h}
}
