package authz

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseACLVaultSyntax(t *testing.T) {
	p, err := ParseACL("t", `
name = "ignored"
# comment
path "/secret/a" {
  capabilities = ["read", "read", "list"]
}
path "secret/old" { policy = "write" }
path "secret/olddeny" {
  policy = "deny"
  capabilities = ["read"]
}
path "secret/deny" { capabilities = ["read", "deny"] }
path "secret/params" {
  capabilities = ["create"]
  required_parameters = ["a"]
  allowed_parameters = {
    "Foo" = []
    "bar" = ["zip", 1, true]
    "*"   = []
  }
  denied_parameters {
    baz = ["x*"]
  }
  min_wrapping_ttl = "1s"
  max_wrapping_ttl = 90
}
path "secret/+/x*" { capabilities = ["read"] }
path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []*PathRule{
		{Pattern: "secret/a", Capabilities: []string{"list", "read"}},
		{Pattern: "secret/old", Capabilities: []string{"create", "delete", "list", "read", "update"}},
		{Pattern: "secret/olddeny", Capabilities: []string{"deny"}},
		{Pattern: "secret/deny", Capabilities: []string{"deny"}},
		{Pattern: "secret/params", Capabilities: []string{"create"}, RequiredParameters: []string{"a"},
			AllowedParameters: map[string][]any{"foo": {}, "bar": {"zip", int64(1), true}, "*": {}},
			DeniedParameters:  map[string][]any{"baz": {"x*"}},
			MinWrappingTTL:    time.Second, MaxWrappingTTL: 90 * time.Second},
		{Pattern: "secret/+/x*", Capabilities: []string{"read"}},
		{Pattern: "identity/entity/id/{{identity.entity.id}}", Capabilities: []string{"read"}, Templated: true},
	}
	if !reflect.DeepEqual(p.Paths, want) {
		for i := range p.Paths {
			t.Logf("%d: %+v", i, *p.Paths[i])
		}
		t.Fatal("parsed rules differ")
	}
	kinds := []string{"exact", "exact", "exact", "exact", "exact", "segment", "exact"}
	for i, r := range p.Paths {
		if r.Kind() != kinds[i] {
			t.Errorf("%s: kind %s, want %s", r.Pattern, r.Kind(), kinds[i])
		}
	}
}

func TestParseACLJSON(t *testing.T) {
	p, err := ParseACL("j", `{"path": {"secret/*": {"capabilities": ["read"], "allowed_parameters": {"a": ["b"]}}, "sys/x": {"policy": "sudo"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Paths) != 2 {
		t.Fatalf("paths: %+v", p.Paths)
	}
	for _, r := range p.Paths {
		switch r.Pattern {
		case "secret/*":
			if r.Kind() != "prefix" || !reflect.DeepEqual(r.AllowedParameters, map[string][]any{"a": {"b"}}) {
				t.Errorf("json rule: %+v", r)
			}
		case "sys/x":
			if !reflect.DeepEqual(r.Capabilities, []string{"create", "delete", "list", "read", "sudo", "update"}) {
				t.Errorf("json sudo: %+v", r)
			}
		}
	}
}

func TestParseACLErrors(t *testing.T) {
	cases := map[string]string{
		`path "a" { capabilities = ["fly"] }`:                       `invalid capability "fly"`,
		`path "a" { policy = "maybe" }`:                             `invalid policy "maybe"`,
		`path "a+*" { capabilities = ["read"] }`:                    `'+*' is forbidden`,
		"path \"a\" {\n capabilities = [\"read\"]\n unknown = 1\n}": "Unsupported argument",
		// HCL 2 (unlike Vault's HCL 1) needs one argument per line.
		`path "a" { capabilities = ["read"] policy = "read" }`: "Invalid single-argument block definition",
		`other "a" {}`: "Unsupported block type",
		"path \"a\" {\n min_wrapping_ttl = \"2m\"\n max_wrapping_ttl = \"1m\"\n}": "max_wrapping_ttl cannot be less than min_wrapping_ttl",
		`path "a" { allowed_parameters = { "a*" = [] } }`:                         "non-tail wildcards",
		`path "a" { allowed_parameters = { "a" = "b" } }`:                         "must be a list",
		`path "a" { required_parameters = ["x*"] }`:                               "wildcard is not permitted",
		"path \"a\" {\n  capabilities = [\"read\"\n}":                             "t.hcl:",
		`path "a" { capabilities = "read" }`:                                      "list of strings",
		`path "a" { allowed_parameters = { "/pointer" = [] } }`:                   "JSON pointer",
		`{"path": {"a": {"capabilities": ["nope"]}}}`:                             `invalid capability "nope"`,
		`path "a" { capabilities = [var.x] }`:                                     "Variables not allowed",
		`path "a" "b" { }`:                                                        "Extraneous label",
		`path { capabilities = ["read"] }`:                                        "Missing path for path",
	}
	for src, want := range cases {
		_, err := ParseACL("t", src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
}

func TestDefaultPolicyParses(t *testing.T) {
	p, err := ParseACL(DefaultPolicy, DefaultPolicyRules)
	if err != nil {
		t.Fatal(err)
	}
	// Vault's 18 paths plus Vigil's two sys/internal/ui/mounts paths.
	if len(p.Paths) != 20 {
		t.Errorf("default policy has %d paths, want Vault's 18 + 2", len(p.Paths))
	}
}

// FuzzParseACL checks the parser never panics and that accepted policies
// compile into entries.
func FuzzParseACL(f *testing.F) {
	f.Add(DefaultPolicyRules)
	f.Add(`path "secret/+/x*" { capabilities = ["read"] allowed_parameters = { "a" = ["b*"] } }`)
	f.Add(`{"path": {"a": {"policy": "read"}}}`)
	f.Fuzz(func(t *testing.T, src string) {
		p, err := ParseACL("f", src)
		if err != nil {
			return
		}
		if _, err := newSetView("f", []string{"f"}, map[string][]*PathRule{"f": p.Paths}); err != nil {
			t.Fatalf("accepted policy does not compile: %v", err)
		}
	})
}
