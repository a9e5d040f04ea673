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

// TestKVWrapTTL: the kv commands honour -wrap-ttl (their mount preflight
// is not wrapped) and print the wrap info, or the -field asked for.
func TestKVWrapTTL(t *testing.T) {
	mustCLIServer(t)
	mustOK(t, "kv", "put", "secret/app", "pw=one")
	out := mustOK(t, "kv", "get", "-wrap-ttl=5m", "secret/app")
	if tok := tableValue(t, out, "wrapping_token:"); !strings.HasPrefix(tok, "hvs.") || strings.Contains(out, "one") ||
		tableValue(t, out, "wrapping_token_creation_path:") != "secret/data/app" {
		t.Fatalf("wrapped kv get:\n%s", out)
	}
	tok := strings.TrimSpace(mustOK(t, "kv", "get", "-wrap-ttl=5m", "-field=wrapping_token", "secret/app"))
	if got := mustOK(t, "unwrap", "-field=data", tok); !strings.Contains(got, "pw:one") {
		t.Fatalf("unwrap of a wrapped kv get: %q", got)
	}
	out = mustOK(t, "kv", "put", "-wrap-ttl=1m", "secret/app", "pw=two")
	if tableValue(t, out, "wrapping_token_creation_path:") != "secret/data/app" {
		t.Fatalf("wrapped kv put:\n%s", out)
	}
	out = mustOK(t, "kv", "metadata", "get", "-wrap-ttl=1m", "secret/app")
	if tableValue(t, out, "wrapping_token_creation_path:") != "secret/metadata/app" {
		t.Fatalf("wrapped kv metadata get:\n%s", out)
	}
}
