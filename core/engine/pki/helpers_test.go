package pki

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

var testMount = core.MountInfo{Path: "pki/", Type: "pki"}

// newPKI mounts a fresh engine at pki/.
func newPKI(t testing.TB) *enginetest.Client {
	t.Helper()
	_, c := enginetest.MustSetup(t, New, testMount)
	return c
}

// newPKIAt mounts a fresh engine at path, on its own storage.
func newPKIAt(t testing.TB, path string) *enginetest.Client {
	t.Helper()
	_, c := enginetest.MustSetup(t, New, core.MountInfo{Path: path, Type: "pki"})
	return c
}

// must fails the test when a call's error is set and returns the response.
func must(t testing.TB) func(*core.Response, error) *core.Response {
	t.Helper()
	return func(resp *core.Response, err error) *core.Response {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return resp
	}
}

// wantErr fails unless err has code and contains msg.
func wantErr(t testing.TB, err error, code core.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s %q", code, msg)
	}
	if core.CodeOf(err) != code {
		t.Fatalf("error %q has code %s, want %s", err, core.CodeOf(err), code)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not contain %q", err, msg)
	}
}

// str returns data[k] as a string, failing when it is not one.
func str(t testing.TB, data map[string]any, k string) string {
	t.Helper()
	s, ok := data[k].(string)
	if !ok {
		t.Fatalf("data[%q] = %#v (%T), want a string", k, data[k], data[k])
	}
	return s
}

// parseCert parses one PEM certificate.
func parseCert(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}

// genRoot generates an internal root with extra fields and returns the data.
func genRoot(t testing.TB, c *enginetest.Client, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"common_name": "Vigil Test Root", "ttl": "87600h", "key_type": "ec"}
	for k, v := range extra {
		body[k] = v
	}
	return must(t)(c.Write("root/generate/internal", body)).Data
}

// tuneMax raises the harness mount's max lease TTL to max (and the default
// to def) by re-running Setup with a new SystemView.
func tuneMax(t testing.TB, c *enginetest.Client, def, max time.Duration) {
	t.Helper()
	env := c.Env()
	env.System = sysView{def: def, max: max}
	if err := c.Engine.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
}

type sysView struct{ def, max time.Duration }

func (s sysView) DefaultLeaseTTL() time.Duration  { return s.def }
func (s sysView) MaxLeaseTTL() time.Duration      { return s.max }
func (s sysView) MountOptions() map[string]string { return nil }

// webRole writes role "web" for example.com subdomains with extra fields.
func webRole(t testing.TB, c *enginetest.Client, extra map[string]any) {
	t.Helper()
	body := map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec", "max_ttl": "720h"}
	for k, v := range extra {
		body[k] = v
	}
	must(t)(c.Write("roles/web", body))
}

// rootPool is a pool holding the PEM certificates given.
func rootPool(t testing.TB, pems ...string) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, s := range pems {
		p.AddCert(parseCert(t, s))
	}
	return p
}

// stringsOf converts a []string or []any data value.
func stringsOf(t testing.TB, v any) []string {
	t.Helper()
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i], _ = e.(string)
		}
		return out
	}
	t.Fatalf("%#v (%T) is not a string list", v, v)
	return nil
}
