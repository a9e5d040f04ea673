package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/vigilsec/vigil/core"
	vrego "github.com/vigilsec/vigil/rego"
)

// state is one compiled policy revision: the Rego bundle with the custom
// modules, the data document of the ACL policies, the per-policy-set
// indexes and the decision cache. It is immutable once built (the set index
// and cache fill lazily and are safe for concurrent use); a policy change
// builds a new state and swaps it in.
type state struct {
	revision uint64
	acl      map[string]*Policy
	compiled map[string][]*PathRule
	modules  map[string]*Module
	reads    inputReads
	decision rego.PreparedEvalQuery
	caps     rego.PreparedEvalQuery
	// broken is set when the stored policies do not compile (e.g. after an
	// upgrade): every non-root request is then denied with this error.
	broken string
	// compiler and store are kept for explain and tests.
	compiler *ast.Compiler
	store    storage.Store
	sets     sync.Map // setKey -> *setView
	cache    *decisionCache
}

// buildState compiles the bundle with the given policies. A compile error of
// a custom module is returned as a CodeInvalid *core.Error carrying OPA's
// "file:line: message" text.
func buildState(ctx context.Context, rev uint64, acl map[string]*Policy, mods map[string]*Module, cacheSize int) (*state, error) {
	st := &state{revision: rev, acl: acl, modules: mods, compiled: map[string][]*PathRule{}, cache: newDecisionCache(cacheSize)}
	aclDocs := map[string]any{}
	for name, p := range acl {
		doc, kept := policyDoc(p)
		aclDocs[name] = doc
		st.compiled[name] = kept
	}
	st.compiled[ResponseWrappingPolicy] = responseWrapping.Paths
	regoDocs := map[string]any{}
	modules, err := vrego.ParseModules(vrego.Modules())
	if err != nil {
		return nil, fmt.Errorf("authz: embedded bundle: %w", err)
	}
	var customFiles []string
	for name, m := range mods {
		parsed, err := checkModule(m)
		if err != nil {
			return nil, err
		}
		file := name + ".rego"
		modules[file] = parsed
		customFiles = append(customFiles, file)
		regoDocs[name] = map[string]any{"level": m.Level}
	}
	sort.Strings(customFiles)
	compiler := ast.NewCompiler().WithCapabilities(moduleCapabilities)
	compiler.Compile(modules)
	if compiler.Failed() {
		return nil, core.Invalid("rego policy does not compile: %v", compiler.Errors)
	}
	var custom []*ast.Module
	for _, f := range customFiles {
		custom = append(custom, compiler.Modules[f])
	}
	st.reads = analyzeModules(custom)
	st.compiler = compiler
	// The data document is stored as OPA values so reads need no conversion.
	dataVal, err := ast.InterfaceToValue(map[string]any{vrego.DataRoot: map[string]any{"acl": aclDocs, "rego": regoDocs}})
	if err != nil {
		return nil, fmt.Errorf("authz: policy data: %w", err)
	}
	store := inmem.NewFromASTObject(dataVal.(ast.Object))
	st.store = store
	prepare := func(q string) (rego.PreparedEvalQuery, error) {
		return rego.New(rego.Query(q), rego.Compiler(compiler), rego.Store(store), rego.StoreReadAST(true),
			rego.StrictBuiltinErrors(true)).PrepareForEval(ctx)
	}
	if st.decision, err = prepare(vrego.DecisionQuery); err != nil {
		return nil, core.Invalid("rego policy does not compile: %v", err)
	}
	if st.caps, err = prepare(vrego.CapabilitiesQuery); err != nil {
		return nil, core.Invalid("rego policy does not compile: %v", err)
	}
	return st, nil
}

// view returns the (cached) merged index of a policy set.
func (st *state) view(policies []string) (*setView, error) {
	key := setKey(policies)
	if v, ok := st.sets.Load(key); ok {
		return v.(*setView), nil
	}
	nv, err := newSetView(key, policies, st.compiled)
	if err != nil {
		return nil, err
	}
	v, _ := st.sets.LoadOrStore(key, nv)
	return v.(*setView), nil
}

// responseWrapping is the built-in policy of response-wrapping tokens.
var responseWrapping = func() *Policy {
	p, err := ParseACL(ResponseWrappingPolicy, ResponseWrappingPolicyRules)
	if err != nil {
		panic(err)
	}
	return p
}()

// errEvalTimeout marks an evaluation stopped by the deadline.
var errEvalTimeout = errors.New("policy evaluation timed out")

// eval runs one prepared query on input with the evaluation deadline. The
// result must be a single defined value.
func (a *Authz) eval(ctx context.Context, q rego.PreparedEvalQuery, input ast.Value, now time.Time) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.EvalTimeout)
	defer cancel()
	rs, err := q.Eval(ctx, rego.EvalParsedInput(input), rego.EvalTime(now))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w after %s: %v", errEvalTimeout, a.cfg.EvalTimeout, err)
		}
		return nil, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, errors.New("policy evaluation produced no decision")
	}
	return rs[0].Expressions[0].Value, nil
}

// aclResult is data.vigil.acl.result, with the deciding entry resolved.
type aclResult struct {
	Allowed  bool
	Denial   string
	Needed   string
	Granting []string
	Missing  []string
	Entry    *entry // nil when no rule matched
}

// moduleResult is one custom module's part of the decision.
type moduleResult struct {
	Level string            `json:"level"`
	Deny  []string          `json:"deny"`
	Allow bool              `json:"allow"`
	Flags map[string]string `json:"flags,omitempty"`
}

// decisionDoc is data.vigil.authz.decision, decoded.
type decisionDoc struct {
	Allowed        bool
	Root           bool
	ACL            aclResult
	CustomAllowers []string
	DenyReasons    []string
	Advisories     []string
	Flags          map[string]string
	Modules        map[string]moduleResult
	// Approval is what an allowed request must wait for: the ACL's control
	// group and mandatory modules' require_approval, merged (nil: none).
	Approval *core.Approval
}

// parseDecision decodes the Rego decision document; cands are the entries
// passed in input.acl.entries. Any unexpected shape is an error (and so a
// fail-closed deny).
func parseDecision(doc any, cands []*entry) (*decisionDoc, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decision is %T, not an object", doc)
	}
	d := &decisionDoc{}
	var err error
	if d.Allowed, ok = m["allowed"].(bool); !ok {
		return nil, errors.New("decision has no boolean \"allowed\"")
	}
	d.Root, _ = m["root"].(bool)
	if d.Root {
		return d, nil
	}
	am, ok := m["acl"].(map[string]any)
	if !ok {
		return nil, errors.New("decision has no acl result")
	}
	d.ACL.Allowed, _ = am["allowed"].(bool)
	d.ACL.Denial, _ = am["denial"].(string)
	d.ACL.Needed, _ = am["needed"].(string)
	if d.ACL.Granting, err = docStrings(am["granting"]); err != nil {
		return nil, fmt.Errorf("acl.granting: %w", err)
	}
	if d.ACL.Missing, err = docStrings(am["missing_parameters"]); err != nil {
		return nil, fmt.Errorf("acl.missing_parameters: %w", err)
	}
	w, ok := am["winner"].(json.Number)
	if !ok {
		return nil, errors.New("acl result has no winner")
	}
	wi, err := w.Int64()
	if err != nil || wi < -1 || wi >= int64(len(cands)) {
		return nil, fmt.Errorf("acl result has an invalid winner %v", w)
	}
	if wi >= 0 {
		d.ACL.Entry = cands[wi]
	}
	var approvals []*core.Approval
	if raw := am["approval"]; raw != nil && d.ACL.Allowed {
		a, err := approvalFromDoc(raw, "acl")
		if err != nil {
			return nil, fmt.Errorf("acl.approval: %w", err)
		}
		approvals = append(approvals, a)
	}
	if d.CustomAllowers, err = docStrings(m["custom_allowers"]); err != nil {
		return nil, err
	}
	if d.DenyReasons, err = docStrings(m["deny_reasons"]); err != nil {
		return nil, err
	}
	if d.Advisories, err = docStrings(m["advisories"]); err != nil {
		return nil, err
	}
	if d.Flags, err = flagMap(m["flags"]); err != nil {
		return nil, err
	}
	if mods, ok := m["modules"].(map[string]any); ok && len(mods) > 0 {
		d.Modules = make(map[string]moduleResult, len(mods))
		for name, raw := range mods {
			o, _ := raw.(map[string]any)
			var r moduleResult
			r.Level, _ = o["level"].(string)
			r.Allow, _ = o["allow"].(bool)
			if r.Deny, err = docStrings(o["deny"]); err != nil {
				return nil, fmt.Errorf("module %s: %w", name, err)
			}
			if r.Flags, err = flagMap(o["flags"]); err != nil {
				return nil, fmt.Errorf("module %s: %w", name, err)
			}
			if raw := o["require_approval"]; raw != nil && r.Level == LevelMandatory {
				a, err := approvalFromDoc(raw, "rego:"+name)
				if err != nil {
					return nil, fmt.Errorf("module %s: %w", name, err)
				}
				approvals = append(approvals, a)
			}
			d.Modules[name] = r
		}
	}
	if d.Allowed && len(d.ACL.Granting) == 0 && len(d.CustomAllowers) == 0 {
		return nil, errors.New("decision allows without a granting policy")
	}
	if d.Allowed {
		d.Approval = mergeApprovals(approvals...)
	}
	return d, nil
}

func flagMap(v any) (map[string]string, error) {
	fl, ok := v.(map[string]any)
	if !ok || len(fl) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(fl))
	for k, v := range fl {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("flag %q is %T, not a string", k, v)
		}
		out[k] = s
	}
	return out, nil
}

// toDecision turns the decoded document into the core.Decision recorded in
// the audit entry: granting policies (ACL policies granting the needed
// capability, then the mandatory modules whose allow granted), deny
// reasons (mandatory modules', then the ACL's), and an explanation.
func (d *decisionDoc) toDecision(path string, op core.Operation, policies []string) *core.Decision {
	out := &core.Decision{Allowed: d.Allowed, Operation: op, Advisories: d.Advisories, Flags: d.Flags, Approval: d.Approval}
	if d.Root {
		out.GrantingPolicies = []core.PolicyRef{{Name: RootPolicy, Type: "acl"}}
		out.Explanation = []string{"root: the token carries the root policy; every request is allowed"}
		return out
	}
	a := &d.ACL
	if d.Allowed {
		if a.Allowed {
			for _, p := range a.Granting {
				out.GrantingPolicies = append(out.GrantingPolicies, core.PolicyRef{Name: p, Type: "acl"})
			}
		}
		for _, n := range d.CustomAllowers {
			out.GrantingPolicies = append(out.GrantingPolicies, core.PolicyRef{Name: n, Type: "rego"})
		}
	}
	if e := a.Entry; e == nil {
		out.Explanation = append(out.Explanation, "acl: no rule of policies "+quoteList(policies)+" matches "+strconv.Quote(path))
	} else {
		out.Explanation = append(out.Explanation, "acl: "+strconv.Quote(path)+" matched "+e.describe())
	}
	out.DenyReasons = d.DenyReasons
	if a.Allowed {
		out.Explanation = append(out.Explanation, "acl: "+strconv.Quote(a.Needed)+" granted by policies "+quoteList(a.Granting))
	} else {
		r := a.reason(path)
		out.Explanation = append(out.Explanation, "acl: denied: "+r)
		if !d.Allowed {
			out.DenyReasons = append(append([]string(nil), d.DenyReasons...), "acl: "+r)
		}
	}
	names := make([]string, 0, len(d.Modules))
	for n := range d.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := d.Modules[n]
		out.Explanation = append(out.Explanation, fmt.Sprintf("rego %s (%s): deny %q, allow %v", n, m.Level, m.Deny, m.Allow))
	}
	if a := d.Approval; a != nil {
		out.Explanation = append(out.Explanation, "approval: "+DescribeApproval(a))
	}
	return out
}

// reason words the ACL's denial code.
func (a *aclResult) reason(path string) string {
	var pattern string
	var pols []string
	if a.Entry != nil {
		pattern, pols = a.Entry.pattern, a.Entry.sortedPolicies()
	}
	switch a.Denial {
	case "no_match":
		return fmt.Sprintf("no policy rule matches %q", path)
	case "explicit_deny":
		return fmt.Sprintf("%q is explicitly denied by rule %q in policies %q", path, pattern, pols)
	case "capability":
		return fmt.Sprintf("rule %q in policies %q does not grant %q on %q", pattern, pols, a.Needed, path)
	case "wrapping":
		return fmt.Sprintf("rule %q requires a response-wrapping TTL within its min/max_wrapping_ttl", pattern)
	case "required_parameters":
		return fmt.Sprintf("rule %q requires the parameters %q", pattern, a.Missing)
	case "parameters":
		return fmt.Sprintf("rule %q does not permit the request's parameters", pattern)
	case "sudo":
		return fmt.Sprintf("%q is root-protected and rule %q does not grant sudo", path, pattern)
	}
	return "denied (" + a.Denial + ")"
}

// quoteList formats ["a" "b"] as fmt's %q does for a slice, cheaply.
func quoteList(ss []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(']')
	return b.String()
}

func docStrings(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a list of strings, got %T", v)
	}
	if len(arr) == 0 {
		return nil, nil
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("expected a list of strings, got an element %T", e)
		}
		out[i] = s
	}
	return out, nil
}

// failClosed is the decision when evaluation broke: deny, with the error.
func failClosed(op core.Operation, err error) *core.Decision {
	msg := err.Error()
	return &core.Decision{Allowed: false, Operation: op, Error: msg, DenyReasons: []string{"policy evaluation failed: " + msg}}
}
