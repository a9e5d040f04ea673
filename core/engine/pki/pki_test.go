package pki

import (
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestConformance(t *testing.T) {
	seed := func(tb testing.TB, c *enginetest.Client) {
		genRoot(tb, c, map[string]any{"issuer_name": "root-a"})
		webRole(tb, c, nil)
		must(tb)(c.Write("config/urls", map[string]any{"ocsp_servers": "http://127.0.0.1:8200/v1/pki/ocsp"}))
		leaf := must(tb)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "1h"})).Data
		must(tb)(c.Write("revoke", map[string]any{"serial_number": leaf["serial_number"]}))
	}
	enginetest.RunConformance(t, New, testMount, enginetest.WithPersistence(seed,
		enginetest.Probe{Op: core.OpRead, Path: "roles/web"},
		enginetest.Probe{Op: core.OpRead, Path: "ca/pem"},
		enginetest.Probe{Op: core.OpRead, Path: "cert/ca"},
		enginetest.Probe{Op: core.OpRead, Path: "crl"},
		enginetest.Probe{Op: core.OpRead, Path: "config/urls"},
		enginetest.Probe{Op: core.OpRead, Path: "issuer/root-a"},
		enginetest.Probe{Op: core.OpList, Path: "certs/"},
		enginetest.Probe{Op: core.OpList, Path: "certs/revoked/"},
		enginetest.Probe{Op: core.OpList, Path: "roles/"},
	))
}

// TestRoutesUnauthenticated pins which routes need no token: Vault's public
// CA, CRL, certificate and OCSP endpoints, and nothing else.
func TestRoutesUnauthenticated(t *testing.T) {
	c := newPKI(t)
	want := map[string]bool{
		`crl`: true, `crl/pem`: true, `ca`: true, `ca/pem`: true, `ca_chain`: true,
		`cert/(?P<serial>[0-9A-Za-z:_-]+)`: true, `cert/(?P<serial>[0-9A-Za-z:_-]+)/raw(?P<pem>/pem)?`: true,
		`issuers/?`: true, `ocsp`: true, `ocsp/(?P<req>.*)`: true,
		`issuer/(?P<issuer_ref>\w(([\w.@-]+)?\w)?)/(?P<format>json|pem|der)`: true,
	}
	for _, r := range c.Routes() {
		if r.Unauthenticated != want[r.Pattern] {
			t.Errorf("route %q: Unauthenticated = %v, want %v", r.Pattern, r.Unauthenticated, want[r.Pattern])
		}
		if r.Raw != (r.Pattern == `ocsp`) {
			t.Errorf("route %q: Raw = %v", r.Pattern, r.Raw)
		}
	}
}
