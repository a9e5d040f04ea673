package auditsvc_test

import (
	"errors"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// Headers configured with sys/config/auditing/request-headers appear in the
// next audit entries, HMAC'd when asked; deleted ones disappear.
func TestAuditRequestHeadersThroughTheAPI(t *testing.T) {
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	c := s.Client
	logPath := s.MustEnableFileAudit(nil)
	for name, hmac := range map[string]bool{"X-Tenant": false, "X-Secret-Ref": true} {
		if _, err := c.Logical().Write("sys/config/auditing/request-headers/"+name, map[string]any{"hmac": hmac}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.Logical().Read("sys/config/auditing/request-headers")
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := list.Data["headers"].(map[string]any)
	if x, _ := hs["x-secret-ref"].(map[string]any); x["hmac"] != true || hs["x-tenant"] == nil {
		t.Fatalf("configured headers: %v", list.Data)
	}
	one, err := c.Logical().Read("sys/config/auditing/request-headers/X-Tenant")
	if err != nil || one.Data["X-Tenant"] == nil {
		t.Fatalf("one header: %v %v", one, err)
	}
	var re *vaultapi.ResponseError
	if _, err := c.Logical().Write("sys/config/auditing/request-headers/X-Vault-Token", nil); !errors.As(err, &re) || re.StatusCode != 400 {
		t.Fatalf("the token header: %v", err)
	}

	hc := s.NewClient(s.RootToken)
	hc.AddHeader("X-Tenant", "acme")
	hc.AddHeader("X-Secret-Ref", "ticket-42")
	hc.AddHeader("X-Other", "not recorded")
	if _, err := hc.Logical().Read("sys/mounts"); err != nil {
		t.Fatal(err)
	}
	entries := servertest.AuditEntries(servertest.ReadAudit(t, logPath), "request", "sys/mounts")
	if len(entries) == 0 {
		t.Fatal("no audit entry for the request")
	}
	req, _ := entries[len(entries)-1]["request"].(map[string]any)
	h, _ := req["headers"].(map[string]any)
	tenant, _ := h["x-tenant"].([]any)
	ref, _ := h["x-secret-ref"].([]any)
	if len(tenant) != 1 || tenant[0] != "acme" || len(ref) != 1 || !strings.HasPrefix(ref[0].(string), "hmac-sha256:") || h["x-other"] != nil {
		t.Fatalf("recorded headers: %v", h)
	}
	// The HMAC is the device's: sys/audit-hash finds the value.
	hash, err := c.Sys().AuditHash("file", "ticket-42")
	if err != nil || hash != ref[0] {
		t.Fatalf("audit-hash %q, entry %q (%v)", hash, ref[0], err)
	}

	if _, err := c.Logical().Delete("sys/config/auditing/request-headers/X-Tenant"); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Logical().Read("sys/auth"); err != nil {
		t.Fatal(err)
	}
	entries = servertest.AuditEntries(servertest.ReadAudit(t, logPath), "request", "sys/auth")
	req, _ = entries[len(entries)-1]["request"].(map[string]any)
	h, _ = req["headers"].(map[string]any)
	if h["x-tenant"] != nil || h["x-secret-ref"] == nil {
		t.Fatalf("headers after deleting X-Tenant: %v", h)
	}
}
