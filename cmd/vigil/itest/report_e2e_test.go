package itest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
	"github.com/vigilsec/vigil/reports"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/querysvc"
	"github.com/vigilsec/vigil/reports/traffic"
)

// setClock is a settable clock for the report tests.
type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *setClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// reportServer is a dev server as wire builds it, with a file audit
// device; reports read the audit trail through the query subsystem.
func reportServer(t *testing.T, clk *setClock) (*servertest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	build := func(cfg *config.Config) (server.Options, error) {
		return wire.OptionsWith(cfg, wire.Tuning{Query: querysvc.Options{Poll: 2 * time.Millisecond}})
	}
	srv := servertest.MustStart(t, build, servertest.Options{Dir: dir, Dev: true, Now: clk.Now, Configure: func(cfg *config.Config) {
		cfg.Audit = []config.Block{fileDevice(dir, nil)}
	}})
	return srv, dir
}

func getReport(t *testing.T, c *vaultapi.Client, kind, format string, from, to time.Time) []byte {
	t.Helper()
	resp, err := c.Logical().ReadRawWithData("sys/reports/"+kind, map[string][]string{
		"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "format": {format}})
	if err != nil {
		t.Fatalf("report %s %s: %v", kind, format, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fetchAll pages through GET /v1/sys/audit/query.
func fetchAll(t *testing.T, c *vaultapi.Client) func(qs string) []query.Record {
	t.Helper()
	return func(qs string) []query.Record {
		var out []query.Record
		v, _ := url.ParseQuery(qs)
		after := ""
		for {
			q := map[string][]string{}
			for k, vs := range v {
				q[k] = vs
			}
			q["limit"] = []string{"50"}
			if after != "" {
				q["after"] = []string{after}
			}
			resp, err := c.Logical().ReadRawWithData("sys/audit/query", q)
			if err != nil {
				t.Fatalf("query %s: %v", qs, err)
			}
			var body struct {
				Data query.Result `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, body.Data.Records...)
			if after = body.Data.Next; after == "" {
				return out
			}
		}
	}
}

// TestReportsEndToEnd generates the known access pattern of package
// traffic on a real server (userpass users with policies, a PHI-tagged
// mount, denials, break-glass through rego/examples/break_glass.rego, root
// token use, failed logins), then asserts the exact counts in each report
// section, that each figure equals what the query API returns, and that
// the PDF read back with pdftotext carries the same figures.
func TestReportsEndToEnd(t *testing.T) {
	start := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC) // a Monday
	clk := &setClock{t: start.Add(-2 * time.Hour)}
	srv, dir := reportServer(t, clk)
	ts := traffic.Server{Root: srv.Client, NewClient: srv.NewClient, SetClock: clk.Set, AuditDir: filepath.Join(dir, "audit")}
	if err := traffic.Setup(ts, start.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for d := 0; d < 2; d++ {
		if err := traffic.Day(ts, start.Add(time.Duration(d)*24*time.Hour), d); err != nil {
			t.Fatal(err)
		}
	}
	end := start.Add(48 * time.Hour)
	clk.Set(end.Add(time.Hour))
	if _, err := srv.Client.Logical().Write("sys/audit/verify", nil); err != nil {
		t.Fatal(err)
	}
	var rep reports.Report
	if err := json.Unmarshal(getReport(t, srv.Client, "hipaa", "json", start, end), &rep); err != nil {
		t.Fatal(err)
	}
	fig := func(section, key string) int64 {
		for _, s := range rep.Sections {
			if s.ID == section {
				for _, f := range s.Figures {
					if f.Key == key {
						return f.Count
					}
				}
			}
		}
		t.Fatalf("no figure %s/%s", section, key)
		return 0
	}
	act, login := "hipaa-164.308(a)(1)(ii)(D)", "hipaa-164.308(a)(5)(ii)(C)"
	want := map[string]int64{
		act + "/scoped_accesses":        16, // 2 days x 6 + 3 break-glass + 1 root read
		act + "/scoped_denied":          3,  // carol x2, break-glass without a reason
		act + "/scoped_off_hours":       5,  // bob 20:00 x2, break-glass 02:00 x3
		act + "/scoped_actors":          5,  // alice, bob, carol, oncall, root
		act + "/break_glass":            2,
		act + "/root_token_use":         4, // token create, policy write, PHI read, audit enable
		act + "/privileged_policy":      1,
		act + "/privileged_audit":       1,
		act + "/privileged_seal":        0,
		login + "/failed_logins":        3,
		login + "/logins_ok":            10,
		login + "/failed_login_users":   1,
		login + "/failed_login_sources": 1,
		"hipaa-164.312(b)/incomplete":   0,
		"hipaa-164.312(b)/devices":      2,
	}
	for k, v := range want {
		sec, key, _ := strings.Cut(k, "/")
		if got := fig(sec, key); got != v {
			t.Errorf("%s = %d, want %d", k, got, v)
		}
	}
	byActor := map[string]string{}
	for _, s := range rep.Sections {
		for _, tb := range s.Tables {
			if tb.ID == "accesses-by-identity" {
				for _, r := range tb.Rows {
					byActor[r[0]] = r[1]
				}
			}
		}
	}
	// Users are named by their login alias (their entities were created by
	// their first login); tokens without an entity by their display name.
	if fmt.Sprint(byActor) != fmt.Sprint(map[string]string{"userpass/alice": "6", "userpass/bob": "4", "userpass/carol": "2", "token-oncall": "3", "root": "1"}) {
		t.Errorf("accesses by identity: %v", byActor)
	}
	for _, s := range rep.Sections {
		if s.ID == "hipaa-164.312(c)(1)" && s.Result != reports.ResultPass { // integrity: verified just now
			t.Logf("%+v", s)
			t.Errorf("integrity: %s %s", s.Result, s.ResultText)
		}
	}
	// Every figure equals what the query API returns.
	fetch := fetchAll(t, srv.Client)
	n := 0
	check := func(what string, c *reports.Check, want string) {
		var all []query.Record
		for _, q := range c.Queries {
			all = append(all, fetch(q)...)
		}
		got := c.Count(all, rep.BusinessHours)
		n++
		if fmt.Sprint(got) != want {
			t.Errorf("%s: report %s, query API %d (%s)", what, want, got, c)
		}
	}
	for _, kind := range []string{"hipaa", "nrb"} {
		var r reports.Report
		if err := json.Unmarshal(getReport(t, srv.Client, kind, "json", start, end), &r); err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Sections {
			for _, f := range s.Figures {
				if f.Check != nil {
					check(kind+"/"+s.ID+"/"+f.Key, f.Check, f.Display())
				}
			}
			for _, tb := range s.Tables {
				for i, c := range tb.RowChecks {
					check(kind+"/"+s.ID+"/"+tb.ID+"/"+tb.Rows[i][0], c, tb.Rows[i][tb.CountCol])
				}
			}
		}
	}
	if n < 40 {
		t.Fatalf("only %d figures checked", n)
	}
	// The PDF carries the same figures.
	if pdftotext := testsvc.Tool(t, "pdftotext"); pdftotext != "" {
		pdf := getReport(t, srv.Client, "hipaa", "pdf", start, end)
		p := filepath.Join(t.TempDir(), "hipaa.pdf")
		if err := os.WriteFile(p, pdf, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(pdftotext, "-layout", p, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		for _, line := range []string{"Requests to in-scope mounts 16", "Break-glass requests (any path) 2", "Requests made with a root token (any path) 4", "Failed logins 3", "Successful logins 10"} {
			if !strings.Contains(strings.Join(strings.Fields(text), " "), line) {
				t.Errorf("PDF lacks %q", line)
			}
		}
	}
	html := getReport(t, srv.Client, "nrb", "html", start, end)
	if !bytes.Contains(html, []byte("unverified [U]")) || !bytes.Contains(html, []byte("<svg")) {
		t.Error("NRB HTML lacks the caveat or the charts")
	}
}

// TestReportScopesTaggedSecret: a KV v2 secret tagged phi=true in its
// custom_metadata is in a report's scope on an untagged mount; its figures
// equal what GET /v1/sys/audit/query returns.
func TestReportScopesTaggedSecret(t *testing.T) {
	clk := &setClock{t: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)}
	srv, _ := reportServer(t, clk)
	c := srv.Client
	for _, k := range []string{"ward/7", "ward/70", "other"} {
		if _, err := c.KVv2("secret").Put(context.Background(), k, map[string]any{"v": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.KVv2("secret").PutMetadata(context.Background(), "ward/7", vaultapi.KVMetadataPutInput{CustomMetadata: map[string]any{"phi": "true"}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.KVv2("secret").Get(context.Background(), "ward/7"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.KVv2("secret").Get(context.Background(), "ward/70"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.KVv2("secret").GetMetadata(context.Background(), "ward/7"); err != nil {
		t.Fatal(err)
	}
	from, to := clk.Now().Add(-time.Hour), clk.Now().Add(time.Hour)
	var rep reports.Report
	if err := json.Unmarshal(getReport(t, c, "hipaa", "json", from, to), &rep); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Scope.Secrets) != "[secret/ward/7]" || len(rep.Scope.Mounts) != 0 {
		t.Fatalf("scope: %+v", rep.Scope)
	}
	var scoped *reports.Figure
	for i, f := range rep.Summary {
		if f.Key == "scoped_accesses" {
			scoped = &rep.Summary[i]
		}
	}
	// put, metadata put, 3 reads, metadata read.
	if scoped == nil || scoped.Count != 6 {
		t.Fatalf("scoped accesses: %+v", scoped)
	}
	fetch := fetchAll(t, c)
	var got int64
	for _, q := range scoped.Check.Queries {
		for _, r := range fetch(q) {
			if reports.Match(scoped.Check.Match, r, rep.BusinessHours) {
				got++
			}
		}
	}
	if got != scoped.Count {
		t.Fatalf("query API gives %d for %v, the report %d", got, scoped.Check, scoped.Count)
	}
}

// TestReportAndQuerySeeLatestRequests: on a server with the default
// settings, a query and a report made right after some requests include
// them, and neither lists its own, still unanswered request as a request
// without a response entry.
func TestReportAndQuerySeeLatestRequests(t *testing.T) {
	dir := t.TempDir()
	srv := servertest.MustStart(t, wire.Options, servertest.Options{Dir: dir, Dev: true, Configure: func(cfg *config.Config) {
		cfg.Audit = []config.Block{fileDevice(dir, map[string]string{"checkpoint_interval": "1h", "checkpoint_every": "100000"})}
	}})
	c := srv.Client
	if err := c.Sys().TuneMountAllowNil("secret", vaultapi.TuneMountConfigInput{Options: &map[string]string{"phi": "true"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := c.KVv2("secret").Put(context.Background(), fmt.Sprintf("p/%d", i), map[string]any{"v": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	sec, err := c.Logical().ReadWithData("sys/audit/query", map[string][]string{"path": {"secret/data/p/"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sec.Data)
	var res query.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 5 {
		t.Fatalf("query right after the writes: %d records, want 5 (checkpoint %+v)", len(res.Records), res.Checkpoint)
	}
	all, err := c.Logical().ReadWithData("sys/audit/query", map[string][]string{"path": {"sys/audit/query"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(all.Data)
	res = query.Result{}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Records {
		if r.Incomplete {
			t.Fatalf("a query lists an unanswered query: %+v", r)
		}
	}
	var rep reports.Report
	if err := json.Unmarshal(getReport(t, c, "hipaa", "json", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, s := range rep.Sections {
		for _, f := range s.Figures {
			got[s.ID+"/"+f.Key] = f.Count
		}
	}
	if got["hipaa-164.312(b)/incomplete"] != 0 || rep.Sections[0].Result == reports.ResultAttention && strings.Contains(rep.Sections[0].ResultText, "without a response") {
		t.Fatalf("the report counts unanswered requests: %d, %s", got["hipaa-164.312(b)/incomplete"], rep.Sections[0].ResultText)
	}
	if got["hipaa-164.312(b)/scoped_accesses"] < 5 {
		t.Fatalf("the report misses the latest writes: %v", got)
	}
}
