package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", time.Hour: "1h", 768 * time.Hour: "768h", 90 * time.Minute: "1h30m",
		45 * time.Second: "45s", time.Hour + time.Second: "1h0m1s", 5 * time.Minute: "5m",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := humanDurationValue(json.Number("3600")); got != "1h" {
		t.Errorf("json.Number: %v", got)
	}
	if got := humanDurationValue("1h0m0s"); got != "1h0m0s" {
		t.Errorf("non-numeric strings must pass through: %v", got)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"3600": time.Hour, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour, "": 0,
	} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"abc", "1x", "d"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q): no error", bad)
		}
	}
}

func TestPadEqualSigns(t *testing.T) {
	// Vault's exact headers for a KV v2 read of secret/data/creds.
	if got := padEqualSigns("Secret Path", len("secret/data/creds")); got != "== Secret Path ==" {
		t.Errorf("path header %q", got)
	}
	md := map[string]any{"created_time": 1, "custom_metadata": 1, "deletion_time": 1, "destroyed": 1, "version": 1}
	if got := headerForMap("Metadata", md); got != "======= Metadata =======" {
		t.Errorf("metadata header %q", got)
	}
	if got := headerForMap("Data", map[string]any{"foo": 1}); got != "=== Data ===" {
		t.Errorf("data header %q", got)
	}
}

func TestSecretTableAndFields(t *testing.T) {
	var out bytes.Buffer
	old := stdout
	stdout = &out
	defer func() { stdout = old }()

	s := &vaultapi.Secret{
		LeaseID: "db/creds/x/1", LeaseDuration: 3600, Renewable: true,
		Data: map[string]any{"username": "u", "ttl": json.Number("90"), "empty": "", "none": nil},
	}
	cf := &clientFlags{format: "table"}
	if code := cf.printSecret(s); code != 0 {
		t.Fatalf("exit %d", code)
	}
	table := out.String()
	for key, want := range map[string]string{
		"lease_id": "db/creds/x/1", "lease_duration": "1h", "lease_renewable": "true",
		"username": "u", "ttl": "1m30s", "empty": "n/a", "none": "<nil>",
	} {
		if got := tableValue(t, table, key); got != want {
			t.Errorf("%s = %q, want %q\n%s", key, got, want, table)
		}
	}

	// A root token has no TTL: Vault prints ∞.
	out.Reset()
	cf.printSecret(&vaultapi.Secret{Auth: &vaultapi.SecretAuth{ClientToken: "t", Policies: []string{"root"}, TokenPolicies: []string{"root"}}})
	if got := tableValue(t, out.String(), "token_duration"); got != "∞" {
		t.Errorf("root token_duration = %q", got)
	}
	if got := tableValue(t, out.String(), "policies"); got != `["root"]` {
		t.Errorf("policies = %q", got)
	}

	// -field prints the raw value without a newline when not on a terminal.
	out.Reset()
	cf.field = "username"
	if code := cf.printSecret(s); code != 0 || out.String() != "u" {
		t.Errorf("-field=username: exit %d, %q", code, out.String())
	}
	out.Reset()
	cf.field = "lease_duration"
	if cf.printSecret(s); out.String() != "3600" {
		t.Errorf("-field=lease_duration: %q", out.String())
	}
}

func TestFieldMissingIsUsageError(t *testing.T) {
	var out, errb bytes.Buffer
	oldOut, oldErr := stdout, stderr
	stdout, stderr = &out, &errb
	defer func() { stdout, stderr = oldOut, oldErr }()
	cf := &clientFlags{format: "table", field: "nope"}
	if code := cf.printSecret(&vaultapi.Secret{Data: map[string]any{"a": "b"}}); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), `Field "nope" not present in secret`) {
		t.Fatalf("stderr: %q", errb.String())
	}
}

func TestWantArgs(t *testing.T) {
	var errb bytes.Buffer
	old := stderr
	stderr = &errb
	defer func() { stderr = old }()
	if wantArgs([]string{"a"}, 1, 1) != 0 || wantArgs(nil, 0, -1) != 0 {
		t.Fatal("valid counts rejected")
	}
	if wantArgs(nil, 1, 1) != 1 || !strings.Contains(errb.String(), "Not enough arguments (expected 1, got 0)") {
		t.Fatalf("missing: %q", errb.String())
	}
	if wantArgs([]string{"a", "b"}, 1, 1) != 1 || !strings.Contains(errb.String(), "Too many arguments (expected 1, got 2)") {
		t.Fatalf("extra: %q", errb.String())
	}
}

func TestRepeatableFlags(t *testing.T) {
	var kv kvFlag
	if err := kv.Set("a=b=c"); err != nil || kv["a"] != "b=c" {
		t.Fatalf("kvFlag: %v %v", kv, err)
	}
	if err := kv.Set("novalue"); err == nil {
		t.Fatal("kvFlag accepted a value without '='")
	}
	var ss stringSliceFlag
	_ = ss.Set("x")
	_ = ss.Set("y")
	if ss.String() != "x,y" {
		t.Fatalf("stringSliceFlag: %v", ss)
	}
}

func TestCommandGroups(t *testing.T) {
	r := runCLI(t, "kv")
	r.wantCode(t, 1, "Usage: vigil kv <subcommand>", "metadata put", "undelete")
	runCLI(t, "operator", "raft", "snapshot", "--help").wantCode(t, 0, "restore", "save")
	runCLI(t, "token", "zap").wantCode(t, 1, "Unknown command: token zap", "revoke")
	// Every command of the brief is registered.
	for _, name := range []string{"status", "login", "read", "write", "list", "delete",
		"operator init", "operator unseal", "operator seal", "operator raft snapshot save", "operator raft snapshot restore",
		"kv put", "kv get", "kv patch", "kv delete", "kv undelete", "kv destroy", "kv list",
		"kv metadata get", "kv metadata put", "kv metadata delete",
		"token create", "token lookup", "token renew", "token revoke",
		"secrets enable", "secrets disable", "secrets list", "secrets tune",
		"lease lookup", "lease renew", "lease revoke"} {
		if commands[name] == nil {
			t.Errorf("command %q not registered", name)
		}
	}
}

func TestReadSecretInputFirstLine(t *testing.T) {
	old := stdin
	defer func() { stdin = old }()
	stdin = strings.NewReader("  key-one  \nkey-two\n")
	if got, err := readSecretInput("prompt"); err != nil || got != "key-one" {
		t.Fatalf("got %q, %v", got, err)
	}
	stdin = strings.NewReader("no-newline")
	if got, _ := readSecretInput("prompt"); got != "no-newline" {
		t.Fatalf("got %q", got)
	}
}

// Tables and JSON never print a bidirectional control raw: a path holding
// U+202E shows escaped in a table, and as a \u escape (the same value) in
// JSON.
func TestTablesEscapeBidiControls(t *testing.T) {
	var o bytes.Buffer
	old := stdout
	stdout = &o
	defer func() { stdout = old }()
	spoof := "phi/ward7/\u202etxt.exe"
	writeTable([]string{"Path"}, [][]string{{spoof}})
	printTable(map[string]any{"path": spoof})
	printTable([]string{spoof})
	printJSON(map[string]any{"path": spoof})
	out := o.String()
	if strings.ContainsRune(out, '\u202e') {
		t.Fatalf("raw U+202E printed:\n%s", out)
	}
	if strings.Count(out, `phi/ward7/\u202etxt.exe`) != 4 {
		t.Fatalf("the path is not shown escaped in every rendering:\n%s", out)
	}
}
