package querysvc_test

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// start runs a dev server with a file audit device and the query
// subsystem before (or after) the audit subsystem.
func start(t *testing.T, before bool) (*servertest.Server, *querysvc.Subsystem) {
	t.Helper()
	var qs *querysvc.Subsystem
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.OptionsWith(cfg, wire.Tuning{Query: querysvc.Options{Poll: 2 * time.Millisecond}})
		var rest []server.Plug
		for _, sub := range o.Subsystems {
			if x, ok := sub.Subsystem.(*querysvc.Subsystem); ok {
				qs = x
				continue
			}
			rest = append(rest, sub)
		}
		if before {
			o.Subsystems = append([]server.Plug{wire.Plug(qs)}, rest...)
		} else {
			o.Subsystems = append(rest, wire.Plug(qs))
		}
		return o, err
	}
	dir := t.TempDir()
	s := servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{{Type: "file", Name: "file", Options: map[string]config.Value{"path": {Value: filepath.Join(dir, "audit.log")}}}}
	}})
	return s, qs
}

func get(t *testing.T, s *servertest.Server) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/sys/audit/query?limit=1", nil)
	req.Header.Set("X-Vault-Token", s.RootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Listed before the audit subsystem, the query route is served and the
// embedded index starts once the audit device is open.
func TestWiredBeforeAudit(t *testing.T) {
	s, qs := start(t, true)
	if code, body := get(t, s); code != http.StatusOK {
		t.Fatalf("GET sys/audit/query: %d %s", code, body)
	}
	b, err := qs.Backend()
	if err != nil || b.Name() != "embedded" || qs.Index() == nil {
		t.Fatalf("backend %v %v", b, err)
	}
	s.Stop()
	if _, err := qs.Backend(); err == nil {
		t.Fatal("a backend while sealed")
	}
}

// Listed after it, the query route is still served: the router prefers
// sys/audit/query to the audit subsystem's sys/audit/:path whatever the
// order of the subsystems.
func TestWiredAfterAuditIsServed(t *testing.T) {
	s, qs := start(t, false)
	if code, body := get(t, s); code != http.StatusOK {
		t.Fatalf("GET sys/audit/query wired after the audit subsystem: %d %s", code, body)
	}
	if b, err := qs.Backend(); err != nil || b.Name() != "embedded" {
		t.Fatalf("backend %v %v", b, err)
	}
}

func TestAuditorPolicy(t *testing.T) {
	s, _ := start(t, true)
	if err := s.Client.Sys().PutPolicy("auditor", querysvc.AuditorPolicy); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"auditor"}})
	if err != nil {
		t.Fatal(err)
	}
	c := s.NewClient(tok.Auth.ClientToken)
	if _, err := c.Logical().Read("sys/audit/query"); err != nil {
		t.Fatalf("auditor: %v", err)
	}
	for _, p := range []string{"sys/compliance/checks", "sys/compliance/controls"} {
		if _, err := c.Logical().Read(p); err != nil {
			t.Fatalf("auditor reads %s: %v", p, err)
		}
	}
	resp, err := c.Logical().ReadRawWithData("sys/reports/hipaa", map[string][]string{"format": {"json"}})
	if err != nil {
		t.Fatalf("auditor report: %v", err)
	}
	resp.Body.Close()
	if _, err := c.Logical().Read("secret/data/x"); err == nil {
		t.Fatal("the auditor policy grants more than the query")
	}
	if _, err := c.Logical().Write("sys/compliance/recovery-procedure", map[string]any{"documented": true}); err == nil {
		t.Fatal("the auditor policy grants a write")
	}
}
