package autosnapshot

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// statusRoute is GET sys/storage/raft/snapshot-auto/status/:name (sudo):
// Vault's fields (consecutive_errors, last_snapshot_start/end/error/url,
// next_snapshot_start) plus the last successful snapshot and the last
// restore drill.
func (r routes) statusRoute() framework.Route {
	return framework.Route{Pattern: `storage/raft/snapshot-auto/status/` + namePattern, Fields: nameField, Sudo: true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.readStatus},
		Help:       "The state of an automated snapshot schedule."}
}

func (r routes) readStatus(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, err := r.s.config(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.ErrNotFound
	}
	st, err := r.s.status(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: statusData(c, st)}, nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func statusData(c *Config, st *core.SnapshotAutoStatus) map[string]any {
	d := map[string]any{
		"consecutive_errors":  st.ConsecErrors,
		"last_snapshot_start": rfc3339(st.LastStart),
		"last_snapshot_end":   rfc3339(st.LastEnd),
		"last_snapshot_error": st.LastError,
		"last_snapshot_url":   st.LastURL,
		"next_snapshot_start": rfc3339(nextSnapshot(c, st)),
		"last_success":        rfc3339(st.LastSuccess),
		"last_drill":          rfc3339(st.LastDrill),
		"last_drill_passed":   st.LastDrillPass,
	}
	if c.DrillInterval > 0 {
		d["next_drill"] = rfc3339(nextDrill(c, st))
	}
	return d
}

// nextSnapshot is when the schedule is next due: an interval after the
// last attempt, or now (zero time) when there has been none.
func nextSnapshot(c *Config, st *core.SnapshotAutoStatus) time.Time {
	if st.LastStart.IsZero() {
		return st.Configured
	}
	return st.LastStart.Add(c.Interval)
}

// nextDrill is when a scheduled drill is next due (zero: none scheduled).
func nextDrill(c *Config, st *core.SnapshotAutoStatus) time.Time {
	if c.DrillInterval <= 0 {
		return time.Time{}
	}
	if st.LastDrill.IsZero() {
		return st.LastSuccess // the first drill follows the first snapshot
	}
	return st.LastDrill.Add(c.DrillInterval)
}
