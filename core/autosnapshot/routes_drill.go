package autosnapshot

import (
	"context"
	"encoding/json"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// drillRoute is sys/storage/raft/snapshot-auto/drill/:name (sudo): POST
// runs a restore drill of the schedule's latest snapshot now and answers
// with its record (a failed drill is a 200 with passed=false and the
// reason: the drill ran, the backup did not pass); GET returns the drill
// history, newest first (?limit=N, default 20).
func (r routes) drillRoute() framework.Route {
	f := map[string]*framework.FieldSchema{"name": nameField["name"],
		"limit": {Type: framework.TypeInt, Default: 20, Description: "How many drill records to return (0: all kept)."}}
	return framework.Route{Pattern: `storage/raft/snapshot-auto/drill/` + namePattern, Fields: f, Sudo: true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.runDrill, core.OpRead: r.drillHistory},
		Help:       "Restore drill: restore the latest snapshot into a scratch store, unseal, verify and count."}
}

func (r routes) runDrill(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return r.drill(ctx, d.String("name"), TriggerRequest)
}

func (r routes) drill(ctx context.Context, name, trigger string) (*core.Response, error) {
	c, err := r.s.config(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, core.ErrNotFound
	}
	rec, err := r.s.Drill(ctx, c, trigger)
	if err != nil {
		return nil, err
	}
	resp := &core.Response{Data: toMap(rec)}
	if !rec.Passed {
		resp.AddWarning("restore drill failed: " + rec.Error)
	}
	return resp, nil
}

func (r routes) drillHistory(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	recs, err := DrillHistory(ctx, r.s.host.Storage(), d.String("name"), d.Int("limit"))
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, core.ErrNotFound
	}
	list := make([]any, len(recs))
	for i := range recs {
		list[i] = toMap(&recs[i])
	}
	return &core.Response{Data: map[string]any{"drills": list}}, nil
}

// toMap converts a record to response data with its JSON names.
func toMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
