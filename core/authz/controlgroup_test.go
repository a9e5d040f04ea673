package authz

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

func TestParseControlGroupForms(t *testing.T) {
	want := &ControlGroup{TTL: time.Hour, MaxTTL: 4 * time.Hour, Factors: []ControlGroupFactor{
		{Name: "clinical-lead", GroupNames: []string{"clinical-leads"}, Approvals: 1},
		{Name: "security", ControlledCapabilities: []string{"update"}, GroupNames: []string{"sec", "soc"}, Approvals: 2},
	}}
	forms := map[string]string{
		// The syntax of Vault's documentation (HCL 1's `control_group = {`).
		"hcl1": `
path "secret/data/phi/*" {
  capabilities = ["read", "update"]
  control_group = {
    ttl = "1h"
    factor "clinical-lead" {
      identity {
        group_names = ["clinical-leads"]
        approvals = 1
      }
    }
    factor "security" {
      controlled_capabilities = ["update"]
      identity {
        group_names = ["sec", "soc"]
        approvals = 2
      }
    }
  }
}`,
		"block": `
path "secret/data/phi/*" {
  capabilities = ["read", "update"]
  control_group {
    factor "clinical-lead" {
      identity {
        group_names = ["clinical-leads"]
      }
    }
    factor "security" {
      controlled_capabilities = ["update", "update"]
      identity = {
        group_names = ["sec", "soc"]
        approvals   = 2
      }
    }
    max_ttl = "4h"
    ttl     = 3600
  }
}`,
		"json": `{"path": {"secret/data/phi/*": {"capabilities": ["read", "update"], "control_group": {
  "ttl": "1h", "max_ttl": "4h",
  "factor": {
    "clinical-lead": {"identity": {"group_names": ["clinical-leads"], "approvals": 1}},
    "security": {"controlled_capabilities": ["update"], "identity": {"group_names": ["sec", "soc"], "approvals": 2}}
  }}}}}`,
	}
	for name, src := range forms {
		p, err := ParseACL(name, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := p.Paths[0].ControlGroup
		if name == "hcl1" {
			got.MaxTTL = 4 * time.Hour // not set in this spelling
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: parsed %+v, want %+v", name, got, want)
		}
	}
}

func TestParseControlGroupErrors(t *testing.T) {
	f := func(body string) string { return "factor \"a\" {\n" + body + "\n}\n" }
	ident := func(body string) string { return "identity {\n" + body + "\n}" }
	g := `group_names = ["g"]`
	cases := map[string]string{
		"at least one factor":      `max_ttl = "4h"`,
		"group_names must name":    f(ident("approvals = 1")),
		"identity block":           f(""),
		"approvals must be":        f(ident(g + "\napprovals = 0")),
		"not one of the path's":    f(`controlled_capabilities = ["delete"]` + "\n" + ident(g)),
		"cannot be greater":        "ttl = \"5h\"\nmax_ttl = \"4h\"\n" + f(ident(g)),
		"declared twice":           f(ident(g)) + f(ident(g)),
		"unsupported argument":     f(ident(g + "\nentity_ids = [\"e\"]")),
		"error parsing max_ttl":    "max_ttl = \"soon\"\n" + f(ident(g)),
		"Unsupported argument":     "approvers = 2\n" + f(ident(g)),
		"a factor needs a name":    strings.Replace(f(ident(g)), `"a"`, `""`, 1),
		"must be a list of string": f(ident(`group_names = "g"`)),
	}
	for want, stanza := range cases {
		src := "path \"secret/x\" {\n capabilities = [\"read\"]\n control_group {\n" + stanza + "\n}\n}"
		_, err := ParseACL("p", src)
		if err == nil || !strings.Contains(err.Error(), want) || core.CodeOf(err) != core.CodeInvalid {
			t.Errorf("got %v, want an invalid-policy error containing %q\n%s", err, want, src)
		}
	}
	two := "path \"secret/x\" {\n capabilities = [\"read\"]\n control_group {\n" + f(ident(g)) + "}\ncontrol_group {\n" + f(ident(g)) + "}\n}"
	if _, err := ParseACL("p", two); err == nil || !strings.Contains(err.Error(), "one control_group") {
		t.Errorf("two control groups: %v", err)
	}
}

func TestControlGroupDecisions(t *testing.T) {
	a := MustAuthz(t, map[string]string{
		"phi": `
path "secret/phi/*" {
  capabilities = ["read", "update", "create"]
  control_group {
    max_ttl = "4h"
    factor "clinical-lead" {
      controlled_capabilities = ["read"]
      identity {
        group_names = ["clinical-leads"]
      }
    }
  }
}
path "secret/phi/open" { capabilities = ["read"] }
`,
		"phi2": `
path "secret/phi/*" {
  capabilities = ["read"]
  control_group {
    ttl = "30m"
    factor "privacy" {
      identity {
        group_names = ["privacy-office"]
        approvals = 2
      }
    }
  }
}
path "secret/phi/denied" { capabilities = ["deny"] }
`,
	})
	cases := []struct {
		name     string
		path     string
		op       core.Operation
		policies []string
		allowed  bool
		approval *core.Approval
	}{
		{"gated read", "secret/phi/a", core.OpRead, []string{"phi"}, true, &core.Approval{MaxTTL: 4 * time.Hour,
			Factors: []core.ApprovalFactor{{Name: "clinical-lead", GroupNames: []string{"clinical-leads"}, Approvals: 1}}, Sources: []string{"acl:phi"}}},
		{"controlled capabilities exclude update", "secret/phi/a", core.OpUpdate, []string{"phi"}, true, nil},
		{"a more specific rule has no control group", "secret/phi/open", core.OpRead, []string{"phi"}, true, nil},
		{"merged across policies", "secret/phi/a", core.OpRead, []string{"phi", "phi2"}, true, &core.Approval{TTL: 30 * time.Minute, MaxTTL: 4 * time.Hour,
			Factors: []core.ApprovalFactor{{Name: "clinical-lead", GroupNames: []string{"clinical-leads"}, Approvals: 1},
				{Name: "privacy", GroupNames: []string{"privacy-office"}, Approvals: 2}}, Sources: []string{"acl:phi", "acl:phi2"}}},
		{"denied requests need no approval", "secret/phi/a", core.OpDelete, []string{"phi"}, false, nil},
		{"explicit deny", "secret/phi/denied", core.OpRead, []string{"phi", "phi2"}, false, nil},
		{"root is never held", "secret/phi/a", core.OpRead, []string{"root"}, true, nil},
	}
	for _, c := range cases {
		for round := range 2 { // the second answer comes from the decision cache
			d := mustDecide(t, a, treq(c.path, c.op, c.policies...))
			if d.Allowed != c.allowed || !reflect.DeepEqual(d.Approval, c.approval) {
				t.Errorf("%s (round %d): allowed=%v approval=%+v, want %v %+v; %v", c.name, round, d.Allowed, d.Approval, c.allowed, c.approval, d.Explanation)
			}
		}
	}
}

func TestRegoRequireApproval(t *testing.T) {
	ctx := context.Background()
	a := MustAuthz(t, map[string]string{
		"dev": `path "secret/*" { capabilities = ["read"] }`,
		"phi": `
path "secret/phi/*" {
  capabilities = ["read"]
  control_group {
    factor "clinical-lead" {
      identity {
        group_names = ["clinical-leads"]
      }
    }
  }
}`,
	})
	put := func(name, level, src string) error {
		return a.PutModule(ctx, Module{Name: name, Level: level, Source: src})
	}
	if err := put("phi_approval", LevelMandatory, `package vigil.custom.phi_approval

require_approval := {
	"factors": [{"name": "privacy", "group_names": ["privacy-office"], "approvals": 2}],
	"max_ttl": "2h",
} if {
	input.mount.tags.phi == "true"
}
`); err != nil {
		t.Fatal(err)
	}
	if err := put("nightly", LevelMandatory, `package vigil.custom.nightly

require_approval contains {"name": "on-call", "group_names": ["oncall"]} if {
	startswith(input.request.path, "secret/night/")
}
`); err != nil {
		t.Fatal(err)
	}
	if err := put("advice", LevelAdvisory, `package vigil.custom.advice

require_approval := [{"name": "ignored", "group_names": ["x"]}]
`); err != nil {
		t.Fatal(err)
	}
	phiMount := func(r *core.Request) *core.Request { r.Mount.Tags = map[string]string{"phi": "true"}; return r }

	d := mustDecide(t, a, phiMount(treq("secret/phi/x", core.OpRead, "phi")))
	want := &core.Approval{MaxTTL: 2 * time.Hour, Sources: []string{"acl:phi", "rego:phi_approval"}, Factors: []core.ApprovalFactor{
		{Name: "clinical-lead", GroupNames: []string{"clinical-leads"}, Approvals: 1},
		{Name: "privacy", GroupNames: []string{"privacy-office"}, Approvals: 2},
	}}
	if !d.Allowed || !reflect.DeepEqual(d.Approval, want) {
		t.Fatalf("phi mount: %v %+v, want %+v; %v %v", d.Allowed, d.Approval, want, d.Explanation, d.Error)
	}
	d = mustDecide(t, a, treq("secret/night/x", core.OpRead, "dev"))
	if !d.Allowed || d.Approval == nil || len(d.Approval.Factors) != 1 || d.Approval.Factors[0].Name != "on-call" || d.Approval.Factors[0].Approvals != 1 {
		t.Fatalf("set form: %v %+v", d.Allowed, d.Approval)
	}
	// Not tagged, not at night: only the advisory module asks, and it is
	// not enforced.
	if d := mustDecide(t, a, treq("secret/app", core.OpRead, "dev")); !d.Allowed || d.Approval != nil {
		t.Fatalf("advisory require_approval applied: %+v", d.Approval)
	}
	// A denied request is not held.
	if d := mustDecide(t, a, phiMount(treq("secret/phi/x", core.OpUpdate, "phi"))); d.Allowed || d.Approval != nil {
		t.Fatalf("denied: %v %+v", d.Allowed, d.Approval)
	}

	// A malformed require_approval fails closed.
	if err := put("broken", LevelMandatory, `package vigil.custom.broken

require_approval := {"factors": [{"name": "x"}]} if input.request.path == "secret/broken"
`); err != nil {
		t.Fatal(err)
	}
	d = mustDecide(t, a, treq("secret/broken", core.OpRead, "dev"))
	if d.Allowed || !strings.Contains(d.Error, "group_names") {
		t.Fatalf("malformed require_approval: allowed=%v error=%q", d.Allowed, d.Error)
	}
}
