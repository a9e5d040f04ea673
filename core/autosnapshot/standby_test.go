package autosnapshot

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// standbyHost is a node that is not the active one. It has no storage and
// no snapshot capability: a standby must refuse before reaching them (the
// nil embedded Host panics on any other call).
type standbyHost struct {
	Host
	parts []framework.Part
}

func (standbyHost) Active() bool                   { return false }
func (standbyHost) Now() time.Time                 { return time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC) }
func (standbyHost) Logger() *slog.Logger           { return slog.New(slog.DiscardHandler) }
func (h *standbyHost) AddSysPart(p framework.Part) { h.parts = append(h.parts, p) }

func TestStandbyRunsNothing(t *testing.T) {
	h := &standbyHost{}
	s := New()
	if err := s.Provision(h); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := &Config{Name: "daily", Interval: time.Hour, Retain: 3}
	for what, err := range map[string]error{
		"snapshot": func() error { _, err := s.TakeSnapshot(ctx, c); return err }(),
		"drill":    func() error { _, err := s.Drill(ctx, c, TriggerRequest); return err }(),
	} {
		if err == nil || core.CodeOf(err) != core.CodePrecondition {
			t.Errorf("%s on a standby: %v, want a precondition error", what, err)
		}
	}
	resp, err := routes{s}.scan(ctx, &core.Request{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if due := resp.Data["due"].([]string); len(due) != 0 {
		t.Fatalf("a standby's scan lists %v", due)
	}
	if len(h.parts) != 1 {
		t.Fatalf("parts %d", len(h.parts))
	}
	if jobs := h.parts[0].(framework.Scheduler).ScheduledJobs(); len(jobs) != 1 || jobs[0].Name != JobName {
		t.Fatalf("jobs %v", jobs)
	}
}
