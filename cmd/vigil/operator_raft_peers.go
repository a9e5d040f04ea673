package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	register(&command{name: "operator raft join", synopsis: "Join this node to a raft cluster", run: runRaftJoin})
	register(&command{name: "operator raft list-peers", synopsis: "List the members of the raft cluster", run: runRaftListPeers})
	register(&command{name: "operator raft remove-peer", synopsis: "Remove a node from the raft cluster", run: runRaftRemovePeer})
	registerGroup("operator raft autopilot", "Show and configure autopilot")
	register(&command{name: "operator raft autopilot state", synopsis: "Show the health of every node as autopilot sees it", run: runAutopilotState})
	register(&command{name: "operator raft autopilot get-config", synopsis: "Show the autopilot configuration", run: runAutopilotGetConfig})
	register(&command{name: "operator raft autopilot set-config", synopsis: "Change the autopilot configuration", run: runAutopilotSetConfig})
}

// runRaftJoin is `vigil operator raft join [options] LEADER_API_ADDR`, sent
// to the node that joins (VIGIL_ADDR), as Vault's command.
func runRaftJoin(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft join", &cf)
	setUsage(fs, "operator raft join [options] LEADER_API_ADDR", `
Joins the node at VIGIL_ADDR to the raft cluster led by the node at
LEADER_API_ADDR. The joining node proves that it may join with the
cluster's unseal keys: with Shamir keys, unseal it afterwards (vigil
operator unseal, as many times as the threshold) and the join completes;
with auto-unseal it completes at once.

    $ VIGIL_ADDR=https://node2:8200 vigil operator raft join https://node1:8200`)
	caCert := fs.String("leader-ca-cert", "", "CA certificate (PEM file) to verify the leader's API certificate")
	clientCert := fs.String("leader-client-cert", "", "client certificate (PEM file) for the leader's API")
	clientKey := fs.String("leader-client-key", "", "client key (PEM file) for the leader's API")
	nonVoter := fs.Bool("non-voter", false, "join as a non-voter (never promoted)")
	retry := fs.Bool("retry", false, "keep retrying the join until it succeeds")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	req := &vaultapi.RaftJoinRequest{LeaderAPIAddr: strings.TrimSpace(pos[0]), NonVoter: *nonVoter, Retry: *retry}
	for _, f := range []struct {
		path string
		dst  *string
	}{{*caCert, &req.LeaderCACert}, {*clientCert, &req.LeaderClientCert}, {*clientKey, &req.LeaderClientKey}} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fail("%v", err)
		}
		*f.dst = string(b)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	resp, err := client.Sys().RaftJoin(req)
	if err != nil {
		return apiError("joining the raft cluster", err)
	}
	return cf.output(map[string]any{"Joined": resp.Joined})
}

// runRaftListPeers is `vigil operator raft list-peers`.
func runRaftListPeers(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft list-peers", &cf)
	setUsage(fs, "operator raft list-peers [options]", `
Lists the members of the raft cluster: node id, cluster address, state
(leader, follower) and whether it votes.

    $ vigil operator raft list-peers`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := client.Logical().Read("sys/storage/raft/configuration")
	if err != nil {
		return apiError("reading the raft configuration", err)
	}
	if s == nil || s.Data == nil {
		return fail("no raft configuration returned")
	}
	if !cf.isTable() {
		return cf.output(s.Data)
	}
	conf, _ := s.Data["config"].(map[string]any)
	servers, _ := conf["servers"].([]any)
	tw := tabwriter.NewWriter(stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "Node\tAddress\tState\tVoter")
	fmt.Fprintln(tw, "----\t-------\t-----\t-----")
	for _, x := range servers {
		m, _ := x.(map[string]any)
		state := "follower"
		if l, _ := m["leader"].(bool); l {
			state = "leader"
		}
		fmt.Fprintf(tw, "%v\t%v\t%s\t%v\n", m["node_id"], m["address"], state, m["voter"])
	}
	_ = tw.Flush()
	return 0
}

// runRaftRemovePeer is `vigil operator raft remove-peer NODE_ID`.
func runRaftRemovePeer(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft remove-peer", &cf)
	setUsage(fs, "operator raft remove-peer [options] NODE_ID", `
Removes a node from the raft cluster and revokes its cluster certificate:
it cannot take part again, nor rejoin, until it is joined anew.

    $ vigil operator raft remove-peer node3`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 1, 1); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	id := strings.TrimSpace(pos[0])
	if _, err := client.Logical().Write("sys/storage/raft/remove-peer", map[string]any{"server_id": id}); err != nil {
		return apiError("removing the peer", err)
	}
	return cf.success("Peer removed successfully!")
}

// runAutopilotState is `vigil operator raft autopilot state`.
func runAutopilotState(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft autopilot state", &cf)
	setUsage(fs, "operator raft autopilot state [options]", `
Shows the cluster's health as the leader's autopilot sees it: whether it is
healthy, how many failures it tolerates, and per node its status, last
contact, last index and since when it is stable.

    $ vigil operator raft autopilot state`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if !cf.isTable() {
		s, err := client.Logical().Read("sys/storage/raft/autopilot/state")
		if err != nil {
			return apiError("reading the autopilot state", err)
		}
		if s == nil {
			return fail("no autopilot state returned")
		}
		return cf.output(s.Data)
	}
	st, err := client.Sys().RaftAutopilotState()
	if err != nil {
		return apiError("reading the autopilot state", err)
	}
	if st == nil {
		return fail("no autopilot state returned")
	}
	fmt.Fprintf(stdout, "Healthy:                         %t\n", st.Healthy)
	fmt.Fprintf(stdout, "Failure Tolerance:               %d\n", st.FailureTolerance)
	fmt.Fprintf(stdout, "Leader:                          %s\n", st.Leader)
	fmt.Fprintf(stdout, "Voters:\n")
	for _, v := range st.Voters {
		fmt.Fprintf(stdout, "   %s\n", v)
	}
	if len(st.NonVoters) > 0 {
		fmt.Fprintf(stdout, "Non Voters:\n")
		for _, v := range st.NonVoters {
			fmt.Fprintf(stdout, "   %s\n", v)
		}
	}
	ids := make([]string, 0, len(st.Servers))
	for id := range st.Servers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintf(stdout, "Servers:\n")
	for _, id := range ids {
		s := st.Servers[id]
		fmt.Fprintf(stdout, "   %s\n", s.ID)
		fmt.Fprintf(stdout, "      Name:            %s\n", s.Name)
		fmt.Fprintf(stdout, "      Address:         %s\n", s.Address)
		fmt.Fprintf(stdout, "      Status:          %s\n", s.Status)
		fmt.Fprintf(stdout, "      Node Status:     %s\n", s.NodeStatus)
		fmt.Fprintf(stdout, "      Healthy:         %t\n", s.Healthy)
		fmt.Fprintf(stdout, "      Last Contact:    %s\n", s.LastContact)
		fmt.Fprintf(stdout, "      Last Term:       %d\n", s.LastTerm)
		fmt.Fprintf(stdout, "      Last Index:      %d\n", s.LastIndex)
		fmt.Fprintf(stdout, "      Stable Since:    %s\n", s.StableSince)
	}
	return 0
}

// runAutopilotGetConfig is `vigil operator raft autopilot get-config`.
func runAutopilotGetConfig(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft autopilot get-config", &cf)
	setUsage(fs, "operator raft autopilot get-config [options]", `
Shows the autopilot configuration.

    $ vigil operator raft autopilot get-config`)
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	s, err := client.Logical().Read("sys/storage/raft/autopilot/configuration")
	if err != nil {
		return apiError("reading the autopilot configuration", err)
	}
	if s == nil {
		return fail("no autopilot configuration returned")
	}
	return cf.output(s.Data)
}

// runAutopilotSetConfig is `vigil operator raft autopilot set-config`.
func runAutopilotSetConfig(args []string) int {
	var cf clientFlags
	fs := newFlags("operator raft autopilot set-config", &cf)
	setUsage(fs, "operator raft autopilot set-config [options]", `
Changes the autopilot configuration; options not given keep their value.

    $ vigil operator raft autopilot set-config -cleanup-dead-servers=true -dead-server-last-contact-threshold=10m -min-quorum=3`)
	cleanup := fs.String("cleanup-dead-servers", "", "remove servers that stopped answering (true or false)")
	dead := fs.String("dead-server-last-contact-threshold", "", "how long a server may stay silent before it is removed")
	lastContact := fs.String("last-contact-threshold", "", "a server silent for longer is unhealthy")
	trailing := fs.String("max-trailing-logs", "", "a server further behind is unhealthy")
	minQuorum := fs.String("min-quorum", "", "the fewest voters dead-server cleanup leaves")
	stab := fs.String("server-stabilization-time", "", "how long a new server stays healthy before it votes")
	pos, code, ok := parseCmd(fs, args)
	if !ok {
		return code
	}
	if c := wantArgs(pos, 0, 0); c != 0 {
		return c
	}
	data := map[string]any{}
	for k, v := range map[string]string{"cleanup_dead_servers": *cleanup, "dead_server_last_contact_threshold": *dead,
		"last_contact_threshold": *lastContact, "max_trailing_logs": *trailing, "min_quorum": *minQuorum,
		"server_stabilization_time": *stab} {
		if v != "" {
			data[k] = v
		}
	}
	if len(data) == 0 {
		return usageError("give at least one option to change")
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	if _, err := client.Logical().Write("sys/storage/raft/autopilot/configuration", data); err != nil {
		return apiError("changing the autopilot configuration", err)
	}
	return cf.success("Configuration updated")
}
