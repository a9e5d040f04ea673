package lease_test

// Integration tests: a real in-process Vigil server on a loopback port,
// driven with the official vault/api client (an external test package, so
// that it can import the server wiring).

import (
	"net/http"
	"testing"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// sys/leases/tidy answers 202 Accepted with Vault's warning.
func TestLeaseTidyAnswers202(t *testing.T) {
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	c := s.Client
	r := c.NewRequest(http.MethodPut, "/v1/sys/leases/tidy")
	//lint:ignore SA1019 the status code is what this test looks at
	resp, err := c.RawRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
	sec, err := c.Logical().Write("sys/leases/tidy", nil)
	if err != nil || sec == nil || len(sec.Warnings) != 1 {
		t.Fatalf("tidy: %v %v", sec, err)
	}
}
