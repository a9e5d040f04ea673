package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Explanation is what sys/policies/explain answers: the decision the
// authorizer makes for a request (evaluated afresh, never from the cache)
// and how it was reached.
type Explanation struct {
	Decision *core.Decision
	// MatchedRule is the ACL pattern that decided (nil: none matched), with
	// the policies holding it and their merged capabilities.
	MatchedRule *MatchedRule
	// Candidates are the patterns the index handed to Rego.
	Candidates []string
	// Cacheable reports whether this decision would be cached, and if not why.
	Cacheable   bool
	Uncacheable string
	Revision    uint64
}

// MatchedRule describes the deciding ACL entry.
type MatchedRule struct {
	Pattern      string   `json:"pattern"`
	Kind         string   `json:"kind"`
	Policies     []string `json:"policies"`
	Capabilities []string `json:"capabilities"`
}

// Explain evaluates req like Authorize but without the cache and returns the
// details. req must carry a Principal; Mount and SudoRequired should be set
// as the dispatcher would (the explain route does that).
func (a *Authz) Explain(ctx context.Context, req *core.Request) (*Explanation, error) {
	st := a.cur.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "%v", errNotLoaded)
	}
	if req.Principal == nil {
		return nil, core.Invalid("explain needs a token or an accessor")
	}
	ex := &Explanation{Revision: st.revision}
	tokNS := req.Principal.NamespaceOf()
	r, pols, inside := forPrincipal(req)
	if !inside {
		ex.Decision = &core.Decision{Allowed: false, Operation: req.Operation, DenyReasons: []string{
			fmt.Sprintf("a token of namespace %q cannot act in namespace %q", nsName(tokNS), nsName(req.NS()))}}
		return ex, nil
	}
	req = r
	if st.broken != "" {
		d := failClosed(req.Operation, errors.New(st.broken))
		if req.Principal.Root && tokNS.IsRoot() {
			d = rootDecision(req.Operation)
		}
		ex.Decision = d
		return ex, nil
	}
	v, err := st.view(pols)
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	_, ex.Cacheable = a.cacheKey(st, v, req, now)
	if !ex.Cacheable {
		ex.Uncacheable = st.reads.volatile
	}
	for _, e := range v.candidates(req.Path, req.Operation == core.OpList) {
		ex.Candidates = append(ex.Candidates, e.pattern)
	}
	d, doc, _, err := a.decide(ctx, st, v, req, now, true)
	if err != nil {
		ex.Decision = failClosed(req.Operation, err)
		return ex, nil
	}
	annotate(d, tokNS)
	ex.Decision = d
	if e := doc.ACL.Entry; e != nil {
		ex.MatchedRule = &MatchedRule{Pattern: e.pattern, Kind: e.rule.Kind(), Policies: e.sortedPolicies(), Capabilities: e.capList()}
	}
	return ex, nil
}

var explainFields = map[string]*framework.FieldSchema{
	"token":       {Type: framework.TypeString, Description: "token to explain (or accessor)"},
	"accessor":    {Type: framework.TypeString, Description: "accessor of the token to explain"},
	"path":        {Type: framework.TypeString, Required: true},
	"operation":   {Type: framework.TypeLowerCaseString, Default: "read"},
	"parameters":  {Type: framework.TypeSlice, Description: "parameter names, or an object of names to values"},
	"headers":     {Type: framework.TypeKVPairs, Description: "request headers, e.g. X-Vigil-Reason"},
	"remote_addr": {Type: framework.TypeString},
	"sudo":        {Type: framework.TypeBool, Description: "treat the path as root-protected (default: as routed)"},
}

var validOps = map[core.Operation]bool{core.OpCreate: true, core.OpRead: true, core.OpUpdate: true, core.OpPatch: true, core.OpDelete: true, core.OpList: true}

// explain serves sys/policies/explain: POST {token|accessor, path,
// operation, parameters, headers, remote_addr, sudo}. The answer has
// allowed, operation, path, policies, granting_policies, deny_reasons,
// advisories, flags, explanation, error, matched_rule, candidates,
// sudo_required, mount, cacheable, uncacheable_reason and revision.
func (p *API) explain(ctx context.Context, caller *core.Request, d *framework.FieldData) (*core.Response, error) {
	var pr *core.Principal
	var err error
	switch {
	case d.String("token") != "":
		pr, err = p.tokens.PrincipalByToken(ctx, d.String("token"))
	case d.String("accessor") != "":
		pr, err = p.tokens.PrincipalByAccessor(ctx, d.String("accessor"))
	default:
		return nil, core.Invalid("token or accessor is required")
	}
	if err != nil {
		return nil, err
	}
	if pr == nil || !caller.NS().Contains(pr.NamespaceOf()) {
		// A token of another namespace is unknown here.
		return nil, core.Invalid("invalid token or accessor")
	}
	op := core.Operation(d.String("operation"))
	if !validOps[op] {
		return nil, core.Invalid("operation must be one of create, read, update, patch, delete, list")
	}
	path := strings.TrimPrefix(d.String("path"), "/")
	if op == core.OpList && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	req := &core.Request{ID: caller.ID, Path: path, Operation: op, Principal: pr, Time: caller.Time,
		RemoteAddr: d.String("remote_addr"), Headers: http.Header{}, Namespace: caller.Namespace}
	if raw, ok := d.GetOk("parameters"); ok {
		req.Data = map[string]any{}
		for _, v := range raw.([]any) {
			switch x := v.(type) {
			case string:
				req.Data[x] = nil
			case map[string]any:
				for k, val := range x {
					req.Data[k] = val
				}
			}
		}
	}
	for k, v := range d.KV("headers") {
		req.Headers.Set(k, v)
	}
	if p.paths != nil {
		if m, sudo, err := p.paths.ResolvePath(caller.NS().Path + path); err == nil {
			req.Mount, req.SudoRequired = m, sudo
		}
	}
	if d.Has("sudo") {
		req.SudoRequired = d.Bool("sudo")
	}
	ex, err := p.authz.Explain(ctx, req)
	if err != nil {
		return nil, err
	}
	dec := ex.Decision
	granting := []any{}
	for _, g := range dec.GrantingPolicies {
		gp := map[string]any{"name": g.Name, "type": g.Type}
		if g.NamespaceID != "" {
			gp["namespace_id"], gp["namespace_path"] = g.NamespaceID, g.NamespacePath
		}
		granting = append(granting, gp)
	}
	flags := map[string]any{}
	for k, v := range dec.Flags {
		flags[k] = v
	}
	mount := ""
	if req.Mount != nil {
		mount = req.Mount.Path
	}
	pols := append([]string(nil), pr.Policies...)
	sort.Strings(pols)
	data := map[string]any{
		"allowed": dec.Allowed, "operation": string(op), "path": path, "policies": pols, "accessor": pr.Accessor,
		"granting_policies": granting, "deny_reasons": nonNil(dec.DenyReasons), "advisories": nonNil(dec.Advisories),
		"flags": flags, "explanation": nonNil(dec.Explanation), "error": dec.Error, "matched_rule": nil,
		"candidates": nonNil(ex.Candidates), "sudo_required": req.SudoRequired, "mount": mount,
		"cacheable": ex.Cacheable, "uncacheable_reason": ex.Uncacheable, "revision": ex.Revision,
	}
	if ex.MatchedRule != nil {
		data["matched_rule"] = map[string]any{"pattern": ex.MatchedRule.Pattern, "kind": ex.MatchedRule.Kind,
			"policies": ex.MatchedRule.Policies, "capabilities": ex.MatchedRule.Capabilities}
	}
	return &core.Response{Data: data}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
