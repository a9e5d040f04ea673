package main

import (
	"strings"
	"testing"
)

// TestNamespaceCLI: the namespace commands and -namespace / VIGIL_NAMESPACE
// on every client command.
func TestNamespaceCLI(t *testing.T) {
	mustCLIServer(t)
	out := mustOK(t, "namespace", "create", "-custom-metadata=tenant=A", "hospital-a")
	if tableValue(t, out, "path") != "hospital-a/" || !strings.Contains(out, "tenant:A") {
		t.Fatalf("create:\n%s", out)
	}
	mustOK(t, "namespace", "create", "-namespace=hospital-a", "icu")
	if out := mustOK(t, "namespace", "list"); out != "hospital-a/\n" {
		t.Fatalf("list: %q", out)
	}
	if out := mustOK(t, "namespace", "list", "-ns", "hospital-a"); out != "icu/\n" {
		t.Fatalf("list in hospital-a: %q", out)
	}
	out = mustOK(t, "namespace", "patch", "-custom-metadata=region=eu", "-remove-custom-metadata=tenant", "hospital-a")
	if !strings.Contains(out, "region:eu") || strings.Contains(out, "tenant") {
		t.Fatalf("patch:\n%s", out)
	}
	// VIGIL_NAMESPACE puts every command in the namespace.
	t.Setenv("VIGIL_NAMESPACE", "hospital-a")
	mustOK(t, "secrets", "enable", "-path=secret", "-version=2", "kv")
	mustOK(t, "kv", "put", "secret/ward", "beds=12")
	if out := mustOK(t, "kv", "get", "-field=beds", "secret/ward"); strings.TrimSpace(out) != "12" {
		t.Fatalf("kv get in hospital-a: %q", out)
	}
	t.Setenv("VIGIL_NAMESPACE", "")
	// The root's secret/ is another mount.
	runCLI(t, "kv", "get", "secret/ward").wantCode(t, 2)
	if out := mustOK(t, "kv", "get", "-namespace=hospital-a", "-field=beds", "secret/ward"); strings.TrimSpace(out) != "12" {
		t.Fatalf("kv get -namespace: %q", out)
	}
	// Lock and unlock with the key.
	out = mustOK(t, "namespace", "lock", "-namespace=hospital-a", "icu")
	key := tableValue(t, out, "unlock_key")
	runCLI(t, "secrets", "list", "-namespace=hospital-a/icu").wantCode(t, 2, "locked by an administrator")
	runCLI(t, "namespace", "unlock", "-namespace=hospital-a", "-unlock-key=wrong", "icu").wantCode(t, 2, "incorrect unlock key")
	mustOK(t, "namespace", "unlock", "-namespace=hospital-a", "-unlock-key="+key, "icu")
	mustOK(t, "secrets", "list", "-namespace=hospital-a/icu")
	// Delete: children first.
	runCLI(t, "namespace", "delete", "hospital-a").wantCode(t, 2, "child namespaces")
	if out := mustOK(t, "namespace", "delete", "-namespace=hospital-a", "icu"); !strings.Contains(out, "Success! Namespace deleted") {
		t.Fatalf("delete: %q", out)
	}
	mustOK(t, "namespace", "delete", "hospital-a")
	runCLI(t, "namespace", "lookup", "hospital-a").wantCode(t, 2)
}
