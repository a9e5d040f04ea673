package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	vaultapi "github.com/hashicorp/vault/api"
)

func init() {
	register(&command{name: "status", synopsis: "Print seal and HA status", run: runStatus})
}

// sealStatusOutput is `vigil status -format=json`: the seal status merged
// with the leader (HA) facts, in Vault's field names.
type sealStatusOutput struct {
	vaultapi.SealStatusResponse
	HAEnabled            bool   `json:"ha_enabled"`
	IsSelf               bool   `json:"is_self,omitempty"`
	ActiveTime           string `json:"active_time,omitempty"`
	LeaderAddress        string `json:"leader_address,omitempty"`
	LeaderClusterAddress string `json:"leader_cluster_address,omitempty"`
	RaftCommittedIndex   uint64 `json:"raft_committed_index,omitempty"`
	RaftAppliedIndex     uint64 `json:"raft_applied_index,omitempty"`
}

// leaderInfo is sys/leader; read raw because active_time may be empty.
type leaderInfo struct {
	HAEnabled            bool   `json:"ha_enabled"`
	IsSelf               bool   `json:"is_self"`
	ActiveTime           string `json:"active_time"`
	LeaderAddress        string `json:"leader_address"`
	LeaderClusterAddress string `json:"leader_cluster_address"`
	RaftCommittedIndex   uint64 `json:"raft_committed_index"`
	RaftAppliedIndex     uint64 `json:"raft_applied_index"`
}

func readLeader(c *vaultapi.Client) (*leaderInfo, error) {
	resp, err := c.Logical().ReadRaw("sys/leader")
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	var li leaderInfo
	if err := json.NewDecoder(resp.Body).Decode(&li); err != nil {
		return nil, fmt.Errorf("decode sys/leader: %w", err)
	}
	return &li, nil
}

// runStatus is `vigil status`. Exit codes follow Vault: 0 unsealed, 1 error,
// 2 sealed.
func runStatus(args []string) int {
	var cf clientFlags
	fs := newFlags("status", &cf)
	setUsage(fs, "status [options]", `
Prints the current state of the server: whether it is initialised and
sealed, the unseal progress and threshold, and its HA (raft) status.

The exit code reflects the seal status: 0 unsealed, 1 error, 2 sealed.`)
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	client, err := cf.client()
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	st, err := client.Sys().SealStatus()
	if err != nil {
		apiError("checking seal status", err)
		return 1
	}
	code = printSealStatus(&cf, client, st)
	if code == 0 && st.Sealed {
		return 2
	}
	return code
}

// printSealStatus prints a seal status (with leader facts) as Vault's
// `status` and `operator unseal` do.
func printSealStatus(cf *clientFlags, client *vaultapi.Client, st *vaultapi.SealStatusResponse) int {
	out := sealStatusOutput{SealStatusResponse: *st}
	if li, err := readLeader(client); err == nil {
		out.HAEnabled, out.IsSelf, out.ActiveTime = li.HAEnabled, li.IsSelf, li.ActiveTime
		out.LeaderAddress, out.LeaderClusterAddress = li.LeaderAddress, li.LeaderClusterAddress
		out.RaftCommittedIndex, out.RaftAppliedIndex = li.RaftCommittedIndex, li.RaftAppliedIndex
	}
	if cf.field != "" {
		var m map[string]any
		b, _ := json.Marshal(out)
		_ = json.Unmarshal(b, &m)
		return cf.printField(cf.field, m[cf.field])
	}
	if !cf.isTable() {
		return printJSON(out)
	}
	rows := []kvRow{{"Seal Type", st.Type}}
	if st.RecoverySeal {
		rows = append(rows, kvRow{"Recovery Seal Type", fmtValue(st.RecoverySealType)})
	}
	rows = append(rows,
		kvRow{"Initialized", strconv.FormatBool(st.Initialized)},
		kvRow{"Sealed", strconv.FormatBool(st.Sealed)})
	if st.RecoverySeal {
		rows = append(rows, kvRow{"Total Recovery Shares", strconv.Itoa(st.N)})
	} else {
		rows = append(rows, kvRow{"Total Shares", strconv.Itoa(st.N)})
	}
	rows = append(rows, kvRow{"Threshold", strconv.Itoa(st.T)})
	if st.Migration {
		rows = append(rows, kvRow{"Seal Migration in Progress", "true"})
	}
	for _, w := range st.Warnings {
		rows = append(rows, kvRow{"Seal Error", w})
	}
	if st.Sealed {
		rows = append(rows,
			kvRow{"Unseal Progress", fmt.Sprintf("%d/%d", st.Progress, st.T)},
			kvRow{"Unseal Nonce", fmtValue(st.Nonce)})
	}
	rows = append(rows,
		kvRow{"Version", fmtValue(st.Version)},
		kvRow{"Build Date", fmtValue(st.BuildDate)},
		kvRow{"Storage Type", fmtValue(st.StorageType)})
	if st.ClusterName != "" && st.ClusterID != "" {
		rows = append(rows, kvRow{"Cluster Name", st.ClusterName}, kvRow{"Cluster ID", st.ClusterID})
	}
	rows = append(rows, kvRow{"HA Enabled", strconv.FormatBool(out.HAEnabled)})
	if out.HAEnabled && !st.Sealed {
		mode := "standby"
		if out.IsSelf {
			mode = "active"
		}
		rows = append(rows, kvRow{"HA Cluster", fmtValue(out.LeaderClusterAddress)}, kvRow{"HA Mode", mode})
		if out.IsSelf && out.ActiveTime != "" {
			rows = append(rows, kvRow{"Active Since", out.ActiveTime})
		}
		if !out.IsSelf {
			addr := out.LeaderAddress
			if addr == "" {
				addr = "<none>"
			}
			rows = append(rows, kvRow{"Active Node Address", addr})
		}
	}
	if out.RaftCommittedIndex > 0 {
		rows = append(rows, kvRow{"Raft Committed Index", strconv.FormatUint(out.RaftCommittedIndex, 10)})
	}
	if out.RaftAppliedIndex > 0 {
		rows = append(rows, kvRow{"Raft Applied Index", strconv.FormatUint(out.RaftAppliedIndex, 10)})
	}
	writeKVTable(stdout, rows)
	return 0
}
