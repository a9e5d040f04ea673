package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// mustQueryCLIServer starts a dev server with a file audit device and
// points the CLI at it.
func mustQueryCLIServer(t *testing.T) (*servertest.Server, *querysvc.Subsystem) {
	t.Helper()
	var qs *querysvc.Subsystem
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.OptionsWith(cfg, wire.Tuning{Query: querysvc.Options{Poll: 2 * time.Millisecond}})
		for _, sub := range o.Subsystems {
			if x, ok := sub.(*querysvc.Subsystem); ok {
				qs = x
			}
		}
		return o, err
	}
	dir := t.TempDir()
	s := servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{{Type: "file", Name: "file", Options: map[string]config.Value{
			"path": {Value: filepath.Join(dir, "audit", "audit.log")}, "checkpoint_interval": {Value: "50ms"}, "fsync": {Value: "interval"}}}}
	}})
	pointCLI(t, s)
	return s, qs
}

// cliQueryTraffic: alice writes and reads, is denied, a login fails.
func cliQueryTraffic(t *testing.T, s *servertest.Server) {
	t.Helper()
	c := s.Client
	if err := c.Sys().PutPolicy("app", `path "secret/data/app/*" { capabilities = ["read", "create", "update"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("auditor", `path "sys/audit/query" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	for user, pol := range map[string]string{"alice": "app", "audrey": "auditor"} {
		if _, err := c.Logical().Write("auth/userpass/users/"+user, map[string]any{"password": "pw-" + user, "token_policies": pol}); err != nil {
			t.Fatal(err)
		}
	}
	sec, err := s.NewClient("").Logical().Write("auth/userpass/login/alice", map[string]any{"password": "pw-alice"})
	if err != nil {
		t.Fatal(err)
	}
	ac := s.NewClient(sec.Auth.ClientToken)
	for i := 0; i < 4; i++ {
		if _, err := ac.Logical().Write("secret/data/app/db", map[string]any{"data": map[string]any{"v": i}}); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Logical().Read("secret/data/app/db"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ac.Logical().Read("secret/data/prod/payroll"); err == nil {
		t.Fatal("alice read prod")
	}
	if _, err := s.NewClient("").Logical().Write("auth/userpass/login/mallory", map[string]any{"password": "x"}); err == nil {
		t.Fatal("mallory logged in")
	}
}

// waitCovered waits until the query's checkpoint covers the traffic so far.
func waitCovered(t *testing.T, s *servertest.Server, qs *querysvc.Subsystem) {
	t.Helper()
	b, err := qs.Backend()
	if err != nil {
		t.Fatal(err)
	}
	ix := qs.Index()
	head := ix.Status().LogHead
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := b.Query(t.Context(), query.Filter{Limit: 1})
		if err == nil && res.Checkpoint != nil && res.Checkpoint.Seq+1 >= head { // the head may be the checkpoint record itself
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint does not cover seq %d: %v %+v", head, err, ix.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuditQueryCLI(t *testing.T) {
	s, qs := mustQueryCLIServer(t)
	cliQueryTraffic(t, s)
	waitCovered(t, s, qs)

	// Table: alice's reads and writes, with the checkpoint at the end. The
	// actor column names her by her login alias (her entity was created by
	// her first login and nobody named it).
	out := mustOK(t, "audit", "query", "--actor", "userpass-alice", "--path", "secret/", "--since", "1h")
	for _, want := range []string{"Time", "Actor", "Decision", "userpass/alice", "secret/data/app/db", "allowed", "DENIED", "Checkpoint: node", "embedded backend", "Verified:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}

	// JSON: the denied read only.
	out = mustOK(t, "audit", "query", "--path", "secret/data/prod/", "--allowed", "false", "-format", "json")
	var res query.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Records) != 1 || res.Records[0].DisplayName != "userpass-alice" || res.Records[0].Allowed || res.Checkpoint == nil {
		t.Fatalf("denied: %+v", res)
	}

	// CSV (RFC 4180): a header and one row per record; all pages fetched.
	r := runCLI(t, "audit", "query", "--path", "secret/data/app/", "--operation", "read", "--format", "csv", "--page-size", "3")
	r.wantCode(t, 0, "Checkpoint: node")
	rows, err := csv.NewReader(strings.NewReader(r.out)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][0] != "time" || rows[1][10] != "secret/data/app/db" {
		t.Fatalf("csv: %v %d rows\n%s", err, len(rows), r.out)
	}

	// OCSF: one event per line; the failed login is an Authentication event.
	out = mustOK(t, "audit", "query", "--path", "auth/userpass/login/mallory", "--format", "ocsf")
	var ev struct {
		ClassUID int `json:"class_uid"`
		StatusID int `json:"status_id"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ev); err != nil || ev.ClassUID != 3002 || ev.StatusID != 2 {
		t.Fatalf("ocsf: %v %+v\n%s", err, ev, out)
	}

	// --limit cuts and prints the cursor; --after continues.
	r = runCLI(t, "audit", "query", "--path", "secret/data/app/", "--limit", "3", "-format", "json")
	r.wantCode(t, 0, "--after ")
	var first query.Result
	if err := json.Unmarshal([]byte(r.out), &first); err != nil || len(first.Records) != 3 || first.Next == "" {
		t.Fatalf("limit: %v %+v", err, first)
	}
	out = mustOK(t, "audit", "query", "--path", "secret/data/app/", "--after", first.Next, "-format", "json")
	var rest query.Result
	if err := json.Unmarshal([]byte(out), &rest); err != nil || len(rest.Records) != 5 || rest.Records[0].Seq == first.Records[2].Seq {
		t.Fatalf("after: %v %d records", err, len(rest.Records))
	}

	// The auditor's token may query; alice's may not.
	sec, err := s.NewClient("").Logical().Write("auth/userpass/login/audrey", map[string]any{"password": "pw-audrey"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TOKEN", sec.Auth.ClientToken)
	mustOK(t, "audit", "query", "--since", "1h", "--limit", "5")
	sec, err = s.NewClient("").Logical().Write("auth/userpass/login/alice", map[string]any{"password": "pw-alice"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TOKEN", sec.Auth.ClientToken)
	runCLI(t, "audit", "query").wantCode(t, 2, "403", "permission denied")

	// Usage errors.
	runCLI(t, "audit", "query", "--allowed", "maybe").wantCode(t, 1, "--allowed")
	runCLI(t, "audit", "query", "--format", "xml").wantCode(t, 1, "Invalid output format")
	t.Setenv("VIGIL_TOKEN", s.RootToken)
	runCLI(t, "audit", "query", "--since", "last tuesday").wantCode(t, 2, "400")
	_ = io.Discard
}
