package database_test

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/engine/database"
	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// mountPath is where the tests mount the engine.
const mountPath = "db"

// build wires a server with the database engine registered (wire.Engines
// lists it too; registering it here keeps the tests independent of that).
func build(cfg *config.Config) (server.Options, error) {
	o, err := wire.Options(cfg)
	if err != nil {
		return o, err
	}
	o.Engines["database"] = database.New
	return o, nil
}

// mustServer starts a dev server with the engine mounted at db/.
func mustServer(t testing.TB) *servertest.Server {
	t.Helper()
	s := servertest.MustStart(t, build, servertest.Options{Dev: true})
	if err := s.Client.Sys().Mount(mountPath, &vaultapi.MountInput{Type: "database"}); err != nil {
		t.Fatalf("mount database: %v", err)
	}
	return s
}

// statusOf returns the HTTP status of a vault/api error (0 if none).
func statusOf(err error) int {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// wantStatus fails unless err is an HTTP error with status whose text
// contains every one of msgs.
func wantStatus(t testing.TB, err error, status int, msgs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected HTTP %d, got success", status)
	}
	if got := statusOf(err); got != status {
		t.Fatalf("expected HTTP %d, got %d: %v", status, got, err)
	}
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			t.Fatalf("error %q does not mention %q", err, m)
		}
	}
}

// write is Logical().Write that fails the test on error.
func write(t testing.TB, c *vaultapi.Client, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// read is Logical().Read that fails the test on error or a missing object.
func read(t testing.TB, c *vaultapi.Client, path string) *vaultapi.Secret {
	t.Helper()
	s, err := c.Logical().Read(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if s == nil {
		t.Fatalf("read %s: not found", path)
	}
	return s
}

// rawGet returns the raw JSON body of GET /v1/<path>.
func rawGet(t testing.TB, c *vaultapi.Client, path string) string {
	t.Helper()
	//lint:ignore SA1019 the raw body is what is checked
	resp, err := c.RawRequest(c.NewRequest("GET", "/v1/"+path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// configure writes config/<name> for srv's admin (verify_connection
// default) allowing every role.
func configure(t testing.TB, c *vaultapi.Client, srv *dbtest.Server, name string) {
	t.Helper()
	write(t, c, mountPath+"/config/"+name, map[string]any{
		"plugin_name":    srv.Plugin,
		"connection_url": srv.TemplateURL,
		"username":       srv.AdminUser,
		"password":       srv.AdminPassword,
		"allowed_roles":  "*",
	})
}

// creds is one issued credential.
type creds struct {
	Username, Password, LeaseID string
	LeaseDuration               time.Duration
	Renewable                   bool
}

// issue reads creds/<role> and returns the credential.
func issue(t testing.TB, c *vaultapi.Client, role string) creds {
	t.Helper()
	s := read(t, c, mountPath+"/creds/"+role)
	u, _ := s.Data["username"].(string)
	p, _ := s.Data["password"].(string)
	if u == "" || p == "" || s.LeaseID == "" {
		t.Fatalf("creds/%s: incomplete response %+v", role, s)
	}
	return creds{Username: u, Password: p, LeaseID: s.LeaseID,
		LeaseDuration: time.Duration(s.LeaseDuration) * time.Second, Renewable: s.Renewable}
}

// leaseGone reports whether sys/leases/lookup no longer knows id.
func leaseGone(c *vaultapi.Client, id string) bool {
	_, err := c.Sys().Lookup(id)
	return err != nil && statusOf(err) == 400
}

// waitLeaseGone polls until the lease is gone or timeout passes.
func waitLeaseGone(c *vaultapi.Client, id string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !leaseGone(c, id) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// leasesUnder lists the lease IDs under prefix (nil when none).
func leasesUnder(t testing.TB, c *vaultapi.Client, prefix string) []string {
	t.Helper()
	s, err := c.Logical().List("sys/leases/lookup/" + prefix)
	if err != nil {
		t.Fatalf("list leases %s: %v", prefix, err)
	}
	if s == nil {
		return nil
	}
	var out []string
	keys, _ := s.Data["keys"].([]any)
	for _, k := range keys {
		out = append(out, k.(string))
	}
	return out
}

// jsonNumber returns a numeric field of a response as int64.
func jsonNumber(t testing.TB, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}
