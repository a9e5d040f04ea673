package authz

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// HeaderPrefix selects request headers for the input document: every header
// whose canonical name starts with it (X-Vigil-Reason, X-Vigil-Ticket, ...)
// is included, plus those named in Config.Headers.
const HeaderPrefix = "X-Vigil-"

// The input document is built directly as an OPA value: converting a Go map
// with ast.InterfaceToValue costs more than the whole evaluation.

func str(s string) *ast.Term                  { return ast.StringTerm(s) }
func num(n int64) *ast.Term                   { return ast.NewTerm(ast.Number(strconv.FormatInt(n, 10))) }
func boolean(b bool) *ast.Term                { return ast.BooleanTerm(b) }
func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(ast.StringTerm(k), v) }

func strMap(m map[string]string) *ast.Term {
	items := make([][2]*ast.Term, 0, len(m))
	for k, v := range m {
		items = append(items, item(k, str(v)))
	}
	return ast.NewTerm(ast.NewObject(items...))
}

func strArray(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = str(s)
	}
	return ast.ArrayTerm(ts...)
}

// buildInput returns the input document for req (schema in the package
// doc). cands and values fill input.acl.
func (a *Authz) buildInput(req *core.Request, now time.Time, cands []*entry, values map[string]any) ast.Object {
	return a.buildInputFor(req, now, cands, values, true)
}

// buildInputFor builds the whole input when full, else only what the bundle
// itself reads (token.policies and the request's path, operation, parameter
// names, sudo flag and wrapping TTL): without custom modules nothing else is
// read, and the smaller document halves the evaluation's fixed cost.
func (a *Authz) buildInputFor(req *core.Request, now time.Time, cands []*entry, values map[string]any, full bool) ast.Object {
	p := req.Principal
	if p == nil {
		p = &core.Principal{}
	}
	cl := make([]*ast.Term, len(cands))
	for i, e := range cands {
		cl[i] = e.term
	}
	vals := ast.NewObject()
	if len(values) > 0 {
		if v, err := ast.InterfaceToValue(values); err == nil {
			if o, ok := v.(ast.Object); ok {
				vals = o
			}
		}
	}
	aclObj := ast.ObjectTerm(item("entries", ast.ArrayTerm(cl...)), item("values", ast.NewTerm(vals)))
	if !full {
		return ast.NewObject(
			item("token", ast.ObjectTerm(item("policies", strArray(p.Policies)))),
			item("request", ast.ObjectTerm(
				item("path", str(req.Path)),
				item("operation", str(string(req.Operation))),
				item("parameters", strArray(paramNames(req.Data))),
				item("sudo_required", boolean(req.SudoRequired)),
				item("wrap_ttl", num(wrapTTL(req))),
			)),
			item("acl", aclObj),
		)
	}
	t := req.Time
	if t.IsZero() {
		t = now
	}
	token := ast.NewObject(
		item("accessor", str(p.Accessor)),
		item("display_name", str(p.DisplayName)),
		item("policies", strArray(p.Policies)),
		item("token_policies", strArray(p.TokenPolicies)),
		item("metadata", strMap(p.Metadata)),
		item("entity_id", str(p.EntityID)),
		item("type", str(p.TokenType)),
		item("ttl", num(int64(p.TTL/time.Second))),
		item("issue_time", str(rfc3339(p.IssueTime))),
		item("issue_time_ns", num(unixNano(p.IssueTime))),
		item("expire_time", str(rfc3339(p.ExpireTime))),
		item("root", boolean(p.Root)),
		item("orphan", boolean(p.Orphan)),
		item("creation_path", str(p.CreationPath)),
		item("num_uses_left", num(int64(p.NumUsesLeft))),
	)
	request := ast.NewObject(
		item("id", str(req.ID)),
		item("path", str(req.Path)),
		item("operation", str(string(req.Operation))),
		item("parameters", strArray(paramNames(req.Data))),
		item("remote_addr", str(req.RemoteAddr)),
		item("time", str(t.UTC().Format(time.RFC3339Nano))),
		item("time_ns", num(t.UnixNano())),
		item("headers", strMap(a.selectHeaders(req))),
		item("sudo_required", boolean(req.SudoRequired)),
		item("wrap_ttl", num(wrapTTL(req))),
	)
	var mount ast.Object
	if m := req.Mount; m != nil {
		mount = ast.NewObject(item("path", str(m.Path)), item("type", str(m.Type)), item("accessor", str(m.Accessor)),
			item("class", str(m.Class)), item("tags", strMap(m.Tags)), item("options", strMap(m.Options)), item("local", boolean(m.Local)))
	} else {
		mount = ast.NewObject(item("path", str("")), item("type", str("")), item("accessor", str("")), item("class", str("")),
			item("tags", strMap(nil)), item("options", strMap(nil)), item("local", boolean(false)))
	}
	ns := req.NS()
	if ns.IsRoot() {
		ns = core.RootNamespace
	}
	return ast.NewObject(
		item("token", ast.NewTerm(token)),
		item("identity", identityTerm(p.Identity)),
		item("request", ast.NewTerm(request)),
		item("mount", ast.NewTerm(mount)),
		item("namespace", ast.ObjectTerm(item("id", str(ns.ID)), item("path", str(ns.Path)))),
		item("acl", aclObj),
	)
}

// identityTerm is input.identity: the token's entity as the identity
// store resolved it for this request (every member present, empty when
// the token has no entity).
func identityTerm(id *core.Identity) *ast.Term {
	if id == nil {
		id = &core.Identity{}
	}
	return ast.ObjectTerm(
		item("entity_id", str(id.EntityID)),
		item("name", str(id.EntityName)),
		item("actor", str(id.Actor)),
		item("alias", str(id.Alias)),
		item("metadata", strMap(id.Metadata)),
		item("groups", strArray(id.Groups)),
		item("group_ids", strArray(id.GroupIDs)),
		item("policies", strArray(id.Policies)),
	)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// paramNames returns the request's parameter names, sorted (values are never
// part of the custom-module input).
func paramNames(data map[string]any) []string {
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (a *Authz) selectHeaders(req *core.Request) map[string]string {
	out := map[string]string{}
	for k, v := range req.Headers {
		if len(v) == 0 {
			continue
		}
		if strings.HasPrefix(k, HeaderPrefix) || a.extraHeaders[k] {
			out[k] = v[0]
		}
	}
	return out
}

// wrapTTL is the requested response-wrapping TTL in seconds (0: none):
// Request.WrapTTL, which the HTTP layer reads from X-Vault-Wrap-TTL, else
// the header itself (requests built for explain).
func wrapTTL(req *core.Request) int64 {
	if req.WrapTTL > 0 {
		return int64(req.WrapTTL / time.Second)
	}
	h := req.Header("X-Vault-Wrap-TTL")
	if h == "" {
		return 0
	}
	d, err := framework.ParseDuration(h)
	if err != nil || d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

// constrainedValues returns the values of the request parameters whose
// lower-cased names have value constraints in the set's rules.
func constrainedValues(v *setView, data map[string]any) map[string]any {
	if len(v.valueKeys) == 0 || len(data) == 0 {
		return nil
	}
	var out map[string]any
	for k, val := range data {
		if v.valueKeys[strings.ToLower(k)] {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = val
		}
	}
	return out
}

// cacheKey builds the decision-cache key: policy set, operation, sudo flag
// and path, plus only what the relevant rules and modules read: parameter
// names when a rule constrains parameters, constrained values, the wrapping
// TTL when a rule sets wrapping limits, and each input path custom modules
// read. ok is false when the decision must not be cached.
func (a *Authz) cacheKey(st *state, v *setView, req *core.Request, now time.Time) (key string, ok bool) {
	if st.reads.volatile != "" && !v.root {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(v.key) + len(req.Path) + 16)
	b.WriteString(v.key)
	b.WriteByte(0)
	b.WriteString(string(req.Operation))
	if req.SudoRequired {
		b.WriteString("\x00s")
	} else {
		b.WriteString("\x00-")
	}
	b.WriteByte(0)
	b.WriteString(req.Path)
	if v.root {
		return b.String(), true
	}
	if v.paramRules && len(req.Data) > 0 {
		b.WriteString("\x00P")
		for _, n := range paramNames(req.Data) {
			b.WriteString(n)
			b.WriteByte(1)
		}
		if vals := constrainedValues(v, req.Data); len(vals) > 0 {
			j, err := json.Marshal(vals)
			if err != nil {
				return "", false
			}
			b.WriteString("\x00V")
			b.Write(j)
		}
	}
	if v.wrapping {
		b.WriteString("\x00W")
		b.WriteString(strconv.FormatInt(wrapTTL(req), 10))
	}
	if len(st.reads.paths) > 0 {
		in := a.buildInput(req, now, nil, nil)
		for _, p := range st.reads.paths {
			switch p {
			case "request.path", "request.operation", "token.policies":
				continue
			}
			b.WriteString("\x00")
			b.WriteString(p)
			b.WriteByte('=')
			if t := lookupPath(in, p); t != nil {
				b.WriteString(t.String())
			} else {
				b.WriteString("undefined")
			}
		}
	}
	return b.String(), true
}

func lookupPath(doc ast.Object, p string) *ast.Term {
	var cur ast.Value = doc
	var t *ast.Term
	for _, part := range strings.Split(p, ".") {
		o, ok := cur.(ast.Object)
		if !ok {
			return nil
		}
		t = o.Get(ast.StringTerm(part))
		if t == nil {
			return nil
		}
		cur = t.Value
	}
	return t
}
