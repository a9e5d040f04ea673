package authz

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// ControlGroup is a path rule's control_group stanza (Vault Enterprise's
// syntax): the request may run only once every factor has its approvals.
//
//	control_group {
//	  ttl     = "1h"     # how long the request waits (default: max_ttl, else 24h)
//	  max_ttl = "4h"
//	  factor "clinical-lead" {
//	    controlled_capabilities = ["read"]   # optional: the factor applies to these only
//	    identity {
//	      group_names = ["clinical-leads"]
//	      approvals   = 1
//	    }
//	  }
//	}
type ControlGroup struct {
	TTL     time.Duration
	MaxTTL  time.Duration
	Factors []ControlGroupFactor
}

// ControlGroupFactor is one factor of a control group.
type ControlGroupFactor struct {
	Name string
	// ControlledCapabilities limits the factor to requests needing one of
	// these capabilities; empty means every capability of the rule.
	ControlledCapabilities []string
	GroupNames             []string
	Approvals              int
	// Policy is the policy the factor comes from (set when rules merge).
	Policy string
}

// hcl1ControlGroup matches Vault's HCL 1 spelling `control_group = {`,
// which HCL 2 reads as an object expression that cannot hold the factor
// blocks; parseACL rewrites it to the block form `control_group {`, which
// HCL 1 treats the same.
var hcl1ControlGroup = regexp.MustCompile(`(?m)^([ \t]*)control_group[ \t]*=[ \t]*\{`)

// parseControlGroup reads a control_group block of the path rule r.
func parseControlGroup(b *hcl.Block, r *PathRule, bad func(string, ...any) error) (*ControlGroup, error) {
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "ttl"}, {Name: "max_ttl"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "factor", LabelNames: []string{"name"}}},
	})
	if diags.HasErrors() {
		return nil, parseError(diags)
	}
	cg := &ControlGroup{}
	for _, n := range []string{"ttl", "max_ttl"} {
		a, ok := content.Attributes[n]
		if !ok {
			continue
		}
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			return nil, parseError(d)
		}
		dur, err := framework.ParseDuration(ctyToGo(v))
		if err != nil || dur < 0 {
			return nil, bad("control_group: error parsing %s: %v", n, err)
		}
		if n == "ttl" {
			cg.TTL = dur
		} else {
			cg.MaxTTL = dur
		}
	}
	if cg.TTL > 0 && cg.MaxTTL > 0 && cg.TTL > cg.MaxTTL {
		return nil, bad("control_group: ttl cannot be greater than max_ttl")
	}
	seen := map[string]bool{}
	for _, fb := range content.Blocks {
		f, err := parseFactor(fb, r, bad)
		if err != nil {
			return nil, err
		}
		if seen[f.Name] {
			return nil, bad("control_group: factor %q is declared twice", f.Name)
		}
		seen[f.Name] = true
		cg.Factors = append(cg.Factors, f)
	}
	if len(cg.Factors) == 0 {
		return nil, bad("control_group: at least one factor is required")
	}
	return cg, nil
}

func parseFactor(b *hcl.Block, r *PathRule, bad func(string, ...any) error) (ControlGroupFactor, error) {
	f := ControlGroupFactor{Name: b.Labels[0]}
	if f.Name == "" {
		return f, bad("control_group: a factor needs a name")
	}
	content, diags := b.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "controlled_capabilities"}, {Name: "identity"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "identity"}},
	})
	if diags.HasErrors() {
		return f, parseError(diags)
	}
	if a, ok := content.Attributes["controlled_capabilities"]; ok {
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			return f, parseError(d)
		}
		caps, err := stringList(v)
		if err != nil {
			return f, bad("control_group: factor %q: controlled_capabilities: %v", f.Name, err)
		}
		for _, c := range caps {
			// Vault: the controlled capabilities are a subset of the rule's.
			if !slices.Contains(r.Capabilities, c) || c == CapDeny {
				return f, bad("control_group: factor %q: controlled capability %q is not one of the path's capabilities %q", f.Name, c, r.Capabilities)
			}
		}
		sort.Strings(caps)
		f.ControlledCapabilities = slices.Compact(caps)
	}
	// identity may be a block or (HCL 1 style) an object attribute.
	var ident map[string]cty.Value
	if a, ok := content.Attributes["identity"]; ok {
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			return f, parseError(d)
		}
		if v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
			return f, bad("control_group: factor %q: identity must be a block", f.Name)
		}
		ident = v.AsValueMap()
	}
	for _, ib := range content.Blocks {
		if ident != nil {
			return f, bad("control_group: factor %q: one identity block only", f.Name)
		}
		attrs, d := ib.Body.JustAttributes()
		if d.HasErrors() {
			return f, parseError(d)
		}
		ident = map[string]cty.Value{}
		for k, a := range attrs {
			v, d := a.Expr.Value(nil)
			if d.HasErrors() {
				return f, parseError(d)
			}
			ident[k] = v
		}
	}
	if ident == nil {
		return f, bad("control_group: factor %q: an identity block with group_names is required", f.Name)
	}
	for k, v := range ident {
		switch k {
		case "group_names":
			names, err := stringList(v)
			if err != nil {
				return f, bad("control_group: factor %q: group_names: %v", f.Name, err)
			}
			f.GroupNames = names
		case "approvals":
			n, ok := ctyToGo(v).(int64)
			if !ok || n < 1 {
				return f, bad("control_group: factor %q: approvals must be a whole number of at least 1", f.Name)
			}
			f.Approvals = int(n)
		default:
			return f, bad("control_group: factor %q: identity: unsupported argument %q (group_names and approvals are)", f.Name, k)
		}
	}
	if len(f.GroupNames) == 0 {
		return f, bad("control_group: factor %q: group_names must name at least one identity group", f.Name)
	}
	if f.Approvals == 0 {
		f.Approvals = 1
	}
	return f, nil
}

// mergeControlGroup merges the control group of another policy's rule of
// the same pattern into cg (nil when neither has one): factors are united
// (every one must be satisfied; a factor name already present keeps its
// first definition), and the lowest non-zero ttl and max_ttl are kept.
func mergeControlGroup(cg *ControlGroup, add *ControlGroup, policy string) *ControlGroup {
	if add == nil {
		return cg
	}
	if cg == nil {
		cg = &ControlGroup{TTL: add.TTL, MaxTTL: add.MaxTTL}
	} else {
		if add.TTL > 0 && (cg.TTL == 0 || add.TTL < cg.TTL) {
			cg.TTL = add.TTL
		}
		if add.MaxTTL > 0 && (cg.MaxTTL == 0 || add.MaxTTL < cg.MaxTTL) {
			cg.MaxTTL = add.MaxTTL
		}
	}
	for _, f := range add.Factors {
		if slices.ContainsFunc(cg.Factors, func(g ControlGroupFactor) bool { return g.Name == f.Name }) {
			continue
		}
		f.Policy = policy
		cg.Factors = append(cg.Factors, f)
	}
	return cg
}

// controlGroupDoc is a merged control group in an ACL entry's document.
func controlGroupDoc(cg *ControlGroup) any {
	if cg == nil {
		return nil
	}
	factors := make([]any, len(cg.Factors))
	for i, f := range cg.Factors {
		factors[i] = map[string]any{
			"name":                    f.Name,
			"policy":                  f.Policy,
			"controlled_capabilities": toAny(f.ControlledCapabilities),
			"group_names":             toAny(f.GroupNames),
			"approvals":               f.Approvals,
		}
	}
	return map[string]any{
		"ttl":     int64(cg.TTL / time.Second),
		"max_ttl": int64(cg.MaxTTL / time.Second),
		"factors": factors,
	}
}

// approvalFromDoc turns an approval document — the ACL result's or a
// custom module's require_approval — into a core.Approval. A module may
// give an object {"factors": [...], "ttl": ..., "max_ttl": ...} or the
// list (set) of factors alone; each factor is {"name", "group_names",
// "approvals" (default 1)}; durations are seconds or strings ("4h"). No
// factor at all asks for nothing (nil).
// source names the policy or module, unless a factor names its own.
func approvalFromDoc(doc any, source string) (*core.Approval, error) {
	var factors []any
	a := &core.Approval{}
	switch v := doc.(type) {
	case nil:
		return nil, nil
	case []any:
		factors = v
	case map[string]any:
		fs, ok := v["factors"].([]any)
		if !ok {
			return nil, fmt.Errorf("require_approval has no list of factors")
		}
		factors = fs
		for _, k := range []string{"ttl", "max_ttl"} {
			raw, ok := v[k]
			if !ok {
				continue
			}
			d, err := framework.ParseDuration(raw)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("require_approval: %s: %v", k, err)
			}
			if k == "ttl" {
				a.TTL = d
			} else {
				a.MaxTTL = d
			}
		}
	default:
		return nil, fmt.Errorf("require_approval is %T, not an object or a list of factors", doc)
	}
	if len(factors) == 0 {
		// An empty set (a partial rule whose conditions all failed) or
		// list asks for nothing.
		return nil, nil
	}
	sources := map[string]bool{}
	for i, raw := range factors {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("require_approval: factor %d is %T, not an object", i, raw)
		}
		f := core.ApprovalFactor{Approvals: 1}
		f.Name, _ = m["name"].(string)
		if f.Name == "" {
			f.Name = fmt.Sprintf("factor-%d", i+1)
		}
		names, err := docStrings(m["group_names"])
		if err != nil || len(names) == 0 {
			return nil, fmt.Errorf("require_approval: factor %q needs group_names (a non-empty list of group names)", f.Name)
		}
		f.GroupNames = names
		if n, ok := m["approvals"]; ok {
			k, err := docInt(n)
			if err != nil || k < 1 {
				return nil, fmt.Errorf("require_approval: factor %q: approvals must be a whole number of at least 1", f.Name)
			}
			f.Approvals = k
		}
		src := source
		if p, _ := m["policy"].(string); p != "" {
			src = "acl:" + p
		}
		sources[src] = true
		a.Factors = append(a.Factors, f)
	}
	for s := range sources {
		a.Sources = append(a.Sources, s)
	}
	sort.Strings(a.Sources)
	return a, nil
}

// mergeApprovals unites approval requirements: all factors (a factor name
// appearing twice keeps the stricter number of approvals, the groups of
// the first), the lowest non-zero TTL and MaxTTL, every source.
func mergeApprovals(as ...*core.Approval) *core.Approval {
	var out *core.Approval
	for _, a := range as {
		if a == nil {
			continue
		}
		if out == nil {
			c := *a
			c.Factors = slices.Clone(a.Factors)
			c.Sources = slices.Clone(a.Sources)
			out = &c
			continue
		}
		if a.TTL > 0 && (out.TTL == 0 || a.TTL < out.TTL) {
			out.TTL = a.TTL
		}
		if a.MaxTTL > 0 && (out.MaxTTL == 0 || a.MaxTTL < out.MaxTTL) {
			out.MaxTTL = a.MaxTTL
		}
		for _, f := range a.Factors {
			i := slices.IndexFunc(out.Factors, func(g core.ApprovalFactor) bool { return g.Name == f.Name })
			if i < 0 {
				out.Factors = append(out.Factors, f)
			} else if f.Approvals > out.Factors[i].Approvals {
				out.Factors[i].Approvals = f.Approvals
			}
		}
		for _, s := range a.Sources {
			if !slices.Contains(out.Sources, s) {
				out.Sources = append(out.Sources, s)
			}
		}
	}
	if out != nil {
		sort.Strings(out.Sources)
	}
	return out
}

// docInt reads a whole number from a decision document.
func docInt(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case float64:
		if n == float64(int(n)) {
			return int(n), nil
		}
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		return int(i), err
	}
	return 0, fmt.Errorf("%v is not a whole number", v)
}

// DescribeApproval words an approval requirement for explanations and
// errors: `factor "clinical-lead": 1 approval from groups ["clinical-leads"]
// (required by acl:phi)`.
func DescribeApproval(a *core.Approval) string {
	var b strings.Builder
	for i, f := range a.Factors {
		if i > 0 {
			b.WriteString("; ")
		}
		noun := "approvals"
		if f.Approvals == 1 {
			noun = "approval"
		}
		fmt.Fprintf(&b, "factor %q: %d %s from groups %q", f.Name, f.Approvals, noun, f.GroupNames)
	}
	if len(a.Sources) > 0 {
		fmt.Fprintf(&b, " (required by %s)", strings.Join(a.Sources, ", "))
	}
	return b.String()
}
