package authz

import (
	"regexp"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/vigilsec/vigil/core"
	vrego "github.com/vigilsec/vigil/rego"
)

// Enforcement levels of custom Rego modules.
const (
	// LevelMandatory: deny reasons deny the request; allow grants it.
	LevelMandatory = "mandatory"
	// LevelAdvisory: deny reasons are recorded as advisories only and allow
	// grants nothing.
	LevelAdvisory = "advisory"
)

var moduleNameRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Module is a custom Rego module stored under sys/policies/rego/<name>.
type Module struct {
	Name   string `json:"name"`
	Source string `json:"policy"`
	Level  string `json:"enforcement_level"`
}

// forbiddenBuiltins are refused in custom modules: network and environment
// access has no place on the authorization hot path.
var forbiddenBuiltins = map[string]bool{
	"http.send":          true,
	"net.lookup_ip_addr": true,
	"opa.runtime":        true,
}

// moduleCapabilities are the builtins custom modules (and the bundle) may use.
var moduleCapabilities = func() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	keep := c.Builtins[:0]
	for _, b := range c.Builtins {
		if !forbiddenBuiltins[b.Name] {
			keep = append(keep, b)
		}
	}
	c.Builtins = keep
	return c
}()

// checkModule validates a module before it is compiled with the bundle:
// name, enforcement level, syntax (errors carry file:line) and the package,
// which must be vigil.custom.<name>. It returns the parsed module.
func checkModule(m *Module) (*ast.Module, error) {
	if !moduleNameRe.MatchString(m.Name) {
		return nil, core.Invalid("rego policy name %q must match %s (it is the last element of the module's package)", m.Name, moduleNameRe)
	}
	if m.Level != LevelMandatory && m.Level != LevelAdvisory {
		return nil, core.Invalid("enforcement_level must be %q or %q, not %q", LevelAdvisory, LevelMandatory, m.Level)
	}
	if strings.TrimSpace(m.Source) == "" {
		return nil, core.Invalid("'policy' parameter not supplied or empty")
	}
	parsed, err := ast.ParseModuleWithOpts(m.Name+".rego", m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, core.Invalid("rego policy %s does not compile: %v", m.Name, err)
	}
	want := "data." + vrego.CustomPackage + "." + m.Name
	if got := parsed.Package.Path.String(); got != want {
		return nil, core.Invalid("rego policy %s: package must be %q, not %q", m.Name, strings.TrimPrefix(want, "data."), strings.TrimPrefix(got, "data."))
	}
	defines := false
	for _, r := range parsed.Rules {
		switch r.Head.Name.String() {
		case "deny", "allow", "flags", "require_approval":
			defines = true
		}
		if len(r.Head.Ref()) > 0 {
			switch r.Head.Ref()[0].String() {
			case "deny", "allow", "flags", "require_approval":
				defines = true
			}
		}
	}
	if !defines {
		return nil, core.Invalid("rego policy %s defines none of the rules deny, allow, flags or require_approval", m.Name)
	}
	return parsed, nil
}

// inputReads describes which parts of the input custom modules read, so
// that cached decisions are keyed by exactly those values.
type inputReads struct {
	// paths are input paths ("request.remote_addr", "token.metadata.team",
	// "request.headers") whose values join the cache key.
	paths []string
	// volatile names why decisions may not be cached at all ("" when they
	// may): a module reads the request time or id, the whole request or
	// input, or calls a non-deterministic builtin.
	volatile string
}

// volatileInputs are per-request values: a decision that reads them is
// never served from the cache.
var volatileInputs = map[string]bool{"request.time": true, "request.time_ns": true, "request.id": true}

// analyzeModules inspects compiled custom modules (refs are fully resolved
// after compilation, so imports and aliases are accounted for).
func analyzeModules(mods []*ast.Module) inputReads {
	set := map[string]bool{}
	var volatile []string
	for _, m := range mods {
		name := strings.TrimPrefix(m.Package.Path.String(), "data."+vrego.CustomPackage+".")
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if !r.HasPrefix(ast.InputRootRef) {
				return false
			}
			var parts []string
			for _, t := range r[1:] {
				s, ok := t.Value.(ast.String)
				if !ok || len(parts) == 3 {
					break
				}
				parts = append(parts, string(s))
			}
			p := strings.Join(parts, ".")
			switch {
			case len(parts) == 0:
				volatile = append(volatile, name+" reads the whole input")
			case parts[0] == "request" && len(parts) == 1:
				volatile = append(volatile, name+" reads the whole request")
			case len(parts) >= 2 && volatileInputs[parts[0]+"."+parts[1]]:
				volatile = append(volatile, name+" reads input."+parts[0]+"."+parts[1])
			default:
				set[p] = true
			}
			return false
		})
		check := func(op string) {
			if b, ok := ast.BuiltinMap[op]; ok && b.Nondeterministic {
				volatile = append(volatile, name+" calls "+op)
			}
		}
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() {
				check(e.Operator().String())
			}
			return false
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
				check(c[0].String())
			}
			return false
		})
	}
	out := inputReads{}
	for p := range set {
		out.paths = append(out.paths, p)
	}
	sort.Strings(out.paths)
	if len(volatile) > 0 {
		sort.Strings(volatile)
		out.volatile = strings.Join(dedupe(volatile), "; ")
	}
	return out
}

func dedupe(ss []string) []string {
	out := ss[:0]
	for i, s := range ss {
		if i == 0 || ss[i-1] != s {
			out = append(out, s)
		}
	}
	return out
}
