package autosnapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Job is one kind of scheduled work: its principal's name and its scan path.
type Job struct{ Name, Scan string }

// internal marks a route as served only to requests Vigil makes itself.
func internal(r framework.Route) framework.Route { r.Sudo = true; return r }

// RunJobs runs the scheduled job once through handle (the Dispatcher):
// an internal read of the scan path, then an internal update of every due
// path, each made by the job's principal.
func RunJobs(ctx context.Context, now time.Time, handle func(context.Context, *core.Request) (*core.Response, error)) error {
	do := func(op core.Operation, path string) (*core.Response, error) {
		return handle(ctx, &core.Request{Operation: op, Path: "sys/" + path, Internal: true, InternalActor: JobName, Time: now})
	}
	resp, err := do(core.OpRead, scanPath)
	if err != nil {
		return err
	}
	due, _ := resp.Data["due"].([]string)
	for _, p := range due {
		if _, err := do(core.OpUpdate, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}
