package ship

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core/storage"
)

// Cursor is a stream's durable position: the last line of node NodeID's
// chain that the sink acknowledged. Device, Path and Target say what the
// cursor is a position in and for: when the stream is pointed at another
// device or destination, the old cursor no longer applies and shipping
// starts again from the oldest segment.
type Cursor struct {
	NodeID string    `json:"node_id"`
	Seq    uint64    `json:"seq"`
	Hash   string    `json:"hash"`
	Time   time.Time `json:"time,omitempty"` // the line's own time
	Device string    `json:"device"`
	Path   string    `json:"path"`
	Target string    `json:"target"`
	// Saved is when the cursor was written.
	Saved time.Time `json:"saved"`
}

// CursorStore keeps cursors. Implementations are safe for concurrent use.
type CursorStore interface {
	// LoadCursor returns the stream's cursor for node, or nil when none
	// was saved.
	LoadCursor(ctx context.Context, stream, node string) (*Cursor, error)
	// SaveCursor durably stores c as the stream's cursor for c.NodeID.
	SaveCursor(ctx context.Context, stream string, c Cursor) error
}

// CursorPrefix is where StorageCursors keeps cursors:
// sys/audit-stream/cursors/<stream>/<node id>.
const CursorPrefix = "sys/audit-stream/cursors/"

// StorageCursors keeps cursors in a storage.Storage — the server's barrier,
// so cursors are encrypted and replicated by Raft like the rest of Vigil's
// state. Each node writes only its own keys.
type StorageCursors struct {
	S storage.Storage
}

var _ CursorStore = StorageCursors{}

// LoadCursor implements CursorStore.
func (c StorageCursors) LoadCursor(ctx context.Context, stream, node string) (*Cursor, error) {
	var cur Cursor
	ok, err := storage.GetJSON(ctx, c.S, CursorPrefix+stream+"/"+node, &cur)
	if err != nil {
		return nil, fmt.Errorf("audit stream %s: load cursor: %w", stream, err)
	}
	if !ok {
		return nil, nil
	}
	return &cur, nil
}

// SaveCursor implements CursorStore.
func (c StorageCursors) SaveCursor(ctx context.Context, stream string, cur Cursor) error {
	if err := storage.PutJSON(ctx, c.S, CursorPrefix+stream+"/"+cur.NodeID, cur); err != nil {
		return fmt.Errorf("audit stream %s: save cursor: %w", stream, err)
	}
	return nil
}
