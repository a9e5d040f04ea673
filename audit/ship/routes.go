package ship

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// routes are the stream subsystem's sys/ routes:
//
//	GET sys/audit-stream         {"streams": {"<name>": <Status>}}
//	GET sys/audit-stream/:name   <Status>
//
// Both are root-protected (sudo), like sys/audit.
type routes struct{ s *Subsystem }

func (r routes) Routes() []framework.Route {
	return []framework.Route{
		{Pattern: `audit-stream/?`, Sudo: true,
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.list},
			Help:       "Status of every audit stream: cursor, lag in entries and seconds, last error."},
		{Pattern: `audit-stream/(?P<name>[^/]+)/?`, Sudo: true,
			Fields:     map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.one},
			Help:       "Status of one audit stream."},
	}
}

func (r routes) list(context.Context, *core.Request, *framework.FieldData) (*core.Response, error) {
	streams := map[string]any{}
	for _, st := range r.s.Statuses() {
		streams[st.Name] = toMap(st)
	}
	return &core.Response{Data: map[string]any{"streams": streams}}, nil
}

func (r routes) one(_ context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("name")
	for _, st := range r.s.Statuses() {
		if st.Name == name {
			return &core.Response{Data: toMap(st)}, nil
		}
	}
	return nil, core.Errorf(core.CodeNotFound, "no audit stream named %q", name)
}

// toMap renders a Status with its JSON names.
func toMap(st Status) map[string]any {
	b, _ := json.Marshal(st)
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // seqs stay exact
	_ = dec.Decode(&m)
	return m
}
