package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/router"
)

// Internal principals of the server's own scheduled jobs.
const (
	// JobTokenTidy revokes expired tokens (auth/token/tidy).
	JobTokenTidy = "token-tidy"
	// JobAutoRotation rotates the barrier key when sys/rotate/config says
	// it is due (sys/rotate).
	JobAutoRotation = "auto-rotation"
)

// RunScheduledJobs runs every scheduled job once: token tidy, the barrier
// key's automatic rotation, then each mount's jobs (see
// framework.Scheduler; the sys/ mount's are those of subsystems' Parts). Every step is an internal request
// through the Dispatcher, made by a principal that names the job, so every
// key or credential the jobs change is in the audit trail, and nothing runs
// when the trail cannot record it. It runs nothing on a node that is not
// the active one (see isActive). The server calls it about once a minute;
// tests call it directly. It returns the jobs' errors, joined.
func (s *Server) RunScheduledJobs(ctx context.Context) error {
	if !s.isActive() {
		return nil
	}
	var errs []error
	if _, err := s.dispatchJob(ctx, JobTokenTidy, core.OpUpdate, "auth/token/tidy"); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", JobTokenTidy, err))
	}
	if err := s.autoRotate(ctx); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", JobAutoRotation, err))
	}
	for _, mj := range s.router.ScheduledJobs() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := s.runMountJob(ctx, mj); err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", mj.Name, mj.Mount, err))
		}
	}
	return errors.Join(errs...)
}

// isActive reports whether this node is the active node, the only one that
// runs scheduled work (the jobs here, automated snapshots and restore
// drills: autosnapshot's Host.Active asks this too): the raft leader once
// it has finished becoming active (ha.go), and until it stops being it.
// This is the one place that decides it for scheduled work.
func (s *Server) isActive() bool { return s.active.Load() }

// runMountJob reads the job's scan route, then updates every due path.
func (s *Server) runMountJob(ctx context.Context, mj router.MountJob) error {
	resp, err := s.dispatchJob(ctx, mj.Name, core.OpRead, mj.Mount+mj.Scan)
	if err != nil {
		return err
	}
	due, err := dueList(resp)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := s.dispatchJob(ctx, mj.Name, core.OpUpdate, mj.Mount+p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// autoRotate rotates the barrier key when sys/rotate/config says it is due
// (interval elapsed, or max_operations encryptions done by this node with
// the active key), through the Dispatcher as an internal sys/rotate request
// made by JobAutoRotation, so that the rotation is audited.
func (s *Server) autoRotate(ctx context.Context) error {
	cfg, err := s.sys.RotationConfig(ctx)
	if err != nil {
		return fmt.Errorf("read sys/rotate/config: %w", err)
	}
	ks, err := s.barrier.KeyStatus()
	if err != nil || !cfg.Due(s.now(), ks.InstallTime, ks.Encryptions) {
		return nil
	}
	if _, err := s.dispatchJob(ctx, JobAutoRotation, core.OpUpdate, "sys/rotate"); err != nil {
		return err
	}
	s.log.Info("barrier key rotated automatically", "previous_term", ks.Term)
	return nil
}

// dispatchJob sends one internal request made by the job named actor.
func (s *Server) dispatchJob(ctx context.Context, actor string, op core.Operation, path string) (*core.Response, error) {
	return s.dispatcher.Handle(ctx, &core.Request{Operation: op, Path: path, Internal: true, InternalActor: actor, Time: s.now()})
}

// dueList reads the "due" member of a scan response.
func dueList(resp *core.Response) ([]string, error) {
	if resp == nil || resp.Data == nil || resp.Data["due"] == nil {
		return nil, nil
	}
	switch v := resp.Data["due"].(type) {
	case []string:
		return v, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			p, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("scan response: due entry %v is not a path", x)
			}
			out = append(out, p)
		}
		return out, nil
	}
	return nil, fmt.Errorf("scan response: due is %T, not a list of paths", resp.Data["due"])
}
