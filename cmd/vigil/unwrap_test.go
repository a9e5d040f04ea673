package main

import (
	"strings"
	"testing"
)

// TestWrapTTLAndUnwrap: -wrap-ttl answers Vault's wrap info table, vigil
// unwrap the wrapped response (once), and -field reads a wrapping field.
func TestWrapTTLAndUnwrap(t *testing.T) {
	mustCLIServer(t)
	mustOK(t, "kv", "put", "secret/app", "pw=one")
	out := mustOK(t, "read", "-wrap-ttl=5m", "secret/data/app")
	tok := tableValue(t, out, "wrapping_token:")
	if !strings.HasPrefix(tok, "hvs.") || tableValue(t, out, "wrapping_token_ttl:") != "5m" ||
		tableValue(t, out, "wrapping_token_creation_path:") != "secret/data/app" || strings.Contains(out, "one") {
		t.Fatalf("wrapped read:\n%s", out)
	}
	if got := mustOK(t, "unwrap", "-field=data", tok); !strings.Contains(got, "pw:one") {
		t.Fatalf("unwrap: %q", got)
	}
	runCLI(t, "unwrap", tok).wantCode(t, 2, "wrapping token is not valid or does not exist")

	acc := mustOK(t, "write", "-wrap-ttl=60", "-field=wrapping_accessor", "sys/wrapping/wrap", "k=v")
	if len(acc) < 10 || strings.Contains(acc, "\n") {
		t.Fatalf("wrapping_accessor field: %q", acc)
	}
}
