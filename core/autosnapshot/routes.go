package autosnapshot

import (
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// routes are the subsystem's sys/ routes.
type routes struct{ s *Subsystem }

var _ framework.Part = routes{}

const namePattern = `(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)`

var nameField = map[string]*framework.FieldSchema{"name": {Type: framework.TypeString, Description: "Name of the schedule."}}

// Routes lists every route; the config, status and drill routes are in
// their own files, the scheduled jobs' internal routes in routes_jobs.go.
func (r routes) Routes() []framework.Route {
	return []framework.Route{
		{Pattern: `storage/raft/snapshot-auto/config/?`, Sudo: true,
			Operations: map[core.Operation]framework.HandlerFunc{core.OpList: r.listConfigs},
			Help:       "List the automated snapshot schedules."},
		r.configRoute(),
		r.statusRoute(),
		r.drillRoute(),
		r.scanRoute(),
		r.runRoute(),
		r.drillDueRoute(),
	}
}
