package wrapping

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
)

// controlGroupKey is where a control-group wrapping token's cubbyhole
// keeps the held request and its approvals (Vault's name).
const controlGroupKey = "control-group"

// ReasonHeader is the header whose value is recorded as a control-group
// request's reason (and shown to approvers).
const ReasonHeader = core.ReasonHeader

// cgRecord is a control-group request.
type cgRecord struct {
	// ID is the id of the held request; every record of the control group
	// carries it (core.LabelControlGroup).
	ID        string     `json:"id"`
	Created   time.Time  `json:"created"`
	Expires   time.Time  `json:"expires"`
	Request   cgRequest  `json:"request"`
	Requester cgPerson   `json:"requester"`
	Reason    string     `json:"reason,omitempty"`
	Factors   []cgFactor `json:"factors"`
	Sources   []string   `json:"sources,omitempty"`
}

// cgRequest is what is executed once approved.
type cgRequest struct {
	Operation core.Operation `json:"operation"`
	Path      string         `json:"path"`
	Data      map[string]any `json:"data,omitempty"`
	Headers   http.Header    `json:"headers,omitempty"`
	WrapTTL   time.Duration  `json:"wrap_ttl,omitempty"`
}

// cgPerson is a requester or approver.
type cgPerson struct {
	EntityID   string `json:"entity_id,omitempty"`
	EntityName string `json:"entity_name,omitempty"`
	// Actor is the canonical actor name (core.Request.ActorName).
	Actor string `json:"actor"`
	// Alias is "<mount>/<alias name>" of the login behind the token and
	// Method the auth method's mount ("userpass", "oidc", "token").
	Alias  string `json:"alias,omitempty"`
	Method string `json:"method,omitempty"`
	// Accessor of the token; CreatorEntityID the entity of the token
	// that created it (auth/token/create).
	Accessor        string `json:"accessor,omitempty"`
	CreatorEntityID string `json:"creator_entity_id,omitempty"`
}

type cgFactor struct {
	Name           string       `json:"name"`
	GroupNames     []string     `json:"group_names"`
	Approvals      int          `json:"approvals"`
	Authorizations []cgApproval `json:"authorizations,omitempty"`
}

// cgApproval is one approver's authorization.
type cgApproval struct {
	cgPerson
	Time time.Time `json:"time"`
	// RequestID is the id of the sys/control-group/authorize request.
	RequestID string `json:"request_id"`
}

// person describes the caller of req.
func person(req *core.Request) cgPerson {
	p := req.Principal
	out := cgPerson{Actor: req.ActorName()}
	if p == nil {
		return out
	}
	out.EntityID, out.Accessor, out.CreatorEntityID = p.EntityID, p.Accessor, p.CreatorEntityID
	out.Method = loginMethod(p.CreationPath)
	if id := p.Identity; id != nil {
		out.EntityName, out.Alias = id.EntityName, id.Alias
	}
	return out
}

// loginMethod is the auth mount a token's creation path names:
// "auth/userpass/login/carol" is "userpass", "auth/token/create" "token".
func loginMethod(creationPath string) string {
	p, ok := strings.CutPrefix(creationPath, "auth/")
	if !ok {
		return creationPath
	}
	if i := strings.Index(p, "/login"); i > 0 {
		return p[:i]
	}
	if strings.HasPrefix(p, "token/") {
		return "token"
	}
	return strings.TrimSuffix(p, "/")
}

// missing says what approvals are still missing ("" when approved).
func (c *cgRecord) missing() string {
	var parts []string
	for _, f := range c.Factors {
		if n := len(f.Authorizations); n < f.Approvals {
			parts = append(parts, fmt.Sprintf("factor %q has %d of %d approvals (from groups %q)", f.Name, n, f.Approvals, f.GroupNames))
		}
	}
	return strings.Join(parts, "; ")
}

// approvers lists the distinct approvers, in the order they approved.
func (c *cgRecord) approvers() []cgApproval {
	var all []cgApproval
	for _, f := range c.Factors {
		for _, a := range f.Authorizations {
			if !slices.ContainsFunc(all, func(b cgApproval) bool { return b.EntityID == a.EntityID }) {
				all = append(all, a)
			}
		}
	}
	slices.SortStableFunc(all, func(a, b cgApproval) int { return a.Time.Compare(b.Time) })
	return all
}

// isRequester reports whether p is the requester: the same entity (or
// the entity that created the requester's token), or the same token.
func (c *cgRecord) isRequester(p *core.Principal) bool {
	r := c.Requester
	if p.EntityID != "" && (p.EntityID == r.EntityID || p.EntityID == r.CreatorEntityID) {
		return true
	}
	return p.Accessor != "" && p.Accessor == r.Accessor
}

// canRun reports whether p may execute the approved request: the
// requester's entity, or for a requester without one, the same token.
func (c *cgRecord) canRun(p *core.Principal) bool {
	if c.Requester.EntityID != "" {
		return p.EntityID == c.Requester.EntityID
	}
	return p.Accessor != "" && p.Accessor == c.Requester.Accessor
}

// label records the control group's labels on req.
func (c *cgRecord) label(req *core.Request, state string) {
	req.Label(core.LabelControlGroup, c.ID)
	req.Label(core.LabelControlGroupState, state)
	req.Label(core.LabelControlGroupRequester, c.Requester.Actor)
	if c.Reason != "" {
		req.Label(core.LabelControlGroupReason, c.Reason)
	}
	if as := c.approvers(); len(as) > 0 {
		var names, ids []string
		for _, a := range as {
			names, ids = append(names, a.Actor), append(ids, a.EntityID)
		}
		req.Label(core.LabelApprover, strings.Join(names, ","))
		req.Label(core.LabelApproverEntityIDs, strings.Join(ids, ","))
	}
}

// approvalTTL is how long a request waits for approval: the policy's ttl,
// else its max_ttl, else the service default, never above max_ttl.
func (s *Service) approvalTTL(a *core.Approval) time.Duration {
	ttl := a.TTL
	if ttl == 0 {
		ttl = a.MaxTTL
	}
	if ttl == 0 {
		ttl = s.cfg.ApprovalTTL
	}
	if a.MaxTTL > 0 && ttl > a.MaxTTL {
		ttl = a.MaxTTL
	}
	return ttl
}

// Hold implements core.ApprovalGate: req (allowed, with
// Decision.Approval) is kept, not executed, in a new wrapping token's
// cubbyhole; the client gets the token's wrap_info (creation_path: the
// request's path). The token lives as long as the request may wait
// (capped at the token store's maximum TTL).
func (s *Service) Hold(ctx context.Context, req *core.Request) (*core.Response, error) {
	if req.Decision == nil || req.Decision.Approval == nil {
		return nil, core.Errorf(core.CodeInternal, "control group: the request needs no approval")
	}
	if len(req.RawBody) > 0 {
		return nil, core.Invalid("%s needs approval, and a request with a raw body cannot be held for approval", req.Path)
	}
	a := req.Decision.Approval
	ttl := s.approvalTTL(a)
	if _, max := s.cfg.Tokens.Limits(); max > 0 && ttl > max {
		ttl = max
	}
	raw, e, err := s.newToken(ctx, req, req.Path, ttl)
	if err != nil {
		return nil, err
	}
	cg := &cgRecord{
		ID: req.ID, Created: e.CreationTime, Expires: e.ExpireTime,
		Request:   cgRequest{Operation: req.Operation, Path: req.Path, Data: req.Data, Headers: req.Headers, WrapTTL: req.WrapTTL},
		Requester: person(req), Reason: req.Header(ReasonHeader), Sources: a.Sources,
	}
	for _, f := range a.Factors {
		cg.Factors = append(cg.Factors, cgFactor{Name: f.Name, GroupNames: f.GroupNames, Approvals: f.Approvals})
	}
	rec := wrapRecord{CreationTTL: int64(ttl / time.Second), CreationTime: e.CreationTime, CreationPath: req.Path,
		RequestID: req.ID, Actor: cg.Requester.Actor, EntityID: cg.Requester.EntityID}
	if err := s.keep(ctx, e, rec, storedResponse{}, cg); err != nil {
		return nil, err
	}
	return &core.Response{WrapInfo: &core.WrapInfo{Token: raw, Accessor: e.Accessor, TTL: int(ttl / time.Second),
		CreationTime: e.CreationTime, CreationPath: req.Path}}, nil
}

// execute runs an approved control-group request for the unwrap req: only
// its requester may, with their own token (the wrapping token in the body),
// once every factor has its approvals. The wrapping token is spent first,
// so the request runs once; it then goes through the Dispatcher as the
// requester — authenticated, authorized again (Approved lets the approval
// stand) and audited — and its response is the unwrap's.
func (s *Service) execute(ctx context.Context, req *core.Request, tok string, thirdParty bool, cg *cgRecord) (*core.Response, error) {
	cg.label(req, "pending")
	if !thirdParty {
		return nil, core.Invalid("control group request %s runs as its requester: unwrap it with the requester's token, passing this wrapping token as \"token\"", cg.ID)
	}
	p := req.Principal
	if p == nil || !cg.canRun(p) {
		return nil, core.Errorf(core.CodePermissionDenied, "permission denied: only the requester (%s) can run control group request %s", cg.Requester.Actor, cg.ID)
	}
	if m := cg.missing(); m != "" {
		return nil, core.Errorf(core.CodePermissionDenied, "control group request %s needs further approval: %s", cg.ID, m)
	}
	dp := s.dispatch.Load()
	if dp == nil {
		return nil, errNoDispatch
	}
	var final cgRecord
	found, err := s.cfg.Tokens.Claim(ctx, tok, func(e *tokenEntry) error {
		ok, err := s.load(ctx, e.Hash, controlGroupKey, &final)
		switch {
		case err != nil:
			return err
		case !ok || final.ID != cg.ID:
			return ErrInvalidToken
		case final.missing() != "":
			return core.Errorf(core.CodePermissionDenied, "control group request %s needs further approval: %s", cg.ID, final.missing())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrInvalidToken
	}
	final.label(req, "executed")
	run := &core.Request{
		ID: uuid.NewString(), Operation: final.Request.Operation, Path: final.Request.Path, Data: maps.Clone(final.Request.Data),
		Headers: final.Request.Headers.Clone(), ClientToken: p.ClientToken, RemoteAddr: req.RemoteAddr, RemotePort: req.RemotePort,
		Time: s.cfg.Now(), Approved: final.ID, WrapTTL: final.Request.WrapTTL,
	}
	if run.Headers == nil {
		run.Headers = http.Header{}
	}
	final.label(run, "executed")
	resp, err := (*dp)(ctx, run)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, nil
	}
	out := *resp
	out.Restored = true
	return &out, nil
}
