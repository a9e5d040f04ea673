package chain

import (
	"encoding/json"
	"fmt"
	"time"
)

// Segment header reasons.
const (
	ReasonStart  = "start"  // first segment of a new chain, or a new segment started by Open
	ReasonRotate = "rotate" // size, age or an explicit Rotate
	ReasonReopen = "reopen" // the active file was deleted, moved or replaced
)

// Event kinds written as vigil.event records.
const (
	EventStarted           = "started"             // Open succeeded
	EventTornTail          = "torn_tail_truncated" // Open removed a torn tail
	EventActiveFileMissing = "active_file_missing" // the active file vanished or was replaced
	EventReopened          = "reopened"            // Reopen on an intact file
	EventClosed            = "closed"              // Close
	EventForeignFileMoved  = "foreign_file_moved"  // a non-empty file at Path was moved aside
)

// SegmentHeader is the payload of the vigil.segment record that opens every
// segment file. PrevSegmentLastSeq and PrevSegmentLastHash repeat the
// header's own seq-1 and prev_hash (0 and ZeroHash for the genesis segment),
// so a verifier holding only this file knows exactly what must precede it.
type SegmentHeader struct {
	Index               uint64    `json:"index"`
	PrevSegmentLastSeq  uint64    `json:"prev_segment_last_seq"`
	PrevSegmentLastHash string    `json:"prev_segment_last_hash"`
	Created             time.Time `json:"created"`
	Reason              string    `json:"reason"`
}

// Event is the payload of a vigil.event record.
type Event struct {
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
	Time   time.Time `json:"time"`
}

func segmentBody(h SegmentHeader) []byte {
	h.Created = h.Created.UTC()
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
