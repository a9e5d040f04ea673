package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWriteReadListDelete(t *testing.T) {
	s := mustCLIServer(t)

	// write with "-": a whole JSON body from stdin (nested data for KV v2).
	r := runCLIStdin(t, `{"data":{"user":"u","pass":"p"},"options":{}}`, "write", "secret/data/app", "-")
	r.wantCode(t, 0)
	if got := tableValue(t, r.out, "version"); got != "1" {
		t.Fatalf("write response:\n%s", r.out)
	}
	sec, err := s.Client.KVv2("secret").Get(t.Context(), "app")
	if err != nil || sec.Data["user"] != "u" {
		t.Fatalf("API read after write: %v %v", sec, err)
	}

	// K=V and K=@file on a v1 mount.
	mustOK(t, "secrets", "enable", "-path=plain", "kv")
	f := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(f, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := mustOK(t, "write", "plain/x", "a=b", "note=@"+f); got != "Success! Data written to: plain/x\n" {
		t.Fatalf("write: %q", got)
	}
	out := mustOK(t, "read", "plain/x")
	if tableValue(t, out, "a") != "b" || tableValue(t, out, "note") != "from a file" {
		t.Fatalf("read:\n%s", out)
	}
	if got := mustOK(t, "read", "-field=note", "plain/x"); got != "from a file" {
		t.Fatalf("read -field: %q", got)
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "read", "-format=json", "plain/x")), &js); err != nil || js["data"].(map[string]any)["a"] != "b" {
		t.Fatalf("read -format=json: %v %v", js, err)
	}

	// read with K=V sends query parameters: ?version=1 on KV v2.
	mustOK(t, "kv", "put", "secret/app", "user=u2")
	var v1 struct {
		Data struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, "read", "-format=json", "secret/data/app", "version=1")), &v1); err != nil || v1.Data.Data["user"] != "u" {
		t.Fatalf("read version=1: %+v %v", v1, err)
	}

	// list
	mustOK(t, "write", "plain/y", "a=b")
	if got := mustOK(t, "list", "plain"); got != "Keys\n----\nx\ny\n" {
		t.Fatalf("list: %q", got)
	}
	if got := mustOK(t, "list", "-format=json", "secret/metadata/"); strings.TrimSpace(got) != "[\n  \"app\"\n]" {
		t.Fatalf("list json: %q", got)
	}
	runCLI(t, "list", "plain/none").wantCode(t, 2, "No value found at plain/none/")

	// delete
	if got := mustOK(t, "delete", "plain/x"); got != "Success! Data deleted (if it existed) at: plain/x\n" {
		t.Fatalf("delete: %q", got)
	}
	runCLI(t, "read", "plain/x").wantCode(t, 2, "No value found at plain/x")

	// write -force with no data: sys/rotate adds a barrier key term.
	term := func() int {
		n, err := strconv.Atoi(mustOK(t, "read", "-field=term", "sys/key-status"))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := term()
	runCLI(t, "write", "sys/rotate").wantCode(t, 1, "Must supply data or use -force")
	mustOK(t, "write", "-f", "sys/rotate")
	if after := term(); after != before+1 {
		t.Fatalf("key term %d -> %d", before, after)
	}

	// A non-JSON response (the raft snapshot, application/gzip) is printed raw.
	raw := mustOK(t, "read", "sys/storage/raft/snapshot")
	snap := filepath.Join(t.TempDir(), "raw.snap")
	if err := os.WriteFile(snap, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkSnapshotFile(snap); err != nil {
		t.Fatalf("raw read of the snapshot: %v", err)
	}
}

func TestRWErrors(t *testing.T) {
	mustCLIServer(t)
	runCLI(t, "read").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "list", "a", "b").wantCode(t, 1, "Too many arguments")
	runCLI(t, "write", "secret/data/x", "oops").wantCode(t, 1, "Failed to parse K=V data")
	runCLIStdin(t, "not json", "write", "secret/data/x", "-").wantCode(t, 1, "stdin must hold a JSON object")
	runCLI(t, "write", "-nope", "x", "a=b").wantCode(t, 1, "flag provided but not defined")
	// Server errors: message shown, exit 2.
	runCLI(t, "write", "sys/mounts/bad", "type=nosuchengine").wantCode(t, 2, "Error writing data to sys/mounts/bad", "Code: 400")
	runCLI(t, "read", "nomount/x").wantCode(t, 2, "No value found at nomount/x")
	runCLI(t, "delete", "sys/mounts/sys").wantCode(t, 2, "Error deleting sys/mounts/sys")
}
