package chain

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Segment header reasons.
const (
	ReasonStart  = "start"  // first segment of a new chain, or a new segment started by Open
	ReasonRotate = "rotate" // size, age or an explicit Rotate
	ReasonReopen = "reopen" // the active file was deleted, moved or replaced
	// ReasonRelink starts a new chain after an operator acknowledged that
	// the previous one no longer matches its trusted checkpoint (Relink).
	ReasonRelink = "relink"
)

// Event kinds written as vigil.event records.
const (
	EventStarted           = "started"             // Open succeeded
	EventTornTail          = "torn_tail_truncated" // Open removed a torn tail
	EventActiveFileMissing = "active_file_missing" // the active file vanished or was replaced
	EventReopened          = "reopened"            // Reopen on an intact file
	EventClosed            = "closed"              // Close
	EventForeignFileMoved  = "foreign_file_moved"  // a non-empty file at Path was moved aside
	// EventSegmentsDeleted records rotated segments about to be deleted by
	// retention (RecordDeletion); a verifier accepts a log whose first
	// segments are missing only when such a record names them.
	EventSegmentsDeleted = "segments_deleted"
)

// SegmentHeader is the payload of the vigil.segment record that opens every
// segment file. PrevSegmentLastSeq and PrevSegmentLastHash repeat the
// header's own seq-1 and prev_hash (0 and ZeroHash for the genesis segment
// and for a relinked chain's first segment), so a verifier holding only this
// file knows exactly what must precede it. The other members describe the
// lines that follow, so that a verifier needs nothing but the files:
// where the chain starts, the Merkle tree so far, the checkpoint key and
// the checkpoint cadence the writer keeps.
type SegmentHeader struct {
	Index               uint64    `json:"index"`
	PrevSegmentLastSeq  uint64    `json:"prev_segment_last_seq"`
	PrevSegmentLastHash string    `json:"prev_segment_last_hash"`
	Created             time.Time `json:"created"`
	Reason              string    `json:"reason"`
	// ChainStart is the seq of the chain's first line: 1, or the first
	// seq of a relinked chain.
	ChainStart uint64 `json:"chain_start"`
	// Tree is the Merkle tree of the chain's lines before this header.
	Tree TreeState `json:"tree"`
	// KeyID and PublicKey (standard base64 of the 32-byte Ed25519 key)
	// name the key that signs the checkpoints in this segment; both empty
	// when the writer has no signer.
	KeyID     string `json:"key_id"`
	PublicKey string `json:"public_key"`
	// CheckpointEvery and CheckpointIntervalMS are the writer's cadence
	// (Config.CheckpointEvery, Config.CheckpointInterval in milliseconds;
	// -1 when disabled). A strict verifier holds the lines to them.
	CheckpointEvery      int   `json:"checkpoint_every"`
	CheckpointIntervalMS int64 `json:"checkpoint_interval_ms"`
	// Link is set on the first header of a relinked chain (reason relink).
	Link *Link `json:"link,omitempty"`
}

// TreeState is a Merkle tree as a segment header carries it: its size and
// its frontier (merkle.Frontier), hex.
type TreeState struct {
	Size     uint64   `json:"size"`
	Frontier []string `json:"frontier"`
}

// Link ties a relinked chain to the chain it replaces: the last checkpoint
// of the old chain that was trusted, what the start-up check found, where
// the old files were moved, and the operator's acknowledgement.
type Link struct {
	Previous  SignedCheckpoint `json:"previous"`
	Failure   string           `json:"failure"`
	MovedTo   string           `json:"moved_to"`
	Reason    string           `json:"reason"`
	RequestID string           `json:"request_id,omitempty"`
	Actor     string           `json:"actor,omitempty"`
}

// SignedCheckpoint is a checkpoint in JSON, as links, proof bundles and
// the API carry it (signature in standard base64).
type SignedCheckpoint struct {
	NodeID    string    `json:"node_id"`
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"`
	TreeSize  uint64    `json:"tree_size"`
	Root      string    `json:"root"`
	Time      time.Time `json:"time"`
	Signature string    `json:"signature"`
	KeyID     string    `json:"key_id"`
}

// Event is the payload of a vigil.event record.
type Event struct {
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
	Time   time.Time `json:"time"`
	// Deleted lists the segments a segments_deleted event records.
	Deleted []DeletedSegment `json:"deleted,omitempty"`
}

// DeletedSegment describes a rotated segment deleted by retention: its
// header index, its first and last line, and its file name.
type DeletedSegment struct {
	Index    uint64 `json:"index"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
	Name     string `json:"name"`
}

func segmentBody(h SegmentHeader) []byte {
	h.Created = h.Created.UTC()
	if h.Tree.Frontier == nil {
		h.Tree.Frontier = []string{}
	}
	b, err := json.Marshal(struct {
		Type    string        `json:"type"`
		Segment SegmentHeader `json:"segment"`
	}{TypeSegment, h})
	if err != nil {
		panic(err) // only strings, integers and times: cannot fail
	}
	return b
}

func eventBody(e Event) []byte {
	e.Time = e.Time.UTC()
	b, err := json.Marshal(struct {
		Type  string `json:"type"`
		Event Event  `json:"event"`
	}{TypeEvent, e})
	if err != nil {
		panic(err)
	}
	return b
}

func parseEventBody(body []byte) (Event, error) {
	var v struct {
		Event *Event `json:"event"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return Event{}, fmt.Errorf("event: %v", err)
	}
	if v.Event == nil {
		return Event{}, fmt.Errorf("event: missing \"event\" member")
	}
	return *v.Event, nil
}

func parseSegmentBody(body []byte) (SegmentHeader, error) {
	var v struct {
		Segment *SegmentHeader `json:"segment"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return SegmentHeader{}, fmt.Errorf("segment header: %v", err)
	}
	if v.Segment == nil {
		return SegmentHeader{}, fmt.Errorf("segment header: missing \"segment\" member")
	}
	return *v.Segment, nil
}

// recordType returns the record type of a line that starts with
// recordPrefix ("vigil.segment", ...), or "" for a caller entry.
func recordType(line []byte) string {
	if len(line) < len(recordPrefix) || string(line[:len(recordPrefix)]) != string(recordPrefix) {
		return ""
	}
	for i := len(recordPrefix); i < len(line) && i < 64; i++ {
		if line[i] == '"' {
			return string(line[len(`{"type":"`):i])
		}
	}
	return ""
}

// JSON returns c as a SignedCheckpoint.
func (c Checkpoint) JSON() SignedCheckpoint {
	return SignedCheckpoint{NodeID: c.NodeID, Seq: c.Seq, Hash: c.Hash, TreeSize: c.TreeSize, Root: c.Root,
		Time: c.Time.UTC(), Signature: base64.StdEncoding.EncodeToString(c.Signature), KeyID: c.KeyID}
}

// Checkpoint converts back; it fails on a malformed signature.
func (s SignedCheckpoint) Checkpoint() (Checkpoint, error) {
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	return Checkpoint{NodeID: s.NodeID, Seq: s.Seq, Hash: s.Hash, TreeSize: s.TreeSize, Root: s.Root, Time: s.Time,
		Signature: sig, KeyID: s.KeyID}, nil
}
