// Package rego holds Vigil's authorization policy bundle, written in Rego v1
// and embedded with go:embed, plus the example custom modules shipped in
// examples/.
//
// The bundle has two packages:
//
//   - vigil.acl (acl.rego) evaluates Vault HCL ACL policies: core/authz
//     parses them (the raw rules are data.vigil_policies.acl[<policy>].rules),
//     merges the rules of a token's policy set per pattern as Vault's NewACL
//     does, and passes the entries that may match the path in
//     input.acl.entries; acl.rego picks the winning entry (exact match, list
//     fallbacks, Vault's priority matching) and checks capabilities, sudo,
//     wrapping TTLs and parameter constraints;
//   - vigil.authz (authz.rego) makes the decision: root, ACL, and the custom
//     modules (packages vigil.custom.<name>, enforcement levels in
//     data.vigil_policies.rego[<name>].level).
//
// The decision is the value of DecisionQuery; CapabilitiesQuery gives the
// Vault sys/capabilities answer for input.request.path. The input document
// and the custom-module contract are documented in package core/authz.
//
// Everything here is read-only and safe for concurrent use.
package rego

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

//go:embed *.rego examples/*.rego
var files embed.FS

// Queries evaluated by core/authz.
const (
	DecisionQuery     = "data.vigil.authz.decision"
	CapabilitiesQuery = "data.vigil.authz.capabilities"
)

// CustomPackage is the package prefix custom modules must use:
// "package vigil.custom.<name>".
const CustomPackage = "vigil.custom"

// DataRoot is the top-level key of the base data document core/authz writes
// (data.vigil_policies.acl and data.vigil_policies.rego).
const DataRoot = "vigil_policies"

// Modules returns the bundle's policy modules (tests excluded), keyed by
// file name.
func Modules() map[string]string { return load(".", false) }

// Tests returns the bundle's *_test.rego modules, keyed by file name.
func Tests() map[string]string { return load(".", true) }

// Examples returns the example custom modules in examples/ (tests
// excluded), keyed by module name: the file name without ".rego", which is
// also the last element of the module's package.
func Examples() map[string]string {
	out := map[string]string{}
	for f, src := range load("examples", false) {
		out[strings.TrimSuffix(path.Base(f), ".rego")] = src
	}
	return out
}

// ExampleTests returns the examples' *_test.rego modules, keyed by file path.
func ExampleTests() map[string]string { return load("examples", true) }

func load(dir string, tests bool) map[string]string {
	ents, err := fs.ReadDir(files, dir)
	if err != nil {
		panic(fmt.Sprintf("rego: embedded %s: %v", dir, err))
	}
	out := map[string]string{}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".rego") || strings.HasSuffix(n, "_test.rego") != tests {
			continue
		}
		p := path.Join(dir, n)
		b, err := files.ReadFile(p)
		if err != nil {
			panic(fmt.Sprintf("rego: embedded %s: %v", p, err))
		}
		out[p] = string(b)
	}
	return out
}

// ParseModules parses sources (file name → Rego v1 source) into modules.
// The error lists every file:line:col problem.
func ParseModules(srcs map[string]string) (map[string]*ast.Module, error) {
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]*ast.Module, len(srcs))
	for _, n := range names {
		m, err := ast.ParseModuleWithOpts(n, srcs[n], ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return nil, err
		}
		out[n] = m
	}
	return out, nil
}
