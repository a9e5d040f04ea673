package wrapping

import (
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

var _ framework.Part = (*Service)(nil)

type ops = map[core.Operation]framework.HandlerFunc

func tokenField() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{"token": {Type: framework.TypeString,
		Description: "The wrapping token; the client token when empty."}}
}

func accessorField() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{"accessor": {Type: framework.TypeString,
		Description: "The accessor of the control group's wrapping token (wrap_info.accessor)."}}
}

// Routes implements framework.Part: the sys/wrapping/ and
// sys/control-group/ routes (patterns relative to sys/).
func (s *Service) Routes() []framework.Route {
	return []framework.Route{
		{Pattern: "wrapping/wrap", Operations: ops{core.OpUpdate: s.wrapRoute}, AnyData: true,
			Help: "Response-wraps the request data in a single-use token."},
		{Pattern: "wrapping/unwrap", Fields: tokenField(), Operations: ops{core.OpUpdate: s.unwrap}, DefersTokenUse: true,
			Help: "Unwraps a response-wrapping token (spending it); executes an approved control-group request."},
		{Pattern: "wrapping/lookup", Fields: tokenField(), Operations: ops{core.OpUpdate: s.lookup, core.OpRead: s.lookup}, Unauthenticated: true,
			Help: "Looks up a response-wrapping token's creation path, time and TTL."},
		{Pattern: "wrapping/rewrap", Fields: tokenField(), Operations: ops{core.OpUpdate: s.rewrap}, DefersTokenUse: true,
			Help: "Moves a wrapped response to a new wrapping token (spending the old one)."},
		{Pattern: "control-group/authorize", Fields: accessorField(), Operations: ops{core.OpUpdate: s.authorize},
			Help: "Approves a control-group request, identified by its wrapping token's accessor."},
		{Pattern: "control-group/request", Fields: accessorField(), Operations: ops{core.OpUpdate: s.request, core.OpRead: s.request},
			Help: "Shows a control-group request and its approvals."},
	}
}
