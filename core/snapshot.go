package core

import "time"

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
