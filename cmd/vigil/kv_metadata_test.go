package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestKVMetadata(t *testing.T) {
	s := mustCLIServer(t)
	mustOK(t, "kv", "put", "secret/m", "a=1")
	mustOK(t, "kv", "put", "secret/m", "a=2")

	if got := mustOK(t, "kv", "metadata", "put", "-max-versions=5", "-cas-required", "-delete-version-after=1h",
		"-custom-metadata=owner=alice", "-custom-metadata=team=ops", "secret/m"); got != "Success! Data written to: secret/metadata/m\n" {
		t.Fatalf("metadata put: %q", got)
	}
	md, err := s.Client.Logical().Read("secret/metadata/m")
	if err != nil {
		t.Fatal(err)
	}
	if md.Data["cas_required"] != true || md.Data["max_versions"].(json.Number).String() != "5" {
		t.Fatalf("metadata on server: %v", md.Data)
	}
	if cm := md.Data["custom_metadata"].(map[string]any); cm["owner"] != "alice" || cm["team"] != "ops" {
		t.Fatalf("custom_metadata: %v", cm)
	}

	// Only the flags given are sent: this keeps max_versions and custom_metadata.
	mustOK(t, "kv", "metadata", "put", "-cas-required=false", "secret/m")
	if got := mustOK(t, "kv", "metadata", "get", "-field=max_versions", "secret/m"); got != "5" {
		t.Fatalf("max_versions after partial put: %q", got)
	}
	if got := mustOK(t, "kv", "metadata", "get", "-field=cas_required", "secret/m"); got != "false" {
		t.Fatalf("cas_required: %q", got)
	}

	out := mustOK(t, "kv", "metadata", "get", "secret/m")
	for _, want := range []string{"= Metadata Path =\nsecret/metadata/m\n", "====== Version 1 ======", "====== Version 2 ======"} {
		if !strings.Contains(out, want) {
			t.Fatalf("metadata get lacks %q:\n%s", want, out)
		}
	}
	if got := tableValue(t, out, "current_version"); got != "2" {
		t.Fatalf("current_version %q", got)
	}
	if strings.Index(out, "Version 1") > strings.Index(out, "Version 2") {
		t.Fatal("versions not in order")
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "kv", "metadata", "get", "-format=json", "-mount=secret", "m")), &js); err != nil {
		t.Fatal(err)
	}
	if _, ok := js["data"].(map[string]any)["versions"].(map[string]any)["2"]; !ok {
		t.Fatalf("json metadata: %v", js)
	}

	// cas_required is enforced by the server; its message reaches the user.
	mustOK(t, "kv", "metadata", "put", "-cas-required", "secret/m")
	runCLI(t, "kv", "put", "secret/m", "a=3").wantCode(t, 2, "Error writing data to secret/data/m", "Code: 400")
	mustOK(t, "kv", "put", "-cas=2", "secret/m", "a=3")

	if got := mustOK(t, "kv", "metadata", "delete", "secret/m"); got != "Success! Data deleted (if it existed) at: secret/metadata/m\n" {
		t.Fatalf("metadata delete: %q", got)
	}
	runCLI(t, "kv", "get", "secret/m").wantCode(t, 2, "No value found")
	runCLI(t, "kv", "metadata", "get", "secret/m").wantCode(t, 2, "No value found at secret/metadata/m")
}

func TestKVMetadataErrors(t *testing.T) {
	mustCLIServer(t)
	runCLI(t, "kv", "metadata", "put", "-delete-version-after=soon", "secret/m").wantCode(t, 1, "invalid value")
	runCLI(t, "kv", "metadata", "put", "-custom-metadata=nokey", "secret/m").wantCode(t, 1, "expected key=value")
	runCLI(t, "kv", "metadata", "get").wantCode(t, 1, "Not enough arguments")
	mustOK(t, "secrets", "enable", "-path=v1", "kv")
	runCLI(t, "kv", "metadata", "get", "v1/x").wantCode(t, 1, "Metadata not supported on KV Version 1")
}
