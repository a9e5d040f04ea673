package wrapping

import (
	"context"
	"slices"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/token"
)

// controlGroup finds the control-group request of a wrapping token's
// accessor. The token must be live: an expired request (or one already
// executed) is gone.
func (s *Service) controlGroup(ctx context.Context, req *core.Request, d *framework.FieldData) (*tokenEntry, *cgRecord, error) {
	acc := strings.TrimSpace(d.String("accessor"))
	if acc == "" {
		return nil, nil, core.Invalid("missing accessor")
	}
	e, err := s.cfg.Tokens.LookupAccessor(ctx, acc)
	if err != nil {
		return nil, nil, err
	}
	if e == nil || !e.IsWrapping() || !token.InNamespace(e, req.NS()) {
		return nil, nil, core.Invalid("no control group request has this accessor: it is unknown, has expired or was already executed")
	}
	var cg cgRecord
	ok, err := s.load(ctx, e.Hash, controlGroupKey, &cg)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, core.Invalid("the token of this accessor wraps a response, not a control group request")
	}
	return e, &cg, nil
}

// authorize answers sys/control-group/authorize: the caller approves the
// request in every factor whose groups they belong to. The approver must
// be a person (a token with an identity entity), must not be the
// requester (same entity, the entity that created the requester's token,
// or the same token), and must belong to a group of at least one factor
// they have not approved yet. The answer is Vault's {"approved": bool};
// the entries of the call carry the control group's labels, the caller's
// identity being the approver's.
func (s *Service) authorize(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, cg, err := s.controlGroup(ctx, req, d)
	if err != nil {
		return nil, err
	}
	cg.label(req, "pending")
	p := req.Principal
	if p == nil || p.EntityID == "" || p.Identity == nil {
		return nil, core.Errorf(core.CodePermissionDenied, "permission denied: approvals are given by people: the approving token has no identity entity (log in through an auth method)")
	}
	if cg.isRequester(p) {
		return nil, core.Errorf(core.CodePermissionDenied, "permission denied: %s requested control group request %s and cannot approve it", req.ActorName(), cg.ID)
	}
	me := cgApproval{cgPerson: person(req), Time: s.cfg.Now().UTC(), RequestID: req.ID}
	member, added := false, false
	for i := range cg.Factors {
		f := &cg.Factors[i]
		if !slices.ContainsFunc(f.GroupNames, func(g string) bool { return slices.Contains(p.Identity.Groups, g) }) {
			continue
		}
		member = true
		if slices.ContainsFunc(f.Authorizations, func(a cgApproval) bool { return a.EntityID == p.EntityID }) {
			continue
		}
		f.Authorizations = append(f.Authorizations, me)
		added = true
	}
	switch {
	case !member:
		return nil, core.Errorf(core.CodePermissionDenied, "permission denied: %s is in none of the groups that approve control group request %s", req.ActorName(), cg.ID)
	case !added:
		return nil, core.Invalid("%s has already approved control group request %s", req.ActorName(), cg.ID)
	}
	if err := s.put(ctx, e, cg); err != nil {
		return nil, err
	}
	approved := cg.missing() == ""
	state := "pending"
	if approved {
		state = "approved"
	}
	cg.label(req, state)
	return &core.Response{Data: map[string]any{"approved": approved}}, nil
}

// put stores a changed control-group request.
func (s *Service) put(ctx context.Context, e *tokenEntry, cg *cgRecord) error {
	b, err := jsonMarshal(cg)
	if err != nil {
		return err
	}
	return s.cfg.Cubbyholes.Put(ctx, e.Hash, controlGroupKey, b)
}
