package itest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// Requests rejected while sealed are recorded once the server unseals,
// marked sealed, with the token HMAC'd (never in clear).
func TestAuditSealedRejectionsRecorded(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{})
	if err := s.Client.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	c := s.NewClient("hvs.token-used-while-sealed")
	sec, err := c.Logical().Read("secret/data/x")
	wantStatus(t, err, http.StatusServiceUnavailable)
	_ = sec
	s.MustUnseal()
	if _, err := s.Client.Logical().Read("sys/audit"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	found := false
	for _, l := range entries(readLog(t, auditLogPath(dir))) {
		if l.Vigil["sealed"] == true {
			found = true
			if l.Request["path"] != "secret/data/x" || l.Error != "Vault is sealed" {
				t.Fatalf("sealed entry: %s", l.Raw)
			}
			if tok, _ := l.Request["client_token"].(string); !strings.HasPrefix(tok, "hmac-sha256:") {
				t.Fatalf("token not hashed: %s", l.Raw)
			}
		}
		if strings.Contains(l.Raw, "hvs.token-used-while-sealed") {
			t.Fatalf("token in clear: %s", l.Raw)
		}
	}
	if !found {
		t.Fatal("the request rejected while sealed was not recorded")
	}
}
