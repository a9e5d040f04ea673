package approle_test

// Integration tests: a real in-process Vigil server on a loopback port,
// driven with the official vault/api client (an external test package, so
// that it can import the server wiring).

import (
	"errors"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

func startAppRole(t *testing.T) *servertest.Server {
	t.Helper()
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	if err := s.Client.Sys().EnableAuthWithOptions("approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantStatus(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status || !strings.Contains(err.Error(), msg) {
		t.Fatalf("want HTTP %d containing %q, got %v", status, msg, err)
	}
}

func mustWrite(t *testing.T, c *vaultapi.Client, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	sec, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return sec
}

func roleID(t *testing.T, c *vaultapi.Client, role string) string {
	t.Helper()
	sec, err := c.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	return sec.Data["role_id"].(string)
}
