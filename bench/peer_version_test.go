package bench

import (
	"strings"
	"testing"
)

func TestParsePeerRelease(t *testing.T) {
	for out, want := range map[string]peerRelease{
		"OpenBao v2.5.5\n":                        {Product: "OpenBao", Major: 2, Minor: 5, Patch: 5, Raw: "OpenBao v2.5.5"},
		"Vault v1.19.0 ('abc'), built 2025-03-04": {Product: "Vault", Major: 1, Minor: 19, Raw: "Vault v1.19.0 ('abc'), built 2025-03-04"},
		"something else":                          {Raw: "something else"},
	} {
		if got := parsePeerRelease(out); got != want {
			t.Errorf("parsePeerRelease(%q) = %+v, want %+v", out, got, want)
		}
	}
}

// TestAuditModeFor: OpenBao from 2.4 declares its audit device in the
// configuration; 2.3.2 to 2.3.x need the unsafe API switch; older OpenBao
// and Vault use the API.
func TestAuditModeFor(t *testing.T) {
	bao := func(s string) peerRelease { return parsePeerRelease("OpenBao " + s) }
	for _, c := range []struct {
		kind string
		rel  peerRelease
		want peerAuditMode
	}{
		{"openbao", bao("v2.5.5"), auditDeclarative},
		{"openbao", bao("v2.4.0"), auditDeclarative},
		{"openbao", bao("v3.0.0"), auditDeclarative},
		{"openbao", bao("v2.3.2"), auditViaAPIUnsafe},
		{"openbao", bao("v2.3.1"), auditViaAPI},
		{"openbao", peerRelease{Raw: "dev build"}, auditDeclarative},
		{"vault", parsePeerRelease("Vault v1.19.0"), auditViaAPI},
		{"vigil", parsePeerRelease("Vigil v0.1.0"), auditViaAPI},
	} {
		if got := auditModeFor(c.kind, c.rel); got != c.want {
			t.Errorf("%s %s: mode %d, want %d", c.kind, c.rel.Raw, got, c.want)
		}
	}
	if cfg := peerAuditConfig(auditDeclarative, "/a b/audit.log"); !strings.Contains(cfg, `audit "file" "file" {`) || !strings.Contains(cfg, `file_path = "/a b/audit.log"`) {
		t.Errorf("declarative block:\n%s", cfg)
	}
	if cfg := peerAuditConfig(auditViaAPIUnsafe, "x"); cfg != "unsafe_allow_api_audit_creation = true\n" {
		t.Errorf("unsafe switch: %q", cfg)
	}
}
