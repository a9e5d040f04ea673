package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoginToken(t *testing.T) {
	s := mustCLIServer(t)
	home := os.Getenv("HOME")
	tokFile := filepath.Join(home, ".vigil-token")
	child := strings.TrimSpace(mustOK(t, "token", "create", "-ttl=2h", "-field=token"))

	r := runCLI(t, "login", child)
	r.wantCode(t, 0, "WARNING! The VIGIL_TOKEN environment variable is set")
	if !strings.Contains(r.out, "Success! You are now authenticated.") {
		t.Fatalf("no success banner:\n%s", r.out)
	}
	if got := tableValue(t, r.out, "token"); got != child {
		t.Fatalf("token row %q, want %q", got, child)
	}
	if got := tableValue(t, r.out, "token_duration"); got != "2h" && got != "1h59m59s" {
		t.Fatalf("token_duration %q", got)
	}
	b, err := os.ReadFile(tokFile)
	if err != nil || string(b) != child {
		t.Fatalf("token file: %q %v", b, err)
	}
	if fi, _ := os.Stat(tokFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode().Perm())
	}

	// Later commands use the stored token when no variable is set.
	t.Setenv("VIGIL_TOKEN", "")
	if got := mustOK(t, "token", "lookup", "-field=id"); got != child {
		t.Fatalf("lookup-self with stored token: %q", got)
	}

	// "-" reads the token from stdin; the root token shows an infinite TTL.
	r = runCLIStdin(t, s.RootToken+"\n", "login", "-")
	r.wantCode(t, 0)
	if got := tableValue(t, r.out, "token_duration"); got != "∞" {
		t.Fatalf("root token_duration %q", got)
	}
	if b, _ := os.ReadFile(tokFile); string(b) != s.RootToken {
		t.Fatalf("token file after stdin login: %q", b)
	}

	// -token-only prints just the token and stores nothing.
	if got := mustOK(t, "login", "-token-only", child); got != child {
		t.Fatalf("-token-only: %q", got)
	}
	if b, _ := os.ReadFile(tokFile); string(b) != s.RootToken {
		t.Fatalf("-token-only stored the token: %q", b)
	}
	// -no-store, -no-print: silent, nothing stored.
	if got := mustOK(t, "login", "-no-store", "-no-print", child); got != "" {
		t.Fatalf("-no-print printed %q", got)
	}
	if b, _ := os.ReadFile(tokFile); string(b) != s.RootToken {
		t.Fatalf("-no-store stored the token: %q", b)
	}

	// A bad token is refused with the server's message; the file is kept.
	runCLI(t, "login", "hvs.not-a-token").wantCode(t, 2, "Error authenticating", "Code: 403")
	if b, _ := os.ReadFile(tokFile); string(b) != s.RootToken {
		t.Fatalf("failed login changed the token file: %q", b)
	}
	// A revoked token too.
	mustOK(t, "token", "revoke", child)
	runCLI(t, "login", child).wantCode(t, 2, "Code: 403")

	runCLI(t, "login", "a", "b").wantCode(t, 1, "Too many arguments")
	runCLI(t, "login", "-").wantCode(t, 1, "A token must be passed")
}

func TestLoginMethod(t *testing.T) {
	mustCLIServer(t)
	// No userpass mount exists: the server's refusal is shown, exit 2.
	runCLI(t, "login", "-method=userpass", "username=alice", "password=pw").wantCode(t, 2, "Error authenticating")
	runCLI(t, "login", "-method=approle", "-path=ar", "role_id=r", "secret_id=s").wantCode(t, 2, "Error authenticating")
	runCLI(t, "login", "-method=userpass", "password=pw").wantCode(t, 1, "'username' must be specified")
	runCLI(t, "login", "-method=userpass", "username").wantCode(t, 1, "Failed to parse K=V data")
	if _, err := os.Stat(filepath.Join(os.Getenv("HOME"), ".vigil-token")); !os.IsNotExist(err) {
		t.Fatalf("failed logins created a token file: %v", err)
	}
}
