package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// The cluster commands against a dev server (a single-node cluster):
// list-peers and autopilot state show the node as the leader and voter;
// set-config changes only the options given; bad input is refused with
// the server's message and changes nothing.
func TestRaftPeersAndAutopilot(t *testing.T) {
	s := mustCLIServer(t)
	id := s.NodeID()

	out := mustOK(t, "operator", "raft", "list-peers")
	if !strings.Contains(out, "Node") || !strings.Contains(out, id) || !strings.Contains(out, "leader") || !strings.Contains(out, "true") {
		t.Fatalf("list-peers:\n%s", out)
	}
	var conf struct {
		Config struct {
			Servers []struct {
				NodeID string `json:"node_id"`
				Leader bool   `json:"leader"`
				Voter  bool   `json:"voter"`
			} `json:"servers"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, "operator", "raft", "list-peers", "-format=json")), &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Config.Servers) != 1 || conf.Config.Servers[0].NodeID != id || !conf.Config.Servers[0].Leader || !conf.Config.Servers[0].Voter {
		t.Fatalf("list-peers -format=json: %+v", conf)
	}

	out = mustOK(t, "operator", "raft", "autopilot", "state")
	for _, want := range []string{"Healthy:", "Failure Tolerance:               0", "Leader:                          " + id, "Status:          leader"} {
		if !strings.Contains(out, want) {
			t.Fatalf("autopilot state lacks %q:\n%s", want, out)
		}
	}

	mustOK(t, "operator", "raft", "autopilot", "set-config", "-min-quorum=3", "-server-stabilization-time=5s")
	var cfg map[string]any
	if err := json.Unmarshal([]byte(mustOK(t, "operator", "raft", "autopilot", "get-config", "-format=json")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["min_quorum"] != float64(3) || cfg["server_stabilization_time"] != "5s" || cfg["cleanup_dead_servers"] != false {
		t.Fatalf("get-config after set-config: %v", cfg)
	}
	runCLI(t, "operator", "raft", "autopilot", "set-config").wantCode(t, 1, "at least one option")
	runCLI(t, "operator", "raft", "autopilot", "set-config", "-server-stabilization-time=soon").wantCode(t, 2, "Code: 400")
	if err := json.Unmarshal([]byte(mustOK(t, "operator", "raft", "autopilot", "get-config", "-format=json")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["server_stabilization_time"] != "5s" {
		t.Fatalf("a refused set-config changed the configuration: %v", cfg)
	}

	runCLI(t, "operator", "raft", "remove-peer").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "operator", "raft", "remove-peer", "nosuchnode").wantCode(t, 2, "Error removing the peer")
	runCLI(t, "operator", "raft", "join").wantCode(t, 1, "Not enough arguments")
	runCLI(t, "operator", "raft", "join", "-leader-ca-cert", filepath.Join(t.TempDir(), "missing.pem"), "https://127.0.0.1:1").wantCode(t, 2, "missing.pem")
	// This node already leads its own cluster: it cannot join another.
	runCLI(t, "operator", "raft", "join", "https://127.0.0.1:1").wantCode(t, 2, "Error joining the raft cluster")
	if out := mustOK(t, "operator", "raft", "list-peers"); !strings.Contains(out, id) {
		t.Fatalf("list-peers after refused changes:\n%s", out)
	}
}
