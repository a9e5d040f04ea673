package ship

import "time"

// Stream states.
const (
	StateStarting = "starting"
	StateShipping = "shipping" // the last write succeeded (lag 0 means caught up)
	StateRetrying = "retrying" // the sink refuses or is unreachable; lag grows
	StateWaiting  = "waiting"  // the audit device or the cursor store is not available
	StateStalled  = "stalled"  // the local log does not continue the shipped chain
	StateStopped  = "stopped"  // sealed or shut down
)

// CursorStatus is the acknowledged position.
type CursorStatus struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash,omitempty"`
	Time time.Time `json:"time,omitzero"` // the line's own time
}

// Status is one stream's state, as sys/audit-stream reports it.
type Status struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	NodeID string `json:"node_id"`
	Device string `json:"device,omitempty"`
	Path   string `json:"path,omitempty"`
	Target string `json:"target,omitempty"`
	State  string `json:"state"`
	// Up is true when the last write to the sink succeeded.
	Up bool `json:"up"`

	Cursor      CursorStatus `json:"cursor"`
	SavedSeq    uint64       `json:"saved_seq"` // cursor as stored in Raft
	SavedAt     time.Time    `json:"saved_at,omitzero"`
	CursorError string       `json:"cursor_error,omitempty"`
	HeadSeq     uint64       `json:"head_seq"`
	LastReadSeq uint64       `json:"last_read_seq"`
	LagEntries  uint64       `json:"lag_entries"`
	// LagSeconds is how old the oldest line not yet acknowledged is.
	LagSeconds float64 `json:"lag_seconds"`

	Shipped          uint64    `json:"shipped"` // lines acknowledged since start
	Batches          uint64    `json:"batches"`
	Errors           uint64    `json:"errors"`
	LastShipped      time.Time `json:"last_shipped,omitzero"`
	LastWriteSeconds float64   `json:"last_write_seconds"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorTime    time.Time `json:"last_error_time,omitzero"`
	Gaps             uint64    `json:"gaps,omitempty"`
	LastGap          string    `json:"last_gap,omitempty"`

	// HeldSegments and HeldBytes are the rotated segments retention may
	// not delete because this stream has not passed them.
	HeldSegments int   `json:"held_segments"`
	HeldBytes    int64 `json:"held_bytes"`
	// HoldingDisk names the device whose disk is at critical pressure
	// while this stream holds a segment retention would delete.
	HoldingDisk string `json:"holding_disk,omitempty"`

	Sink map[string]any `json:"sink,omitempty"`
}
