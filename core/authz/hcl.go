package authz

import (
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Capabilities a path rule can grant, in Vault's vocabulary.
const (
	CapDeny   = "deny"
	CapCreate = "create"
	CapRead   = "read"
	CapUpdate = "update"
	CapPatch  = "patch"
	CapDelete = "delete"
	CapList   = "list"
	CapSudo   = "sudo"
)

var validCaps = map[string]bool{CapCreate: true, CapRead: true, CapUpdate: true, CapPatch: true, CapDelete: true, CapList: true, CapSudo: true, CapDeny: true}

// Policy is a parsed Vault ACL policy.
type Policy struct {
	Name  string
	Raw   string
	Paths []*PathRule
}

// PathRule is one `path "..." { ... }` stanza, normalised as Vault's parser
// does: the leading "/" stripped, old-style `policy = "..."` mapped to
// capabilities, "deny" standing alone, parameter keys lower-cased.
type PathRule struct {
	Pattern            string
	Capabilities       []string
	RequiredParameters []string
	// AllowedParameters and DeniedParameters map a lower-cased parameter name
	// (or "*") to the permitted/forbidden values; an empty list means any
	// value. nil when the stanza does not set them.
	AllowedParameters map[string][]any
	DeniedParameters  map[string][]any
	MinWrappingTTL    time.Duration
	MaxWrappingTTL    time.Duration
	// Templated paths contain {{identity...}} placeholders. Vigil has no
	// identity store, so such rules never match (Vault skips a templated
	// path it cannot resolve).
	Templated bool
	// ControlGroup, when set, makes allowed requests wait for approvals.
	ControlGroup *ControlGroup
}

// Kind classifies a rule's pattern: "exact", "prefix" (ends in "*") or
// "segment" (contains "+" segments, optionally ending in "*").
func (r *PathRule) Kind() string {
	switch {
	case r.hasSegmentWildcards():
		return "segment"
	case strings.HasSuffix(r.Pattern, "*"):
		return "prefix"
	}
	return "exact"
}

// hasSegmentWildcards is Vault's test (vault/policy.go parsePaths).
func (r *PathRule) hasSegmentWildcards() bool {
	p := r.Pattern
	return p == "+" || strings.Contains(p, "/+") || strings.HasPrefix(p, "+/")
}

// Old-style `policy = "..."` values (Vault keeps them for compatibility).
var oldPolicies = map[string][]string{
	"deny":  {CapDeny},
	"read":  {CapRead, CapList},
	"write": {CapCreate, CapRead, CapUpdate, CapDelete, CapList},
	"sudo":  {CapCreate, CapRead, CapUpdate, CapDelete, CapList, CapSudo},
}

// ParseACL parses an ACL policy in HCL (or JSON, when the text starts with
// "{"), accepting Vault's policy syntax. Errors are CodeInvalid *core.Error
// values whose message names the line and column ("policy.hcl:3,5-9: ...").
// name is only used in messages and stored in the result.
func ParseACL(name, src string) (*Policy, error) {
	file := name + ".hcl"
	trimmed := strings.TrimSpace(src)
	isJSON := strings.HasPrefix(trimmed, "{")
	var f *hcl.File
	var diags hcl.Diagnostics
	if isJSON {
		file = name + ".json"
		f, diags = hcljson.Parse([]byte(src), file)
	} else {
		f, diags = hclsyntax.ParseConfig([]byte(hcl1ControlGroup.ReplaceAllString(src, "${1}control_group {")), file, hcl.InitialPos)
	}
	if diags.HasErrors() {
		return nil, parseError(diags)
	}
	content, diags := f.Body.Content(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "name"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "path", LabelNames: []string{"path"}}},
	})
	if diags.HasErrors() {
		return nil, parseError(diags)
	}
	p := &Policy{Name: name, Raw: src}
	for _, b := range content.Blocks {
		r, err := parsePath(b, isJSON)
		if err != nil {
			return nil, err
		}
		p.Paths = append(p.Paths, r)
	}
	return p, nil
}

func parseError(diags hcl.Diagnostics) error {
	var msgs []string
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		m := d.Summary
		if d.Detail != "" {
			m += "; " + d.Detail
		}
		if d.Subject != nil {
			m = d.Subject.String() + ": " + m
		}
		msgs = append(msgs, m)
	}
	return core.Invalid("failed to parse policy: %s", strings.Join(msgs, "\n"))
}

func pathSchema(isJSON bool) *hcl.BodySchema {
	s := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "comment"}, {Name: "policy"}, {Name: "capabilities"}, {Name: "required_parameters"},
		{Name: "min_wrapping_ttl"}, {Name: "max_wrapping_ttl"}, {Name: "mfa_methods"},
	}}
	if isJSON {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: "allowed_parameters"},
			hcl.AttributeSchema{Name: "denied_parameters"})
		s.Blocks = []hcl.BlockHeaderSchema{{Type: "control_group"}}
		return s
	}
	// In HCL the parameter maps may be written `allowed_parameters = {...}`
	// or as a block `allowed_parameters { key = [...] }`.
	s.Blocks = []hcl.BlockHeaderSchema{{Type: "allowed_parameters"}, {Type: "denied_parameters"}, {Type: "control_group"}}
	return s
}

func parsePath(b *hcl.Block, isJSON bool) (*PathRule, error) {
	key := b.Labels[0]
	where := b.DefRange.String()
	bad := func(format string, args ...any) error {
		return core.Invalid("failed to parse policy: %s: path %q: %s", where, key, fmt.Sprintf(format, args...))
	}
	var content *hcl.BodyContent
	var diags hcl.Diagnostics
	if isJSON {
		content, diags = b.Body.Content(pathSchema(true))
	} else {
		// Attribute and block forms of the parameter maps share a name; try
		// the schema with blocks first, which also accepts the attributes.
		schema := pathSchema(false)
		for _, n := range []string{"allowed_parameters", "denied_parameters"} {
			schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: n})
		}
		content, diags = b.Body.Content(schema)
	}
	if diags.HasErrors() {
		return nil, parseError(diags)
	}
	r := &PathRule{Pattern: strings.TrimPrefix(key, "/")}
	r.Templated = strings.Contains(r.Pattern, "{{")
	if strings.Contains(r.Pattern, "+*") {
		return nil, bad("invalid use of wildcards ('+*' is forbidden)")
	}
	attr := func(n string) (cty.Value, bool, error) {
		a, ok := content.Attributes[n]
		if !ok {
			return cty.NilVal, false, nil
		}
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			return cty.NilVal, true, parseError(d)
		}
		return v, true, nil
	}
	var caps []string
	if v, ok, err := attr("capabilities"); err != nil {
		return nil, err
	} else if ok {
		ss, err := stringList(v)
		if err != nil {
			return nil, bad("capabilities: %v", err)
		}
		caps = ss
	}
	if v, ok, err := attr("policy"); err != nil {
		return nil, err
	} else if ok {
		if v.Type() != cty.String || v.IsNull() {
			return nil, bad("policy must be a string")
		}
		old, found := oldPolicies[v.AsString()]
		if !found {
			return nil, bad("invalid policy %q", v.AsString())
		}
		if v.AsString() == "deny" {
			caps = nil
		}
		caps = append(caps, old...)
	}
	seen := map[string]bool{}
	for _, c := range caps {
		if !validCaps[c] {
			return nil, bad("invalid capability %q", c)
		}
		if c == CapDeny {
			r.Capabilities = []string{CapDeny}
			return r, nil
		}
		if !seen[c] {
			seen[c] = true
			r.Capabilities = append(r.Capabilities, c)
		}
	}
	sort.Strings(r.Capabilities)
	for _, n := range []string{"allowed_parameters", "denied_parameters"} {
		m, err := paramMap(content, n, isJSON)
		if err != nil {
			return nil, bad("%s: %v", n, err)
		}
		if n == "allowed_parameters" {
			r.AllowedParameters = m
		} else {
			r.DeniedParameters = m
		}
	}
	for _, n := range []string{"min_wrapping_ttl", "max_wrapping_ttl"} {
		v, ok, err := attr(n)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		d, err := framework.ParseDuration(ctyToGo(v))
		if err != nil || d < 0 {
			return nil, bad("error parsing %s: %v", n, err)
		}
		if n == "min_wrapping_ttl" {
			r.MinWrappingTTL = d
		} else {
			r.MaxWrappingTTL = d
		}
	}
	if r.MinWrappingTTL != 0 && r.MaxWrappingTTL != 0 && r.MaxWrappingTTL < r.MinWrappingTTL {
		return nil, bad("max_wrapping_ttl cannot be less than min_wrapping_ttl")
	}
	for _, blk := range content.Blocks {
		if blk.Type != "control_group" {
			continue
		}
		if r.ControlGroup != nil {
			return nil, bad("control_group: one control_group per path")
		}
		cg, err := parseControlGroup(blk, r, bad)
		if err != nil {
			return nil, err
		}
		r.ControlGroup = cg
	}
	if v, ok, err := attr("required_parameters"); err != nil {
		return nil, err
	} else if ok {
		ss, err := stringList(v)
		if err != nil {
			return nil, bad("required_parameters: %v", err)
		}
		for _, s := range ss {
			if strings.Contains(s, "*") {
				return nil, bad("required_parameters: parameter key %q: wildcard is not permitted here", s)
			}
		}
		r.RequiredParameters = ss
	}
	return r, nil
}

// paramMap reads allowed_parameters/denied_parameters in attribute or block
// form. Keys are lower-cased; values must be lists.
func paramMap(content *hcl.BodyContent, n string, isJSON bool) (map[string][]any, error) {
	raw := map[string]cty.Value{}
	found := false
	if a, ok := content.Attributes[n]; ok {
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			return nil, parseError(d)
		}
		if v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType()) {
			return nil, fmt.Errorf("must be a map of parameter names to lists of values")
		}
		for k, e := range v.AsValueMap() {
			raw[k] = e
		}
		found = true
	}
	if !isJSON {
		for _, blk := range content.Blocks {
			if blk.Type != n {
				continue
			}
			attrs, d := blk.Body.JustAttributes()
			if d.HasErrors() {
				return nil, parseError(d)
			}
			for k, a := range attrs {
				v, d := a.Expr.Value(nil)
				if d.HasErrors() {
					return nil, parseError(d)
				}
				raw[k] = v
			}
			found = true
		}
	}
	if !found {
		return nil, nil
	}
	out := make(map[string][]any, len(raw))
	for k, v := range raw {
		if strings.HasPrefix(k, "/") {
			return nil, fmt.Errorf("parameter key %q: JSON pointer keys are not supported", k)
		}
		if strings.Contains(k, "*") && k != "*" {
			return nil, fmt.Errorf("parameter key %q cannot contain non-tail wildcards", k)
		}
		g := ctyToGo(v)
		list, ok := g.([]any)
		if !ok {
			return nil, fmt.Errorf("parameter %q: values must be a list", k)
		}
		out[strings.ToLower(k)] = list
	}
	return out, nil
}

func stringList(v cty.Value) ([]string, error) {
	g, ok := ctyToGo(v).([]any)
	if !ok {
		return nil, fmt.Errorf("must be a list of strings")
	}
	out := make([]string, 0, len(g))
	for _, e := range g {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("must be a list of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// ctyToGo converts an HCL value to plain Go (string, int64, float64, bool,
// []any, map[string]any, nil).
func ctyToGo(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Bool:
		return v.True()
	case t == cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInt() {
			if i, acc := bf.Int64(); acc == big.Exact {
				return i
			}
		}
		f, _ := bf.Float64()
		return f
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, ctyToGo(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for k, e := range v.AsValueMap() {
			out[k] = ctyToGo(e)
		}
		return out
	}
	return nil
}
