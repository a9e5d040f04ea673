package userpass_test

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

func devServer(t *testing.T) *servertest.Server {
	t.Helper()
	return servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
}

func statusOf(err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func wantStatus(t *testing.T, err error, status int, msg string) {
	t.Helper()
	if got := statusOf(err); got != status || !strings.Contains(errText(err), msg) {
		t.Fatalf("want HTTP %d containing %q, got %d: %v", status, msg, got, err)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mustWrite(t *testing.T, c *vaultapi.Client, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	sec, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return sec
}

// enableUserpass mounts userpass at path with a user whose password is "pw".
func enableUserpass(t *testing.T, s *servertest.Server, path string, users map[string]map[string]any) {
	t.Helper()
	if err := s.Client.Sys().EnableAuthWithOptions(path, &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	for name, extra := range users {
		body := map[string]any{"password": "pw"}
		for k, v := range extra {
			body[k] = v
		}
		mustWrite(t, s.Client, "auth/"+path+"/users/"+name, body)
	}
}

func login(t *testing.T, c *vaultapi.Client, mount, user string) *vaultapi.Secret {
	t.Helper()
	return mustWrite(t, c, "auth/"+mount+"/login/"+user, map[string]any{"password": "pw"})
}
