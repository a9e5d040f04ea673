package config

import (
	"fmt"
	"strconv"
	"time"
)

// Storage is the storage "raft" stanza.
type Storage struct {
	Type   string
	Path   string
	NodeID string
	// PerformanceMultiplier scales raft's timing as Vault does (heartbeat
	// and election timeouts of multiplier × 1s); 0 keeps Vigil's defaults.
	PerformanceMultiplier int
	// TrailingLogs, SnapshotThreshold and SnapshotInterval tune raft's log
	// compaction (0: defaults).
	TrailingLogs      uint64
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// MaxEntrySize is the largest raft entry in bytes (0: 1 MiB).
	MaxEntrySize int
	// RetryJoin are the retry_join blocks, in order: a node without raft
	// state tries them until it has joined a cluster.
	RetryJoin []RetryJoin
	// RetryJoinAsNonVoter is retry_join_as_non_voter.
	RetryJoinAsNonVoter bool
	// AutopilotUpdateInterval and AutopilotReconcileInterval pace the
	// leader's autopilot (0: 2s and 10s, Vault's defaults).
	AutopilotUpdateInterval    time.Duration
	AutopilotReconcileInterval time.Duration
	// Options holds every scalar key of the block as written (including
	// Vigil's raft_bind_addr).
	Options map[string]Value
}

// RetryJoin is one retry_join block of storage "raft".
type RetryJoin struct {
	LeaderAPIAddr        string
	AutoJoin             string
	AutoJoinScheme       string
	AutoJoinPort         int
	LeaderTLSServerName  string
	LeaderCACertFile     string
	LeaderClientCertFile string
	LeaderClientKeyFile  string
	LeaderCACert         string
	LeaderClientCert     string
	LeaderClientKey      string
	Line                 int
	File                 string
}

func (p *parser) storage(it item) error {
	bs, err := blocksOf(p.file, it, 1)
	if err != nil {
		return err
	}
	for _, b := range bs {
		pos := where(p.file, b.pos)
		if p.c.Storage != nil {
			return fmt.Errorf("config: %s: only one storage block is allowed", pos)
		}
		if b.labels[0] != "raft" {
			return fmt.Errorf("config: %s: unsupported storage type %q (only \"raft\" is supported: Vigil keeps its data in integrated raft storage)", pos, b.labels[0])
		}
		st, err := p.raft(b)
		if err != nil {
			return err
		}
		p.c.Storage = st
	}
	return nil
}

func (p *parser) raft(b block) (*Storage, error) {
	st := &Storage{Type: "raft", Options: map[string]Value{}}
	for _, it := range b.body {
		pos := where(p.file, it.pos)
		if it.name == "retry_join" {
			rjs, err := blocksOf(p.file, it, 0)
			if err != nil {
				return nil, err
			}
			for _, rb := range rjs {
				rj, err := p.retryJoin(rb)
				if err != nil {
					return nil, err
				}
				st.RetryJoin = append(st.RetryJoin, rj)
				if rj.AutoJoin != "" && rj.LeaderAPIAddr == "" {
					p.warn(where(p.file, rb.pos), "storage \"raft\": retry_join: auto_join (cloud auto-discovery) is not supported and the block is skipped; give leader_api_addr")
				}
			}
			continue
		}
		if why, ok := ignoredRaft[it.name]; ok {
			p.ignored(pos, "storage \"raft\"", it.name, why)
			continue
		}
		v, err := scalar(p.file, it)
		if err != nil {
			return nil, err
		}
		if _, dup := st.Options[it.name]; dup {
			return nil, fmt.Errorf("config: %s: storage \"raft\": %s is set twice", pos, it.name)
		}
		st.Options[it.name] = v
		uint64Of := func(dst *uint64) error {
			n, err := strconv.ParseUint(v.Value, 10, 64)
			if err != nil {
				return fmt.Errorf("config: %s: %s: expected a non-negative integer, got %q", pos, it.name, v.Value)
			}
			*dst = n
			return nil
		}
		switch it.name {
		case "path":
			st.Path = v.Value
		case "node_id":
			st.NodeID = v.Value
		case "raft_bind_addr":
		case "performance_multiplier":
			n, err := strconv.Atoi(v.Value)
			if err != nil || n < 0 || n > 10 {
				return nil, fmt.Errorf("config: %s: performance_multiplier must be an integer from 0 to 10", pos)
			}
			st.PerformanceMultiplier = n
		case "trailing_logs":
			err = uint64Of(&st.TrailingLogs)
		case "snapshot_threshold":
			err = uint64Of(&st.SnapshotThreshold)
		case "snapshot_interval":
			st.SnapshotInterval, err = ParseDuration(v.Value)
		case "max_entry_size":
			var n uint64
			if err = uint64Of(&n); err == nil {
				st.MaxEntrySize = int(n)
			}
		case "retry_join_as_non_voter":
			st.RetryJoinAsNonVoter, err = v.Bool()
		case "autopilot_update_interval":
			st.AutopilotUpdateInterval, err = ParseDuration(v.Value)
		case "autopilot_reconcile_interval":
			st.AutopilotReconcileInterval, err = ParseDuration(v.Value)
		default:
			return nil, fmt.Errorf("config: %s: unknown key %q in storage \"raft\" block", pos, it.name)
		}
		if err != nil {
			return nil, fmt.Errorf("config: %s: storage \"raft\": %w", pos, err)
		}
	}
	return st, nil
}

func (p *parser) retryJoin(b block) (RetryJoin, error) {
	rj := RetryJoin{Line: b.pos.Line, File: p.file}
	fields := map[string]*string{
		"leader_api_addr": &rj.LeaderAPIAddr, "auto_join": &rj.AutoJoin, "auto_join_scheme": &rj.AutoJoinScheme,
		"leader_tls_servername": &rj.LeaderTLSServerName, "leader_ca_cert_file": &rj.LeaderCACertFile,
		"leader_client_cert_file": &rj.LeaderClientCertFile, "leader_client_key_file": &rj.LeaderClientKeyFile,
		"leader_ca_cert": &rj.LeaderCACert, "leader_client_cert": &rj.LeaderClientCert, "leader_client_key": &rj.LeaderClientKey,
	}
	for _, it := range b.body {
		v, err := scalar(p.file, it)
		if err != nil {
			return rj, err
		}
		if it.name == "auto_join_port" {
			if rj.AutoJoinPort, err = strconv.Atoi(v.Value); err != nil || rj.AutoJoinPort < 0 || rj.AutoJoinPort > 65535 {
				return rj, fmt.Errorf("config: %s: retry_join: auto_join_port must be a port number", v.Where())
			}
			continue
		}
		dst, ok := fields[it.name]
		if !ok {
			return rj, fmt.Errorf("config: %s: unknown key %q in retry_join block", v.Where(), it.name)
		}
		*dst = v.Value
	}
	if rj.LeaderAPIAddr == "" && rj.AutoJoin == "" {
		return rj, fmt.Errorf("config: %s:%d: retry_join needs leader_api_addr or auto_join", p.file, rj.Line)
	}
	switch rj.AutoJoinScheme {
	case "", "http", "https":
	default:
		return rj, fmt.Errorf("config: %s:%d: retry_join: auto_join_scheme must be http or https", p.file, rj.Line)
	}
	return rj, nil
}
