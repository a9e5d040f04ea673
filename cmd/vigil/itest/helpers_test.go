package itest

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// fakeClock is a settable clock shared by a test and its server.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mustStart(t *testing.T, o servertest.Options) *servertest.Server {
	t.Helper()
	return servertest.MustStart(t, wire.Options, o)
}

func devServer(t *testing.T) *servertest.Server {
	t.Helper()
	return mustStart(t, servertest.Options{Dev: true})
}

// statusOf returns the HTTP status of a vault/api error (0 if none).
func statusOf(err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected HTTP %d, got success", status)
	}
	if got := statusOf(err); got != status {
		t.Fatalf("expected HTTP %d, got %d: %v", status, got, err)
	}
}

func rawRequest(t *testing.T, c *vaultapi.Client, method, path string, body any) (*vaultapi.Response, error) {
	t.Helper()
	r := c.NewRequest(method, path)
	if body != nil {
		if err := r.SetJSONBody(body); err != nil {
			t.Fatal(err)
		}
	}
	//lint:ignore SA1019 RawRequest is what we want: exact status codes.
	return c.RawRequest(r)
}

var _ = http.MethodGet
