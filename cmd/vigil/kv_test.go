package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKVAddPrefix(t *testing.T) {
	for _, c := range []struct{ p, mount, prefix, want string }{
		{"secret/foo", "secret/", "data", "secret/data/foo"},
		{"secret/a/b", "secret/", "metadata", "secret/metadata/a/b"},
		{"secret", "secret/", "metadata", "secret/metadata"},
		{"secret/", "secret/", "metadata", "secret/metadata"},
		{"team/x/y", "team/x/", "data", "team/x/data/y"},
	} {
		if got := kvAddPrefix(c.p, c.mount, c.prefix); got != c.want {
			t.Errorf("kvAddPrefix(%q, %q, %q) = %q, want %q", c.p, c.mount, c.prefix, got, c.want)
		}
	}
}

func TestKVPutGet(t *testing.T) {
	s := mustCLIServer(t)

	out := mustOK(t, "kv", "put", "secret/hello", "foo=bar", "n=1")
	if !strings.HasPrefix(out, "== Secret Path ==\nsecret/data/hello\n\n======= Metadata =======\n") {
		t.Fatalf("put output:\n%s", out)
	}
	if got := tableValue(t, out, "version"); got != "1" {
		t.Fatalf("version %q", got)
	}
	if got := mustOK(t, "kv", "get", "-field=foo", "secret/hello"); got != "bar" {
		t.Fatalf("-field=foo: %q", got)
	}
	// Same secret through the -mount syntax, and the data written is real.
	if got := mustOK(t, "kv", "get", "-mount=secret", "-field=n", "hello"); got != "1" {
		t.Fatalf("-mount: %q", got)
	}
	kv, err := s.Client.Logical().Read("secret/data/hello")
	if err != nil || kv.Data["data"].(map[string]any)["foo"] != "bar" {
		t.Fatalf("API read: %v %v", kv, err)
	}

	table := mustOK(t, "kv", "get", "secret/hello")
	for _, want := range []string{"== Secret Path ==", "======= Metadata =======", "=== Data ==="} {
		if !strings.Contains(table, want) {
			t.Fatalf("table lacks %q:\n%s", want, table)
		}
	}
	if tableValue(t, table, "foo") != "bar" || tableValue(t, table, "deletion_time") != "n/a" {
		t.Fatalf("table:\n%s", table)
	}

	var js struct {
		Data struct {
			Data     map[string]any `json:"data"`
			Metadata map[string]any `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, "kv", "get", "-format=json", "secret/hello")), &js); err != nil {
		t.Fatal(err)
	}
	if js.Data.Data["foo"] != "bar" || js.Data.Metadata["version"] != float64(1) {
		t.Fatalf("json: %+v", js)
	}

	// Versions and check-and-set, with the server's CAS message.
	mustOK(t, "kv", "put", "-cas=1", "secret/hello", "foo=v2")
	runCLI(t, "kv", "put", "-cas=1", "secret/hello", "foo=v3").wantCode(t, 2,
		"Error writing data to secret/data/hello", "check-and-set parameter did not match the current version")
	runCLI(t, "kv", "put", "-cas=0", "secret/hello", "foo=v3").wantCode(t, 2, "check-and-set")
	if got := mustOK(t, "kv", "get", "-version=1", "-field=foo", "secret/hello"); got != "bar" {
		t.Fatalf("-version=1: %q", got)
	}
	if got := mustOK(t, "kv", "get", "-field=foo", "secret/hello"); got != "v2" {
		t.Fatalf("latest: %q", got)
	}
	runCLI(t, "kv", "get", "-version=9", "secret/hello").wantCode(t, 2)

	// Data from a file and from stdin.
	f := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(f, []byte("line1\nline2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "kv", "put", "secret/file", "cert=@"+f)
	if got := mustOK(t, "kv", "get", "-field=cert", "secret/file"); got != "line1\nline2\n" {
		t.Fatalf("@file: %q", got)
	}
	if r := runCLIStdin(t, "s3cret\n", "kv", "put", "secret/stdin", "pw=-"); r.code != 0 {
		t.Fatalf("K=-: %+v", r)
	}
	if got := mustOK(t, "kv", "get", "-field=pw", "secret/stdin"); got != "s3cret" {
		t.Fatalf("K=-: %q", got)
	}
	if r := runCLIStdin(t, `{"a":"b","c":"d"}`, "kv", "put", "secret/json", "-"); r.code != 0 {
		t.Fatalf("-: %+v", r)
	}
	if got := mustOK(t, "kv", "get", "-field=c", "secret/json"); got != "d" {
		t.Fatalf("- JSON: %q", got)
	}
}

func TestKVErrors(t *testing.T) {
	mustCLIServer(t)
	runCLI(t, "kv", "put", "secret/x").wantCode(t, 1, "Must supply data")
	runCLI(t, "kv", "put").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "kv", "put", "secret/x", "novalue").wantCode(t, 1, "Failed to parse K=V data")
	runCLI(t, "kv", "get", "secret/x", "secret/y").wantCode(t, 1, "Too many arguments")
	runCLI(t, "kv", "get", "-bogus", "secret/x").wantCode(t, 1, "flag provided but not defined: -bogus")
	runCLI(t, "kv", "get", "-format=yaml", "secret/x").wantCode(t, 1, "Invalid output format")
	runCLI(t, "kv", "get", "secret/missing").wantCode(t, 2, "No value found at secret/data/missing")
	mustOK(t, "kv", "put", "secret/x", "a=b")
	runCLI(t, "kv", "get", "-field=nope", "secret/x").wantCode(t, 1, `Field "nope" not present`)
	// No mount there: the preflight's refusal is shown.
	runCLI(t, "kv", "get", "nomount/x").wantCode(t, 2, `checking the KV mount of "nomount/x"`, "Code: 403")
	// Unauthenticated: the server's message, exit 2.
	t.Setenv("VIGIL_TOKEN", "hvs.bogus")
	runCLI(t, "kv", "get", "secret/x").wantCode(t, 2, "Code: 403")
}

func TestKVPatch(t *testing.T) {
	mustCLIServer(t)
	mustOK(t, "kv", "put", "secret/p", "a=1", "b=2", "c=3")

	out := mustOK(t, "kv", "patch", "secret/p", "a=10")
	if got := tableValue(t, out, "version"); got != "2" {
		t.Fatalf("patch version %q\n%s", got, out)
	}
	if got := mustOK(t, "kv", "get", "-field=b", "secret/p"); got != "2" {
		t.Fatalf("patch dropped b: %q", got)
	}
	if got := mustOK(t, "kv", "get", "-field=a", "secret/p"); got != "10" {
		t.Fatalf("patch a: %q", got)
	}
	mustOK(t, "kv", "patch", "-remove-data=b", "secret/p")
	runCLI(t, "kv", "get", "-field=b", "secret/p").wantCode(t, 1, `Field "b" not present`)

	// Read-then-write keeps the other keys and uses CAS on the read version.
	mustOK(t, "kv", "patch", "-method=rw", "secret/p", "d=4")
	if got := mustOK(t, "kv", "get", "-field=c", "secret/p"); got != "3" {
		t.Fatalf("rw dropped c: %q", got)
	}
	if got := mustOK(t, "kv", "get", "-field=d", "secret/p"); got != "4" {
		t.Fatalf("rw d: %q", got)
	}
	runCLI(t, "kv", "patch", "-cas=1", "secret/p", "a=x").wantCode(t, 2, "check-and-set")
	runCLI(t, "kv", "patch", "secret/nothing", "a=x").wantCode(t, 2, "No value found at secret/data/nothing")
	runCLI(t, "kv", "patch", "-method=rw", "secret/nothing", "a=x").wantCode(t, 2, "No value found")
	runCLI(t, "kv", "patch", "secret/p").wantCode(t, 1, "Must supply data")
	runCLI(t, "kv", "patch", "-method=zap", "secret/p", "a=1").wantCode(t, 1, "Unsupported method")
}

func TestKVList(t *testing.T) {
	mustCLIServer(t)
	for _, p := range []string{"secret/app/one", "secret/app/two", "secret/app/sub/three", "secret/top"} {
		mustOK(t, "kv", "put", p, "k=v")
	}
	if got := mustOK(t, "kv", "list", "secret/app"); got != "Keys\n----\none\nsub/\ntwo\n" {
		t.Fatalf("list:\n%s", got)
	}
	if got := mustOK(t, "kv", "list", "-mount=secret"); got != "Keys\n----\napp/\ntop\n" {
		t.Fatalf("list -mount root:\n%s", got)
	}
	var keys []string
	if err := json.Unmarshal([]byte(mustOK(t, "kv", "list", "-format=json", "secret/app/sub")), &keys); err != nil || len(keys) != 1 || keys[0] != "three" {
		t.Fatalf("json list: %v %v", keys, err)
	}
	runCLI(t, "kv", "list", "secret/none").wantCode(t, 2, "No value found at secret/metadata/none")
	runCLI(t, "kv", "list").wantCode(t, 1, "Not enough arguments")
}

func TestKVv1Mount(t *testing.T) {
	s := mustCLIServer(t)
	mustOK(t, "secrets", "enable", "-path=old", "kv")
	if got := mustOK(t, "kv", "put", "old/app", "user=u", "pass=p"); got != "Success! Data written to: old/app\n" {
		t.Fatalf("v1 put: %q", got)
	}
	// Stored at the plain path, not under data/.
	sec, err := s.Client.Logical().Read("old/app")
	if err != nil || sec == nil || sec.Data["user"] != "u" {
		t.Fatalf("v1 API read: %v %v", sec, err)
	}
	if got := mustOK(t, "kv", "get", "-field=pass", "old/app"); got != "p" {
		t.Fatalf("v1 get: %q", got)
	}
	if got := tableValue(t, mustOK(t, "kv", "get", "-mount=old", "app"), "user"); got != "u" {
		t.Fatalf("v1 -mount get: %q", got)
	}
	if got := mustOK(t, "kv", "list", "old"); got != "Keys\n----\napp\n" {
		t.Fatalf("v1 list: %q", got)
	}
	runCLI(t, "kv", "patch", "old/app", "a=b").wantCode(t, 2, "must be version 2")
	mustOK(t, "kv", "delete", "old/app")
	runCLI(t, "kv", "get", "old/app").wantCode(t, 2, "No value found at old/app")
}
