package main

import (
	"bytes"
	"io"
	"regexp"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// cliResult is what one CLI invocation produced.
type cliResult struct {
	code     int
	out, err string
}

// mustCLIServer starts an in-process dev server (KV v2 at secret/) and
// points the CLI at it through VIGIL_ADDR and VIGIL_TOKEN. HOME is a fresh
// folder so no token file leaks in or out.
func mustCLIServer(t *testing.T) *servertest.Server {
	t.Helper()
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	pointCLI(t, s)
	return s
}

// pointCLI aims the CLI at s with its root token.
func pointCLI(t *testing.T, s *servertest.Server) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	for _, k := range []string{"VAULT_ADDR", "VAULT_TOKEN", "VIGIL_FORMAT", "VAULT_FORMAT", "VAULT_CACERT", "VIGIL_CACERT", "VAULT_NAMESPACE", "VIGIL_NAMESPACE"} {
		t.Setenv(k, "")
	}
	t.Setenv("VIGIL_ADDR", s.URL)
	t.Setenv("VIGIL_TOKEN", s.RootToken)
}

// runCLI runs one command through main's dispatcher with empty stdin.
func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLIStdin(t, "", args...)
}

// runCLIStdin runs one command with the given stdin, capturing the
// stdout/stderr package variables.
func runCLIStdin(t *testing.T, in string, args ...string) cliResult {
	t.Helper()
	var o, e bytes.Buffer
	oldOut, oldErr, oldIn := stdout, stderr, stdin
	stdout, stderr, stdin = &o, &e, io.Reader(strings.NewReader(in))
	defer func() { stdout, stderr, stdin = oldOut, oldErr, oldIn }()
	code := run(args)
	return cliResult{code: code, out: o.String(), err: e.String()}
}

// mustOK runs a command that must succeed and returns its stdout.
func mustOK(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("vigil %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// wantCode asserts an exit code and that stderr contains each of msgs.
func (r cliResult) wantCode(t *testing.T, code int, msgs ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.out, r.err)
	}
	for _, m := range msgs {
		if !strings.Contains(r.err, m) {
			t.Fatalf("stderr does not contain %q:\n%s", m, r.err)
		}
	}
}

// tableValue returns the Value column of a Key/Value table row.
func tableValue(t *testing.T, table, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s{2,}(.*?)\s*$`).FindStringSubmatch(table)
	if m == nil {
		t.Fatalf("no row %q in table:\n%s", key, table)
	}
	return m[1]
}

// vaultapiTokenReq creates a non-root child token (policy "default").
var vaultapiTokenReq = vaultapi.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"}
