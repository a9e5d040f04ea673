package main

import (
	"testing"
)

func TestKVDeleteUndeleteDestroy(t *testing.T) {
	mustCLIServer(t)
	for _, v := range []string{"one", "two", "three"} {
		mustOK(t, "kv", "put", "secret/d", "v="+v)
	}

	// Delete the latest version: its data is gone, its metadata says when.
	if got := mustOK(t, "kv", "delete", "secret/d"); got != "Success! Data deleted (if it existed) at: secret/data/d\n" {
		t.Fatalf("delete: %q", got)
	}
	out := mustOK(t, "kv", "get", "secret/d")
	if tableValue(t, out, "deletion_time") == "n/a" || tableValue(t, out, "version") != "3" {
		t.Fatalf("deleted version metadata:\n%s", out)
	}
	runCLI(t, "kv", "get", "-field=v", "secret/d").wantCode(t, 2, "No data found at secret/data/d")

	// Undelete brings it back.
	if got := mustOK(t, "kv", "undelete", "-versions=3", "secret/d"); got != "Success! Data written to: secret/undelete/d\n" {
		t.Fatalf("undelete: %q", got)
	}
	if got := mustOK(t, "kv", "get", "-field=v", "secret/d"); got != "three" {
		t.Fatalf("after undelete: %q", got)
	}

	// Delete several versions by number.
	mustOK(t, "kv", "delete", "-versions=1,2", "secret/d")
	for _, v := range []string{"1", "2"} {
		runCLI(t, "kv", "get", "-version="+v, "-field=v", "secret/d").wantCode(t, 2, "No data found")
	}
	mustOK(t, "kv", "undelete", "-versions=1", "-versions=2", "secret/d")
	if got := mustOK(t, "kv", "get", "-version=2", "-field=v", "secret/d"); got != "two" {
		t.Fatalf("undelete of 2: %q", got)
	}

	// Destroy is permanent: undelete cannot restore it.
	if got := mustOK(t, "kv", "destroy", "-versions=1", "secret/d"); got != "Success! Data written to: secret/destroy/d\n" {
		t.Fatalf("destroy: %q", got)
	}
	if got := tableValue(t, mustOK(t, "kv", "get", "-version=1", "secret/d"), "destroyed"); got != "true" {
		t.Fatalf("destroyed = %q", got)
	}
	mustOK(t, "kv", "undelete", "-versions=1", "secret/d")
	runCLI(t, "kv", "get", "-version=1", "-field=v", "secret/d").wantCode(t, 2, "No data found")

	// -mount syntax.
	mustOK(t, "kv", "delete", "-mount=secret", "d")
	runCLI(t, "kv", "get", "-field=v", "secret/d").wantCode(t, 2, "No data found")
}

func TestKVVersionsErrors(t *testing.T) {
	mustCLIServer(t)
	mustOK(t, "kv", "put", "secret/e", "a=b")
	runCLI(t, "kv", "undelete", "secret/e").wantCode(t, 1, `No versions provided, use the "-versions" flag`)
	runCLI(t, "kv", "destroy", "secret/e").wantCode(t, 1, "No versions provided")
	runCLI(t, "kv", "delete").wantCode(t, 1, "Not enough arguments")
	// Bad version numbers are the server's to judge; its message is shown.
	runCLI(t, "kv", "destroy", "-versions=abc", "secret/e").wantCode(t, 2, "Error writing data to secret/destroy/e", "Code: 400")

	mustOK(t, "secrets", "enable", "-path=v1", "kv")
	mustOK(t, "kv", "put", "v1/x", "a=b")
	runCLI(t, "kv", "undelete", "-versions=1", "v1/x").wantCode(t, 1, "Undelete not supported on KV Version 1")
	runCLI(t, "kv", "destroy", "-versions=1", "v1/x").wantCode(t, 1, "Destroy not supported on KV Version 1")
}
