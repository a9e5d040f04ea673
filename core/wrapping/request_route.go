package wrapping

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// request answers sys/control-group/request: Vault's approved,
// request_path, request_operation, request_data, request_entity and
// authorizations, plus Vigil's id (the held request's, which links its
// audit records), reason, expiration and per-factor state. Anyone holding
// the accessor may look (the default policy allows it, as in Vault).
func (s *Service) request(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	_, cg, err := s.controlGroup(ctx, req, d)
	if err != nil {
		return nil, err
	}
	state := "pending"
	if cg.missing() == "" {
		state = "approved"
	}
	cg.label(req, state)
	auths := []map[string]any{}
	for _, a := range cg.approvers() {
		auths = append(auths, map[string]any{"entity_id": a.EntityID, "entity_name": a.EntityName, "actor": a.Actor,
			"method": a.Method, "time": a.Time.UTC().Format(time.RFC3339Nano)})
	}
	factors := []map[string]any{}
	for _, f := range cg.Factors {
		by := []string{}
		for _, a := range f.Authorizations {
			by = append(by, a.Actor)
		}
		factors = append(factors, map[string]any{"name": f.Name, "group_names": f.GroupNames, "approvals": f.Approvals,
			"approved_by": by, "approved": len(f.Authorizations) >= f.Approvals})
	}
	data := map[string]any{
		"approved":          cg.missing() == "",
		"request_id":        cg.ID,
		"request_operation": cg.Request.Operation,
		"request_path":      cg.Request.Path,
		"request_data":      cg.Request.Data,
		"request_entity":    map[string]any{"id": cg.Requester.EntityID, "name": cg.Requester.EntityName, "actor": cg.Requester.Actor},
		"authorizations":    auths,
		"factors":           factors,
		"creation_time":     cg.Created.UTC().Format(time.RFC3339Nano),
		"expiration":        cg.Expires.UTC().Format(time.RFC3339Nano),
	}
	if cg.Reason != "" {
		data["reason"] = cg.Reason
	}
	return &core.Response{Data: data}, nil
}
