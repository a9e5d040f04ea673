package wire_test

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/vigilsec/vigil"

// layer is one layer of docs/design.md. Patterns are module-relative
// package paths; "x/..." matches x and everything under it. A package
// belongs to the first layer (in layers' order) one of whose patterns
// matches it.
type layer struct {
	name     string
	patterns []string
}

var layers = []layer{
	// Harnesses first: they live under the packages they support.
	{"harnesses", []string{"core/engine/enginetest", "core/engine/database/internal/dbtest", "audit/ship/shiptest",
		"reports/query/querytest", "reports/query/querybench", "core/seal/sealtest"}},
	{"domain", []string{"core"}},
	{"foundations", []string{"core/storage", "core/config", "core/shamir", "core/framework", "core/testsvc", "core/safetext", "rego",
		"core/auth/tokenutil", "core/tools", "audit/chain", "audit/merkle", "audit/witness", "audit/hmac", "audit/diskwatch", "audit/format/..."}},
	{"audit heart", []string{"audit"}},
	{"engines", []string{"core/engine/...", "core/auth/..."}},
	{"http", []string{"core/httpapi"}},
	{"machinery", []string{"core/barrier", "core/seal/...", "core/raftstore", "core/router", "core/token", "core/identity", "core/namespace", "core/clustertls", "core/system",
		"core/cubbyhole", "core/wrapping"}},
	{"subsystems", []string{"core/authz", "core/lease", "audit/auditsvc", "audit/ship/...", "reports/...", "compliance", "core/autosnapshot"}},
	{"assembly", []string{"core/server/..."}},
	{"tools", []string{"bench"}},
	{"wiring", []string{"cmd/..."}},
}

// rule is one import rule: the dependencies of the packages it covers
// (a layer, or patterns) must be in one of the allowed layers or patterns
// when any is given, and never in a forbidden one.
type rule struct {
	name                     string
	layer                    string
	pkgs                     []string
	allowLayers, allowPkgs   []string
	forbidLayers, forbidPkgs []string
	allowNothing             bool
	exceptLayer              string // with pkgs: packages of this layer are not covered
}

var rules = []rule{
	{name: "the domain imports no other Vigil package", layer: "domain", allowNothing: true},
	{name: "foundations import only the domain and other foundations", layer: "foundations", allowLayers: []string{"domain", "foundations"}},
	{name: "the audit heart imports only core and the audit foundations", layer: "audit heart",
		allowLayers: []string{"domain"}, allowPkgs: []string{"audit/chain", "audit/merkle", "audit/hmac", "audit/diskwatch", "audit/format/..."}},
	{name: "engines import only the domain and the foundations", layer: "engines",
		allowLayers: []string{"domain", "foundations"}},
	{name: "the HTTP layer reaches engines only through core.Dispatcher", layer: "http", allowLayers: []string{"domain"}},
	{name: "the machinery imports no audit, engine, subsystem, HTTP or server package", layer: "machinery",
		allowLayers: []string{"domain", "foundations", "machinery"}},
	{name: "subsystems get capabilities through their Host, never the server's parts", layer: "subsystems",
		forbidLayers: []string{"assembly", "wiring", "engines", "http", "harnesses"},
		forbidPkgs:   []string{"core/raftstore", "core/barrier", "core/seal", "core/router", "core/system"}},
	{name: "audit never imports compliance or reports", pkgs: []string{"audit/..."}, forbidPkgs: []string{"compliance", "reports/..."}},
	{name: "compliance never imports reports", pkgs: []string{"compliance"}, forbidPkgs: []string{"reports/..."}},
	{name: "the assembly imports no subsystem, engine or wiring", layer: "assembly",
		allowLayers: []string{"domain", "foundations", "machinery", "http", "assembly"}},
	{name: "harnesses never import the server or the wiring", layer: "harnesses", forbidLayers: []string{"assembly", "wiring"}},
	{name: "tools import no Vigil package", layer: "tools", allowNothing: true},
	{name: "nothing outside cmd imports cmd", pkgs: []string{"..."}, exceptLayer: "wiring", forbidLayers: []string{"wiring"}},
}

func match(rel string, patterns []string) bool {
	for _, p := range patterns {
		if p == "..." || p == rel {
			return true
		}
		if base, ok := strings.CutSuffix(p, "/..."); ok && (rel == base || strings.HasPrefix(rel, base+"/")) {
			return true
		}
	}
	return false
}

func layerOf(rel string) string {
	for _, l := range layers {
		if match(rel, l.patterns) {
			return l.name
		}
	}
	return ""
}

func has(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// violations checks a dependency graph (module-relative package -> its
// module-relative dependencies, transitive) against the rules.
func violations(deps map[string][]string) []string {
	var out []string
	pkgs := make([]string, 0, len(deps))
	for p := range deps {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		if layerOf(p) == "" {
			out = append(out, p+" belongs to no layer: place it in docs/design.md and in layers_test.go")
		}
	}
	for _, r := range rules {
		covered := 0
		for _, p := range pkgs {
			if r.layer != "" && layerOf(p) != r.layer || r.layer == "" && !match(p, r.pkgs) || layerOf(p) == r.exceptLayer {
				continue
			}
			covered++
			for _, d := range deps[p] {
				dl := layerOf(d)
				allowed := !r.allowNothing
				if r.allowLayers != nil || r.allowPkgs != nil {
					allowed = has(r.allowLayers, dl) || match(d, r.allowPkgs)
				}
				if !allowed || has(r.forbidLayers, dl) || match(d, r.forbidPkgs) {
					out = append(out, r.name+": "+p+" depends on "+d)
				}
			}
		}
		if covered == 0 {
			out = append(out, r.name+": covers no package")
		}
	}
	return out
}

// TestLayers holds the import rule of every layer of docs/design.md on the
// module's real dependency graph, and that every package has a layer.
func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		p, ok := rel(f[0])
		if !ok {
			continue
		}
		deps[p] = []string{}
		for _, d := range f[1:] {
			if r, ok := rel(d); ok {
				deps[p] = append(deps[p], r)
			}
		}
	}
	if len(deps) < 40 || len(deps["cmd/vigil"]) < 20 || !has(deps["core/httpapi"], "core") {
		t.Fatalf("go list returned too little (%d packages): the check is not seeing the real graph", len(deps))
	}
	for _, v := range violations(deps) {
		t.Error(v)
	}
}

// TestLayersCatchViolations feeds the rules the imports they exist to
// refuse.
func TestLayersCatchViolations(t *testing.T) {
	for _, c := range []struct{ pkg, dep, why string }{
		{"compliance", "core/server", "a subsystem reaching the server"},
		{"reports", "core/raftstore", "a subsystem reaching raft"},
		{"core/lease", "core/barrier", "a subsystem reaching the barrier"},
		{"audit", "core/config", "the audit heart reading configuration"},
		{"audit", "core/storage", "the audit heart keeping state"},
		{"core/engine/kv", "core/router", "an engine importing the router"},
		{"core/httpapi", "core/engine/kv", "HTTP reaching an engine"},
		{"core/server", "audit/auditsvc", "the assembly importing a subsystem"},
		{"core", "core/storage", "the domain importing anything"},
		{"audit/ship", "compliance", "audit importing compliance"},
		{"core/token", "cmd/vigil/wire", "anything importing cmd"},
		{"core/newthing", "", "a package with no layer"},
	} {
		deps := map[string][]string{c.pkg: {}}
		want := c.pkg + " belongs to no layer"
		if c.dep != "" {
			deps[c.pkg], want = []string{c.dep}, c.pkg+" depends on "+c.dep
		}
		if v := strings.Join(violations(deps), "\n"); !strings.Contains(v, want) {
			t.Errorf("%s: %q not reported:\n%s", c.why, want, v)
		}
	}
}

func rel(p string) (string, bool) {
	if p == module {
		return ".", true
	}
	return strings.CutPrefix(p, module+"/")
}

// serverForbidden are packages the server binary must not link: the load
// generator and what only it needs, and test fakes and harnesses.
var serverForbidden = []string{
	module + "/bench",
	module + "/audit/ship/shiptest",
	"github.com/HdrHistogram/hdrhistogram-go",
	"github.com/twmb/franz-go",
}

// forbiddenIn returns the dependencies that match a forbidden package or
// lie under one.
func forbiddenIn(deps []string, forbidden []string) []string {
	var out []string
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				out = append(out, d)
			}
		}
	}
	return out
}

// TestServerBinaryLinksNoLoadGeneratorOrFakes holds that `go list -deps
// ./cmd/vigil` contains neither the load generator (it is cmd/vigil-bench)
// nor a test fake, while vigil-bench still links the load generator.
func TestServerBinaryLinksNoLoadGeneratorOrFakes(t *testing.T) {
	list := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return strings.Fields(string(out))
	}
	server := list(module + "/cmd/vigil")
	if !has(server, module+"/core/server") || !has(server, "github.com/segmentio/kafka-go") {
		t.Fatalf("go list -deps cmd/vigil returned too little (%d packages): the check is not seeing the real graph", len(server))
	}
	for _, d := range forbiddenIn(server, serverForbidden) {
		t.Errorf("cmd/vigil links %s", d)
	}
	if !has(list(module+"/cmd/vigil-bench"), module+"/bench") {
		t.Error("cmd/vigil-bench does not link the load generator: the check above proves nothing")
	}
	if got := forbiddenIn([]string{"github.com/twmb/franz-go/pkg/kfake", "github.com/twmb/franz-gox"}, serverForbidden); len(got) != 1 {
		t.Errorf("forbiddenIn = %v, want only the kfake package", got)
	}
}
