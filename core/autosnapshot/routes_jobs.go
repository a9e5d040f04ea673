package autosnapshot

import (
	"context"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// JobName is the internal principal of the scheduled snapshot and drill
// requests in the audit trail.
const JobName = "raft-snapshot-auto"

// Mount-relative paths of the scheduled job's internal routes.
const (
	scanPath     = "storage/raft/snapshot-auto/scan"
	runPath      = "storage/raft/snapshot-auto/run/"
	drillDuePath = "storage/raft/snapshot-auto/scheduled-drill/"
)

var _ framework.Scheduler = routes{}

// ScheduledJobs implements framework.Scheduler: the sys/ mount lists this
// job, and the server's scheduler runs it about once a minute: an internal
// read of scanPath, then an internal update of every path it lists as due,
// each made by JobName.
func (r routes) ScheduledJobs() []framework.Job {
	return []framework.Job{{Name: JobName, Scan: scanPath}}
}

// scanRoute lists the schedules whose snapshot or drill is due. It changes
// nothing.
func (r routes) scanRoute() framework.Route {
	return framework.Route{Pattern: scanPath, Internal: true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.scan},
		Help:       "Internal: automated snapshots and drills that are due."}
}

// runRoute takes a due snapshot (re-checking that it is due).
func (r routes) runRoute() framework.Route {
	return framework.Route{Pattern: runPath + namePattern, Fields: nameField, Internal: true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.run},
		Help:       "Internal: take a scheduled snapshot."}
}

// drillDueRoute runs a due scheduled drill (re-checking that it is due).
func (r routes) drillDueRoute() framework.Route {
	return framework.Route{Pattern: drillDuePath + namePattern, Fields: nameField, Internal: true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.scheduledDrill},
		Help:       "Internal: run a scheduled restore drill."}
}

// due reports whether schedule name's snapshot and drill are due now.
func (s *Subsystem) due(ctx context.Context, name string) (c *Config, snap, drill bool, err error) {
	c, err = s.config(ctx, name)
	if err != nil || c == nil {
		return nil, false, false, err
	}
	st, err := s.status(ctx, name)
	if err != nil {
		return nil, false, false, err
	}
	now := s.now()
	snap = !now.Before(nextSnapshot(c, st))
	next := nextDrill(c, st)
	drill = c.DrillInterval > 0 && !st.LastSuccess.IsZero() && !now.Before(next)
	return c, snap, drill, nil
}

func (r routes) scan(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	due := []string{}
	if !r.s.host.Active() {
		return &core.Response{Data: map[string]any{"due": due}}, nil
	}
	names, err := r.s.names(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		_, snap, drill, err := r.s.due(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", n, err)
		}
		if snap {
			due = append(due, runPath+n)
		}
		if drill {
			due = append(due, drillDuePath+n)
		}
	}
	return &core.Response{Data: map[string]any{"due": due}}, nil
}

func (r routes) run(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, snap, _, err := r.s.due(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.ErrNotFound
	}
	if !snap {
		return &core.Response{Data: map[string]any{"skipped": "not due"}}, nil
	}
	rec, err := r.s.TakeSnapshot(ctx, c)
	if err != nil && rec == nil {
		return nil, err
	}
	resp := &core.Response{Data: toMap(rec)}
	if err != nil {
		resp.AddWarning(err.Error())
	}
	return resp, nil
}

func (r routes) scheduledDrill(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	c, _, drill, err := r.s.due(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.ErrNotFound
	}
	if !drill {
		return &core.Response{Data: map[string]any{"skipped": "not due"}}, nil
	}
	return r.drill(ctx, c.Name, TriggerSchedule)
}
