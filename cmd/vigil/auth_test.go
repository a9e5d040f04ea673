package main

import (
	"strings"
	"testing"
)

func TestAuthEnableListDisable(t *testing.T) {
	s := mustCLIServer(t)
	out := mustOK(t, "auth", "enable", "-description=people", "userpass")
	if !strings.Contains(out, "Enabled userpass auth method at: userpass/") {
		t.Fatalf("enable: %q", out)
	}
	auths, err := s.Client.Sys().ListAuth()
	if err != nil || auths["userpass/"] == nil || auths["userpass/"].Description != "people" {
		t.Fatalf("server side: %v %v", auths, err)
	}
	out = mustOK(t, "auth", "list")
	if !strings.Contains(out, "userpass/") || !strings.Contains(out, "token/") {
		t.Fatalf("list: %q", out)
	}
	runCLI(t, "auth", "enable", "nosuchmethod").wantCode(t, 2, "unknown auth method type")
	runCLI(t, "auth", "enable").wantCode(t, 1)
	mustOK(t, "auth", "disable", "userpass")
	if out := mustOK(t, "auth", "list"); strings.Contains(out, "userpass/") {
		t.Fatalf("still listed after disable: %q", out)
	}
}
