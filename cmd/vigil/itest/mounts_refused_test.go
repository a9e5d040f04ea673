package itest

import (
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// TestUnsupportedTypesAreRefused: enabling a secrets engine or auth method
// the server does not implement answers 400 naming what it does support,
// and leaves no mount behind.
func TestUnsupportedTypesAreRefused(t *testing.T) {
	s := devServer(t)
	c := s.Client
	for _, typ := range []string{"kubernetes", "rabbitmq", "nomad"} {
		err := c.Sys().Mount("x-"+typ, &vaultapi.MountInput{Type: typ})
		wantStatus(t, err, 400)
		for _, want := range []string{"plugin not found in the catalog: " + typ, "supports secrets engines:", "kv", "ssh", "totp", "transit", "pki", "database"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("enable %s: error lacks %q: %v", typ, want, err)
			}
		}
	}
	for _, typ := range []string{"radius", "kerberos"} {
		err := c.Sys().EnableAuthWithOptions("x-"+typ, &vaultapi.EnableAuthOptions{Type: typ})
		wantStatus(t, err, 400)
		for _, want := range []string{"unknown auth method type: " + typ, "supports:", "token", "userpass", "approle"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("enable auth %s: error lacks %q: %v", typ, want, err)
			}
		}
	}
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	for p := range mounts {
		if strings.HasPrefix(p, "x-") {
			t.Errorf("refused engine left mount %s", p)
		}
	}
	for p := range auths {
		if strings.HasPrefix(p, "x-") {
			t.Errorf("refused auth method left mount %s", p)
		}
	}
	// The supported newcomers mount.
	for _, typ := range []string{"ssh", "totp"} {
		if err := c.Sys().Mount(typ, &vaultapi.MountInput{Type: typ}); err != nil {
			t.Errorf("mount %s: %v", typ, err)
		}
	}
}
