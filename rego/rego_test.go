package rego

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// runRegoTests runs every test_ rule in srcs through OPA's tester and fails
// t for each failing or erroring Rego test. It returns the number run.
func runRegoTests(t *testing.T, srcs map[string]string) int {
	t.Helper()
	mods, err := ParseModules(srcs)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	ch, err := tester.NewRunner().SetCompiler(ast.NewCompiler()).SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).SetModules(mods).RunTests(context.Background(), nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	n := 0
	for r := range ch {
		n++
		name := r.Package + "." + r.Name
		switch {
		case r.Error != nil:
			t.Errorf("%s: error: %v", name, r.Error)
		case r.Fail:
			t.Errorf("%s: FAIL (%s)", name, r.Location)
		}
	}
	return n
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestBundle runs rego/*_test.rego against the bundle.
func TestBundle(t *testing.T) {
	n := runRegoTests(t, merge(Modules(), Tests()))
	if n < 20 {
		t.Fatalf("ran only %d Rego tests", n)
	}
}

// TestExamples runs rego/examples/*_test.rego against the bundle and the
// example modules, and checks that every example has allow tests and deny
// (or, for a module asking for approvals, hold) tests.
func TestExamples(t *testing.T) {
	ex := Examples()
	if len(ex) < 4 {
		t.Fatalf("want at least 4 examples, have %d", len(ex))
	}
	srcs := merge(Modules(), ExampleTests())
	for name, src := range ex {
		srcs["examples/"+name+".rego"] = src
	}
	runRegoTests(t, srcs)
	tests := ExampleTests()
	for name := range ex {
		src, ok := tests["examples/"+name+"_test.rego"]
		if !ok {
			t.Errorf("example %s has no _test.rego", name)
			continue
		}
		if !strings.Contains(src, "test_allow") || !(strings.Contains(src, "test_deny") || strings.Contains(src, "test_hold")) {
			t.Errorf("example %s: tests must include test_allow* and test_deny* (or test_hold*) rules", name)
		}
	}
}

// TestExamplePackages checks each example declares package vigil.custom.<name>.
func TestExamplePackages(t *testing.T) {
	for name, src := range Examples() {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Package.Path.String(), "data."+CustomPackage+"."+name; got != want {
			t.Errorf("example %s: package %s, want %s", name, got, want)
		}
	}
}
