package main

import (
	"encoding/json"
	"net"
	"testing"
)

func TestStatus(t *testing.T) {
	s := mustCLIServer(t)

	out := mustOK(t, "status")
	for key, want := range map[string]string{"Initialized": "true", "Sealed": "false", "Total Shares": "1", "Threshold": "1",
		"Storage Type": "raft", "HA Mode": "active"} {
		if got := tableValue(t, out, key); got != want {
			t.Errorf("%s = %q, want %q\n%s", key, got, want, out)
		}
	}

	var js map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "status", "-format=json")), &js); err != nil {
		t.Fatal(err)
	}
	if js["sealed"] != false || js["initialized"] != true || js["storage_type"] != "raft" || js["ha_enabled"] != true {
		t.Fatalf("json status: %v", js)
	}
	if got := mustOK(t, "status", "-field=sealed"); got != "false" {
		t.Fatalf("-field=sealed: %q", got)
	}

	// Sealed: exit 2, as Vault, with the unseal progress shown.
	if err := s.Client.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "status")
	r.wantCode(t, 2)
	if got := tableValue(t, r.out, "Sealed"); got != "true" {
		t.Fatalf("Sealed = %q", got)
	}
	if got := tableValue(t, r.out, "Unseal Progress"); got != "0/1" {
		t.Fatalf("Unseal Progress = %q", got)
	}

	runCLI(t, "status", "extra").wantCode(t, 1, "Too many arguments")
	runCLI(t, "status", "-bogus").wantCode(t, 1, "flag provided but not defined: -bogus")
	runCLI(t, "status", "-format=xml").wantCode(t, 1, "Invalid output format")
}

func TestStatusServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("VIGIL_ADDR", "http://"+addr)
	t.Setenv("VAULT_ADDR", "")
	// Vault's status exits 1 when it cannot reach the server (2 means sealed).
	runCLI(t, "status").wantCode(t, 1, "checking seal status", "connection refused")
}
