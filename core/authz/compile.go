package authz

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	iradix "github.com/hashicorp/go-immutable-radix"
	"github.com/open-policy-agent/opa/v1/ast"
)

// ruleDoc compiles one path rule into the data document the Rego bundle
// evaluates (data.vigil_policies.acl[<policy>].rules[<i>]). The priority
// fields mirror vault/acl.go's wcPathDescr: first_wc (position of the first
// "+" or glob), not_prefix (1 unless the pattern ends in "*"), wildcards
// (number of "+" segments), wc_len (length without the trailing "*").
func ruleDoc(policy string, r *PathRule) map[string]any {
	kind := r.Kind()
	prefix := strings.TrimSuffix(r.Pattern, "*")
	if kind == "exact" {
		prefix = r.Pattern
	}
	isPrefix := kind != "exact" && strings.HasSuffix(r.Pattern, "*")
	notPrefix := 1
	if isPrefix {
		notPrefix = 0
	}
	firstWC := len(prefix)
	segments := []any{}
	wildcards := 0
	if kind == "segment" {
		firstWC = strings.Index(r.Pattern, "+")
		for _, s := range strings.Split(prefix, "/") {
			segments = append(segments, s)
			if s == "+" {
				wildcards++
			}
		}
	}
	caps := make([]any, len(r.Capabilities))
	for i, c := range r.Capabilities {
		caps[i] = c
	}
	req := make([]any, len(r.RequiredParameters))
	for i, p := range r.RequiredParameters {
		req[i] = p
	}
	return map[string]any{
		"policy":              policy,
		"pattern":             r.Pattern,
		"kind":                kind,
		"prefix":              prefix,
		"segments":            segments,
		"is_prefix":           isPrefix,
		"not_prefix":          notPrefix,
		"first_wc":            firstWC,
		"wildcards":           wildcards,
		"wc_len":              len(prefix),
		"capabilities":        caps,
		"required_parameters": req,
		"allowed_parameters":  paramDoc(r.AllowedParameters),
		"denied_parameters":   paramDoc(r.DeniedParameters),
		"min_wrapping_ttl":    int64(r.MinWrappingTTL.Seconds()),
		"max_wrapping_ttl":    int64(r.MaxWrappingTTL.Seconds()),
		// constrained and wrapping let Rego skip the parameter and
		// wrapping checks of rules that set none.
		"constrained": len(r.RequiredParameters) > 0 || r.AllowedParameters != nil || r.DeniedParameters != nil,
		"wrapping":    r.MinWrappingTTL > 0 || r.MaxWrappingTTL > 0,
		// control_group: the rule's control group (null when none).
		"control_group": controlGroupDoc(mergeControlGroup(nil, r.ControlGroup, policy)),
	}
}

func paramDoc(m map[string][]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = append([]any{}, v...)
	}
	return out
}

// policyDoc is the data document of one policy. Templated rules are left
// out: they cannot be resolved without an identity store and so never match.
func policyDoc(p *Policy) (map[string]any, []*PathRule) {
	rules := []any{}
	var kept []*PathRule
	for _, r := range p.Paths {
		if r.Templated {
			continue
		}
		rules = append(rules, ruleDoc(p.Name, r))
		kept = append(kept, r)
	}
	return map[string]any{"rules": rules}, kept
}

// capOrder is Vault's order of capabilities in sys/capabilities answers.
var capOrder = []string{CapSudo, CapRead, CapList, CapUpdate, CapDelete, CapCreate, CapPatch}

// entry is every rule of one pattern across a token's policy set, merged as
// Vault's NewACL does: capabilities are united, a "deny" anywhere leaves only
// deny, allowed/denied parameter maps are merged (an empty list for a key
// wins), required parameters united, and the lowest non-zero wrapping TTLs
// kept. granting lists, per capability, the policies that grant it.
type entry struct {
	pattern  string
	rule     *PathRule // the first rule of the pattern (for kind and priority)
	caps     map[string]bool
	granting map[string][]string
	policies []string
	required []string
	allowed  map[string][]any
	denied   map[string][]any
	minWrap  time.Duration
	maxWrap  time.Duration
	// cg is the merged control group (nil: none).
	cg   *ControlGroup
	term *ast.Term
	desc string // "rule \"p\" (kind) in policies [...]: capabilities [...]", set at index time
}

// describe returns the entry's explanation text.
func (e *entry) describe() string {
	if e.desc == "" {
		return fmt.Sprintf("rule %q (%s) in policies %q: capabilities %q", e.pattern, e.rule.Kind(), e.sortedPolicies(), e.capList())
	}
	return e.desc
}

func (e *entry) add(policy string, r *PathRule) {
	if !slices.Contains(e.policies, policy) {
		e.policies = append(e.policies, policy)
	}
	if e.caps == nil {
		e.caps = map[string]bool{}
		e.granting = map[string][]string{}
		for _, c := range r.Capabilities {
			e.caps[c] = true
			e.granting[c] = []string{policy}
		}
		e.allowed, e.denied = cloneParams(r.AllowedParameters), cloneParams(r.DeniedParameters)
		e.required = append([]string(nil), r.RequiredParameters...)
		e.minWrap, e.maxWrap = r.MinWrappingTTL, r.MaxWrappingTTL
		e.cg = mergeControlGroup(nil, r.ControlGroup, policy)
		return
	}
	switch {
	case e.caps[CapDeny]:
		return
	case slices.Contains(r.Capabilities, CapDeny):
		e.caps = map[string]bool{CapDeny: true}
		e.granting = map[string][]string{}
		e.allowed, e.denied = nil, nil
		e.cg = nil
		return
	}
	e.cg = mergeControlGroup(e.cg, r.ControlGroup, policy)
	for _, c := range r.Capabilities {
		e.caps[c] = true
		if !slices.Contains(e.granting[c], policy) {
			e.granting[c] = append(e.granting[c], policy)
		}
	}
	if r.MaxWrappingTTL > 0 && (e.maxWrap == 0 || r.MaxWrappingTTL < e.maxWrap) {
		e.maxWrap = r.MaxWrappingTTL
	}
	if r.MinWrappingTTL > 0 && (e.minWrap == 0 || r.MinWrappingTTL < e.minWrap) {
		e.minWrap = r.MinWrappingTTL
	}
	e.allowed = mergeParams(e.allowed, r.AllowedParameters)
	e.denied = mergeParams(e.denied, r.DeniedParameters)
	for _, p := range r.RequiredParameters {
		if !slices.Contains(e.required, p) {
			e.required = append(e.required, p)
		}
	}
}

func cloneParams(m map[string][]any) map[string][]any {
	if m == nil {
		return nil
	}
	out := make(map[string][]any, len(m))
	for k, v := range m {
		out[k] = append([]any{}, v...)
	}
	return out
}

// mergeParams merges parameter maps as NewACL does: keys are united; an
// empty list (any value) wins; otherwise the value lists are concatenated.
func mergeParams(into, add map[string][]any) map[string][]any {
	if len(add) == 0 {
		return into
	}
	if into == nil {
		return cloneParams(add)
	}
	for k, v := range add {
		cur, ok := into[k]
		if len(v) == 0 || (ok && len(cur) == 0) {
			into[k] = []any{}
		} else {
			into[k] = append(append([]any{}, v...), cur...)
		}
	}
	return into
}

// doc is the entry's document in input.acl.entries. Its priority array
// orders glob/segment entries as Vault's wcPathDescr comparison does:
// [first wildcard position, 1 unless it ends in "*", -(number of "+"
// segments), length without the "*", the pattern itself].
func (e *entry) doc() map[string]any {
	r := e.rule
	kind := r.Kind()
	prefix := strings.TrimSuffix(r.Pattern, "*")
	if kind == "exact" {
		prefix = r.Pattern
	}
	isPrefix := kind != "exact" && strings.HasSuffix(r.Pattern, "*")
	notPrefix := 1
	if isPrefix {
		notPrefix = 0
	}
	firstWC := len(prefix)
	segments := []any{}
	wildcards := 0
	if kind == "segment" {
		firstWC = strings.Index(r.Pattern, "+")
		for _, s := range strings.Split(prefix, "/") {
			segments = append(segments, s)
			if s == "+" {
				wildcards++
			}
		}
	}
	caps := map[string]any{}
	for c := range e.caps {
		caps[c] = true
	}
	capList := []any{}
	if e.caps[CapDeny] {
		capList = []any{CapDeny}
	} else {
		for _, c := range capOrder {
			if e.caps[c] {
				capList = append(capList, c)
			}
		}
	}
	granting := map[string]any{}
	for c, ps := range e.granting {
		ps = slices.Clone(ps)
		sort.Strings(ps)
		granting[c] = toAny(ps)
	}
	pols := slices.Clone(e.policies)
	sort.Strings(pols)
	constrained := len(e.required) > 0 || e.allowed != nil || e.denied != nil
	return map[string]any{
		"pattern":             r.Pattern,
		"kind":                kind,
		"prefix":              prefix,
		"segments":            segments,
		"is_prefix":           isPrefix,
		"priority":            []any{firstWC, notPrefix, -wildcards, len(prefix), prefix},
		"caps":                caps,
		"capabilities":        capList,
		"granting":            granting,
		"policies":            toAny(pols),
		"constrained":         constrained,
		"required_parameters": toAny(e.required),
		"allowed_parameters":  paramDoc(e.allowed),
		"denied_parameters":   paramDoc(e.denied),
		"wrapping":            e.minWrap > 0 || e.maxWrap > 0,
		"min_wrapping_ttl":    int64(e.minWrap / time.Second),
		"max_wrapping_ttl":    int64(e.maxWrap / time.Second),
		// gated entries carry a control group: allowed requests wait for
		// approvals (and skip the fast path of acl.rego).
		"gated":         e.cg != nil,
		"control_group": controlGroupDoc(e.cg),
	}
}

func (e *entry) sortedPolicies() []string {
	ps := slices.Clone(e.policies)
	sort.Strings(ps)
	return ps
}

// capList is the merged capabilities in Vault's order ("deny" alone when denied).
func (e *entry) capList() []string {
	if e.caps[CapDeny] {
		return []string{CapDeny}
	}
	var out []string
	for _, c := range capOrder {
		if e.caps[c] {
			out = append(out, c)
		}
	}
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// setView indexes the merged entries of one token policy set. It is
// immutable once built and shared by concurrent requests.
type setView struct {
	key      string
	policies []string // the set's policies that exist
	exact    map[string]*entry
	// tree maps the literal part of each glob/segment pattern (before the
	// first "+" or the trailing "*") to its entries; every entry whose
	// literal is a prefix of the path is a candidate.
	tree *iradix.Tree
	// paramRules: some entry constrains parameters, so the decision depends
	// on the request's parameter names; valueKeys are the (lower-cased)
	// parameters whose values are constrained.
	paramRules bool
	valueKeys  map[string]bool
	// wrapping: some entry sets min/max_wrapping_ttl.
	wrapping bool
	root     bool
	// entries is every merged entry, in policy order.
	entries []*entry
}

// newSetView merges and indexes the rules of the named policies (missing
// names are ignored, as in Vault), in the order given.
func newSetView(key string, names []string, compiled map[string][]*PathRule) (*setView, error) {
	v := &setView{key: key, exact: map[string]*entry{}, valueKeys: map[string]bool{}}
	byPattern := map[string]*entry{}
	var order []*entry
	for _, n := range names {
		if n == RootPolicy {
			v.root = true
		}
		rules, ok := compiled[n]
		if !ok {
			rules, ok = wrappingRules(n)
		}
		if !ok || slices.Contains(v.policies, n) {
			continue
		}
		v.policies = append(v.policies, n)
		// Entries name policies plainly: a set is one namespace's.
		shown := unqualify(n)
		for _, r := range rules {
			e := byPattern[r.Pattern]
			if e == nil {
				e = &entry{pattern: r.Pattern, rule: r}
				byPattern[r.Pattern] = e
				order = append(order, e)
			}
			e.add(shown, r)
		}
	}
	txn := iradix.New().Txn()
	for _, e := range order {
		t, err := ast.InterfaceToValue(e.doc())
		if err != nil {
			return nil, fmt.Errorf("authz: entry %q: %w", e.pattern, err)
		}
		e.term = ast.NewTerm(t)
		e.desc = fmt.Sprintf("rule %q (%s) in policies %q: capabilities %q", e.pattern, e.rule.Kind(), e.sortedPolicies(), e.capList())
		switch e.rule.Kind() {
		case "exact":
			v.exact[e.pattern] = e
		default:
			lit := strings.TrimSuffix(e.pattern, "*")
			if j := strings.Index(e.pattern, "+"); e.rule.Kind() == "segment" && j >= 0 {
				lit = e.pattern[:j]
			}
			var es []*entry
			if old, ok := txn.Get([]byte(lit)); ok {
				es = old.([]*entry)
			}
			txn.Insert([]byte(lit), append(es, e))
		}
		if len(e.required) > 0 || e.allowed != nil || e.denied != nil {
			v.paramRules = true
		}
		for _, m := range []map[string][]any{e.allowed, e.denied} {
			for k, vals := range m {
				if len(vals) > 0 {
					v.valueKeys[k] = true
				}
			}
		}
		if e.minWrap > 0 || e.maxWrap > 0 {
			v.wrapping = true
		}
	}
	v.tree = txn.Commit()
	v.entries = order
	return v, nil
}

// candidates returns the entries that may match path: the exact entry of
// the path (and, for list, of the path without its trailing slash) and every
// glob/segment entry whose literal prefix is a prefix of the path. Rego
// decides which one wins.
func (v *setView) candidates(path string, list bool) []*entry {
	var out []*entry
	if e := v.exact[path]; e != nil {
		out = append(out, e)
	}
	if list && strings.HasSuffix(path, "/") {
		if e := v.exact[strings.TrimSuffix(path, "/")]; e != nil {
			out = append(out, e)
		}
	}
	v.tree.Root().WalkPath([]byte(path), func(_ []byte, val any) bool {
		out = append(out, val.([]*entry)...)
		return false
	})
	return out
}

// setKey canonicalises a policy list: sorted, de-duplicated, joined.
func setKey(policies []string) string {
	sorted := sort.StringsAreSorted(policies)
	ps := policies
	if !sorted {
		ps = append([]string(nil), policies...)
		sort.Strings(ps)
	}
	n := 0
	for _, p := range ps {
		n += len(p) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range ps {
		if i > 0 && ps[i-1] == p {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p)
	}
	return b.String()
}
