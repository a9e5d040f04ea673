package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSecretsEnableTuneDisable(t *testing.T) {
	s := mustCLIServer(t)

	got := mustOK(t, "secrets", "enable", "-path=team", "-version=2", "-description=team secrets",
		"-default-lease-ttl=30m", "-max-lease-ttl=24h", "-options=extra=x", "kv")
	if got != "Success! Enabled the kv secrets engine at: team/\n" {
		t.Fatalf("enable: %q", got)
	}
	m, err := s.Client.Sys().GetMount("team")
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "kv" || m.Description != "team secrets" || m.Options["version"] != "2" || m.Options["extra"] != "x" ||
		m.Config.DefaultLeaseTTL != 1800 || m.Config.MaxLeaseTTL != 86400 {
		t.Fatalf("mount: %+v", m)
	}
	// It is a working KV v2 mount.
	mustOK(t, "kv", "put", "team/a", "k=v")
	if got := mustOK(t, "kv", "get", "-field=k", "team/a"); got != "v" {
		t.Fatalf("kv on new mount: %q", got)
	}

	// kv-v2 is short for kv with version 2, mounted at kv-v2/.
	mustOK(t, "secrets", "enable", "kv-v2")
	if m, err := s.Client.Sys().GetMount("kv-v2"); err != nil || m.Options["version"] != "2" {
		t.Fatalf("kv-v2: %+v %v", m, err)
	}

	// list: table, detailed, JSON.
	list := mustOK(t, "secrets", "list")
	if !strings.HasPrefix(list, "Path ") || !strings.Contains(list, "team/") || !strings.Contains(list, "team secrets") {
		t.Fatalf("list:\n%s", list)
	}
	detailed := mustOK(t, "secrets", "list", "-detailed")
	var teamRow string
	for _, l := range strings.Split(detailed, "\n") {
		if strings.HasPrefix(l, "team/") {
			teamRow = l
		}
	}
	for _, want := range []string{"1800", "86400", "map[extra:x version:2]", "replicated"} {
		if !strings.Contains(teamRow, want) {
			t.Fatalf("detailed row lacks %q: %q", want, teamRow)
		}
	}
	var mounts map[string]map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "secrets", "list", "-format=json")), &mounts); err != nil {
		t.Fatal(err)
	}
	if mounts["team/"]["type"] != "kv" || mounts["secret/"] == nil {
		t.Fatalf("json list: %v", mounts)
	}

	// tune changes only what is given: the KV version option survives a TTL tune.
	if got := mustOK(t, "secrets", "tune", "-default-lease-ttl=1h", "team"); got != "Success! Tuned the secrets engine at: team/\n" {
		t.Fatalf("tune: %q", got)
	}
	cfg, err := s.Client.Sys().MountConfig("team")
	if err != nil || cfg.DefaultLeaseTTL != 3600 || cfg.MaxLeaseTTL != 86400 {
		t.Fatalf("after tune: %+v %v", cfg, err)
	}
	if m, _ := s.Client.Sys().GetMount("team"); m.Options["version"] != "2" || m.Description != "team secrets" {
		t.Fatalf("tune lost settings: %+v", m)
	}
	mustOK(t, "secrets", "tune", "-description=renamed", "-max-lease-ttl=48h", "team/")
	if m, _ := s.Client.Sys().GetMount("team"); m.Description != "renamed" || m.Config.MaxLeaseTTL != 172800 || m.Config.DefaultLeaseTTL != 3600 {
		t.Fatalf("second tune: %+v", m.Config)
	}
	// A TTL of 0 returns to the server default.
	mustOK(t, "secrets", "tune", "-default-lease-ttl=0", "team")
	if m, _ := s.Client.Sys().GetMount("team"); m.Config.DefaultLeaseTTL != 0 {
		t.Fatalf("tune to system: %+v", m.Config)
	}

	// disable removes the mount and its data.
	if got := mustOK(t, "secrets", "disable", "team/"); got != "Success! Disabled the secrets engine (if it existed) at: team/\n" {
		t.Fatalf("disable: %q", got)
	}
	if _, ok := mustMounts(t)["team/"]; ok {
		t.Fatal("team/ still mounted")
	}
	runCLI(t, "kv", "get", "team/a").wantCode(t, 2)
}

// mustMounts returns `secrets list -format=json`.
func mustMounts(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "secrets", "list", "-format=json")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSecretsErrors(t *testing.T) {
	mustCLIServer(t)
	runCLI(t, "secrets", "enable").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "secrets", "enable", "-default-lease-ttl=long", "kv").wantCode(t, 1, "invalid value")
	runCLI(t, "secrets", "enable", "-options=bad", "kv").wantCode(t, 1, "expected key=value")
	runCLI(t, "secrets", "enable", "nosuchengine").wantCode(t, 2, "Error enabling", "Code: 400")
	runCLI(t, "secrets", "enable", "-path=secret", "kv").wantCode(t, 2, "Error enabling", "already in use")
	runCLI(t, "secrets", "tune", "-max-lease-ttl=1h", "nomount").wantCode(t, 2, "Error tuning secrets engine nomount/")
	runCLI(t, "secrets", "disable").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "secrets", "list", "x").wantCode(t, 1, "Too many arguments")
}
