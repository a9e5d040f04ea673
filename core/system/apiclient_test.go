package system_test

// Integration tests: a real in-process Vigil server on a loopback port,
// driven with the official vault/api client (an external test package, so
// that it can import the server wiring).

import (
	"errors"
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

// tokenWith creates a token with the given policies (plus default).
func tokenWith(t *testing.T, s *servertest.Server, policies ...string) *vaultapi.Client {
	t.Helper()
	sec, err := s.Client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: policies})
	if err != nil {
		t.Fatal(err)
	}
	return s.NewClient(sec.Auth.ClientToken)
}

// rawJSON sends a request with the vault/api client and decodes the whole
// response body (envelope included).
func rawJSON(t *testing.T, c *vaultapi.Client, method, path string, body any) map[string]any {
	t.Helper()
	r := c.NewRequest(method, "/v1/"+path)
	if body != nil {
		if err := r.SetJSONBody(body); err != nil {
			t.Fatal(err)
		}
	}
	//lint:ignore SA1019 the raw body is what these tests look at
	resp, err := c.RawRequest(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := resp.DecodeJSON(&out); err != nil {
		t.Fatalf("%s %s: decode: %v", method, path, err)
	}
	return out
}
