package core

import (
	"encoding/json"
	"time"
)

// Barrier keys of the snapshot records the compliance checks read ("no
// snapshot taken in 24 h", "no snapshot restore test recorded").
const (
	SnapshotSaveKey = "sys/compliance/snapshot/last-save"
	SnapshotTestKey = "sys/compliance/snapshot/last-test"
)

// SnapshotSaveRecord is written to SnapshotSaveKey each time a snapshot is
// taken through sys/storage/raft/snapshot.
type SnapshotSaveRecord struct {
	Time  time.Time `json:"time"`
	Bytes int       `json:"bytes"`
}

// SnapshotTestRecord is the outcome of the last restore test
// (sys/storage/raft/snapshot-test), kept at SnapshotTestKey.
type SnapshotTestRecord struct {
	Time          time.Time `json:"time"`
	OK            bool      `json:"ok"`
	SnapshotBytes int       `json:"snapshot_bytes"`
	// LiveKeys is the number of storage keys on this node when the
	// snapshot was taken; RestoredKeys the number in the scratch store.
	LiveKeys     int    `json:"live_keys"`
	RestoredKeys int    `json:"restored_keys"`
	Keyring      bool   `json:"keyring_present"`
	SealConfig   bool   `json:"seal_config_present"`
	DurationMS   int64  `json:"duration_ms"`
	Error        string `json:"error,omitempty"`
}

// Barrier keys of automated snapshots (sys/storage/raft/snapshot-auto):
//
//	SnapshotAutoPrefix + "config/"  + name            the schedule
//	SnapshotAutoPrefix + "status/"  + name            SnapshotAutoStatus
//	SnapshotAutoPrefix + "objects/" + name + "/" + object   SnapshotObjectRecord
//	SnapshotAutoPrefix + "drills/"  + name + "/" + time     SnapshotDrillRecord
//
// Records are replicated with the rest of the barrier, so a new active node
// continues the schedule and the compliance checks read the same history on
// every node.
const SnapshotAutoPrefix = "sys/snapshot-auto/"

// SnapshotCounts are what a restore drill compares between a snapshot and
// the live state at the snapshot's index.
type SnapshotCounts struct {
	// Keys is the number of storage keys.
	Keys int `json:"keys"`
	// Mounts counts secret engine and auth method mounts (the built-in
	// sys/, auth/token/ and identity/ are not stored and not counted).
	Mounts int `json:"mounts"`
	// Secrets counts KV secrets (v2 metadata entries and v1 entries).
	Secrets int `json:"secrets"`
	// Policies counts stored ACL and Rego policies.
	Policies int `json:"policies"`
	// Leases counts outstanding leases.
	Leases int `json:"leases"`
}

// SnapshotAutoStatus is the state of one schedule.
type SnapshotAutoStatus struct {
	Name          string    `json:"name"`
	StorageType   string    `json:"storage_type"`
	IntervalSecs  int64     `json:"interval_seconds"`
	Retain        int       `json:"retain"`
	Configured    time.Time `json:"configured"`
	LastStart     time.Time `json:"last_snapshot_start,omitzero"`
	LastEnd       time.Time `json:"last_snapshot_end,omitzero"`
	LastError     string    `json:"last_snapshot_error,omitempty"`
	LastURL       string    `json:"last_snapshot_url,omitempty"`
	LastObject    string    `json:"last_snapshot_object,omitempty"`
	LastSuccess   time.Time `json:"last_success,omitzero"`
	ConsecErrors  int       `json:"consecutive_errors"`
	DrillSecs     int64     `json:"drill_interval_seconds,omitempty"`
	LastDrill     time.Time `json:"last_drill,omitzero"`
	LastDrillPass bool      `json:"last_drill_passed"`
}

// SnapshotObjectRecord is written when a snapshot object is stored, and
// removed with the object when retention deletes it.
type SnapshotObjectRecord struct {
	Object string         `json:"object"`
	URL    string         `json:"url"`
	Time   time.Time      `json:"time"`
	NodeID string         `json:"node_id"`
	Index  uint64         `json:"index"`
	Term   uint64         `json:"term"`
	Bytes  int64          `json:"bytes"`
	SHA256 string         `json:"sha256"`
	Counts SnapshotCounts `json:"counts"`
	// AuditCheckpoints is how many audit chain checkpoints (one per node
	// and device) the snapshot carries in its meta.json.
	AuditCheckpoints int `json:"audit_checkpoints"`
}

// SnapshotDrillRecord is the outcome of one restore drill.
type SnapshotDrillRecord struct {
	Time     time.Time `json:"time"`
	Schedule string    `json:"schedule"`
	// Trigger is "request" or "schedule".
	Trigger      string    `json:"trigger"`
	Passed       bool      `json:"passed"`
	Error        string    `json:"error,omitempty"`
	Object       string    `json:"object,omitempty"`
	URL          string    `json:"url,omitempty"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	Index        uint64    `json:"index,omitempty"`
	// AgeSecs is the snapshot's age when the drill ran.
	AgeSecs   int64  `json:"age_seconds"`
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256,omitempty"`
	KeySource string `json:"key_source,omitempty"`
	// Values is how many stored values were decrypted with the cluster's
	// keys in the scratch store.
	Values           int            `json:"values_decrypted"`
	AuditCheckpoints int            `json:"audit_checkpoints"`
	Expected         SnapshotCounts `json:"expected"`
	Restored         SnapshotCounts `json:"restored"`
	// Durations of the steps, in milliseconds.
	DownloadMS int64 `json:"download_ms"`
	VerifyMS   int64 `json:"verify_ms"`
	RestoreMS  int64 `json:"restore_ms"`
	UnsealMS   int64 `json:"unseal_ms"`
	CountMS    int64 `json:"count_ms"`
	TotalMS    int64 `json:"total_ms"`
}

// SnapshotArchiveInfo describes a snapshot archive: what its meta.json
// says, verified against the state it holds.
type SnapshotArchiveInfo struct {
	NodeID      string    `json:"node_id"`
	Index       uint64    `json:"index"`
	Term        uint64    `json:"term"`
	Created     time.Time `json:"created"`
	StateSize   int64     `json:"state_size"`
	StateSHA256 string    `json:"state_sha256"`
	// Attachments is what the taker attached (JSON), compacted.
	Attachments json.RawMessage `json:"attachments,omitempty"`
}
