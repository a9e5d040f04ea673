package authz

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilsec/vigil/core"
	vrego "github.com/vigilsec/vigil/rego"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// TestGoldenDecisions pins the full decision (allowed, granting policies,
// deny reasons, advisories, flags, explanation, matched rule) for
// representative requests. Run with -update to rewrite after an intended
// change, and review the diff.
func TestGoldenDecisions(t *testing.T) {
	a := MustAuthz(t, map[string]string{
		"dev": `
path "secret/*" { capabilities = ["create", "read", "update", "list"] }
path "secret/super-secret" { capabilities = ["deny"] }
path "secret/+/teamb" { capabilities = ["read", "delete"] }
path "sys/rotate" { capabilities = ["update"] }
path "secret/restricted" {
  capabilities = ["create"]
  allowed_parameters = { "bar" = ["zip", "zap"] }
}
path "secret/phi/*" {
  capabilities = ["read"]
  control_group {
    factor "clinical-lead" {
      identity {
        group_names = ["clinical-leads"]
        approvals   = 1
      }
    }
    max_ttl = "4h"
  }
}
`,
		"ops": `
path "secret/*" { capabilities = ["read", "sudo"] }
path "sys/rotate" { capabilities = ["update", "sudo"] }
`,
	})
	ctx := context.Background()
	if err := a.PutModule(ctx, Module{Name: "break_glass", Source: vrego.Examples()["break_glass"], Level: LevelMandatory}); err != nil {
		t.Fatal(err)
	}
	if err := a.PutModule(ctx, Module{Name: "cidr_allowlist", Source: vrego.Examples()["cidr_allowlist"], Level: LevelAdvisory}); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		name     string
		path     string
		op       core.Operation
		policies []string
		data     map[string]any
		headers  map[string]string
		meta     map[string]string
		remote   string
		sudo     bool
	}
	cases := []tc{
		{name: "allow_glob", path: "secret/app/db", op: core.OpRead, policies: []string{"default", "dev"}},
		{name: "deny_explicit", path: "secret/super-secret", op: core.OpRead, policies: []string{"default", "dev"}},
		{name: "deny_capability", path: "secret/app/db", op: core.OpDelete, policies: []string{"default", "dev"}},
		{name: "allow_segment", path: "secret/x/teamb", op: core.OpDelete, policies: []string{"dev"}},
		{name: "union_granting", path: "secret/app/db", op: core.OpRead, policies: []string{"dev", "ops"}},
		{name: "deny_parameters", path: "secret/restricted", op: core.OpCreate, policies: []string{"dev"}, data: map[string]any{"bar": "zop"}},
		{name: "deny_sudo", path: "sys/rotate", op: core.OpUpdate, policies: []string{"dev"}, sudo: true},
		{name: "allow_sudo", path: "sys/rotate", op: core.OpUpdate, policies: []string{"ops"}, sudo: true},
		{name: "deny_no_match", path: "transit/keys/k", op: core.OpRead, policies: []string{"dev"}},
		{name: "advisory_outside_network", path: "secret/app/db", op: core.OpRead, policies: []string{"dev"}, remote: "203.0.113.9"},
		{name: "break_glass_without_reason", path: "kv/prod/db", op: core.OpRead, policies: []string{"default"}, meta: map[string]string{"break_glass": "true"}},
		{name: "break_glass_with_reason", path: "kv/prod/db", op: core.OpRead, policies: []string{"default"}, meta: map[string]string{"break_glass": "true"},
			headers: map[string]string{"X-Vigil-Reason": "INC-7 outage"}},
		{name: "allow_control_group", path: "secret/phi/ward-7", op: core.OpRead, policies: []string{"dev"}},
		{name: "root", path: "sys/rotate", op: core.OpUpdate, policies: []string{"root"}, sudo: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := treq(c.path, c.op, c.policies...)
			r.Data, r.SudoRequired, r.Principal.Metadata = c.data, c.sudo, c.meta
			if c.remote != "" {
				r.RemoteAddr = c.remote
			}
			r.Headers = http.Header{}
			for k, v := range c.headers {
				r.Headers.Set(k, v)
			}
			ex, err := a.Explain(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			// The explained decision and the enforced one agree.
			d := mustDecide(t, a, r)
			if d.Allowed != ex.Decision.Allowed || d.Error != "" {
				t.Fatalf("Authorize %+v differs from Explain %+v", d, ex.Decision)
			}
			got, _ := json.MarshalIndent(map[string]any{
				"request":      map[string]any{"path": c.path, "operation": c.op, "policies": c.policies, "sudo_required": c.sudo},
				"decision":     ex.Decision,
				"matched_rule": ex.MatchedRule,
				"candidates":   ex.Candidates,
				"cacheable":    ex.Cacheable,
			}, "", "  ")
			file := filepath.Join("testdata", "golden", c.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGoldenDecisions -update)", err)
			}
			if string(want) != string(got)+"\n" {
				t.Errorf("decision differs from %s:\n--- got\n%s\n--- want\n%s", file, got, want)
			}
		})
	}
}
