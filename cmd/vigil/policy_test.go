package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	vrego "github.com/vigilsec/vigil/rego"
)

// mustPolicyCLIServer is a dev server with the authz subsystem (added here
// until wire lists it; an existing one is replaced) and the CLI pointed at it.
func mustPolicyCLIServer(t *testing.T) *servertest.Server {
	t.Helper()
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.Options(cfg)
		subs := o.Subsystems[:0]
		for _, s := range o.Subsystems {
			if _, isAuthz := s.Subsystem.(*authz.Subsystem); !isAuthz {
				subs = append(subs, s)
			}
		}
		o.Subsystems = append(subs, wire.Plug(authz.NewSubsystem(authz.WithEvalTimeout(5*time.Second))))
		return o, err
	}
	s := servertest.MustStart(t, build, servertest.Options{Dev: true})
	pointCLI(t, s)
	return s
}

func TestPolicyCLI(t *testing.T) {
	s := mustPolicyCLIServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "dev.hcl")
	src := "path \"secret/data/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n"
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustOK(t, "policy", "write", "dev", file); !strings.Contains(out, "Success! Uploaded policy: dev") {
		t.Fatal(out)
	}
	// "-" reads standard input.
	r := runCLIStdin(t, "path \"secret/data/ops/*\" {\n  capabilities = [\"update\"]\n}\n", "policy", "write", "ops", "-")
	if r.code != 0 {
		t.Fatalf("write from stdin: %+v", r)
	}
	if out := mustOK(t, "policy", "read", "dev"); out != src {
		t.Fatalf("read: %q", out)
	}
	if out := mustOK(t, "policy", "list"); out != "default\ndev\nops\nroot\n" {
		t.Fatalf("list: %q", out)
	}
	// A broken policy is refused with its line.
	runCLIStdin(t, "path \"x\" {\n  capabilities = [\"read\"\n}\n", "policy", "write", "bad", "-").wantCode(t, 2, "bad.hcl:3")
	runCLI(t, "policy", "delete", "root").wantCode(t, 2, `cannot delete "root" policy`)
	if out := mustOK(t, "policy", "delete", "ops"); !strings.Contains(out, "Deleted policy: ops") {
		t.Fatal(out)
	}
	runCLI(t, "policy", "read", "ops").wantCode(t, 2, "No policy named: ops")

	// Rego policies with -type=rego.
	rf := filepath.Join(dir, "cidr.rego")
	if err := os.WriteFile(rf, []byte(vrego.Examples()["cidr_allowlist"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustOK(t, "policy", "write", "-type=rego", "-enforcement=advisory", "cidr_allowlist", rf); !strings.Contains(out, "Uploaded rego policy: cidr_allowlist") {
		t.Fatal(out)
	}
	if out := mustOK(t, "policy", "list", "-type=rego"); out != "cidr_allowlist\n" {
		t.Fatalf("rego list: %q", out)
	}
	if out := mustOK(t, "policy", "read", "-type=rego", "cidr_allowlist"); !strings.Contains(out, "package vigil.custom.cidr_allowlist") {
		t.Fatal(out)
	}
	runCLIStdin(t, "package vigil.custom.broken\n\ndeny contains x if {\n  x := \n}\n", "policy", "write", "-type=rego", "broken", "-").wantCode(t, 2, "broken.rego:")
	mustOK(t, "policy", "delete", "-type=rego", "cidr_allowlist")

	// explain, by accessor.
	sec, err := s.Client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	acc := sec.Auth.Accessor
	out := mustOK(t, "policy", "explain", "-token-accessor="+acc, "secret/data/app", "read")
	for _, want := range []string{"ALLOWED: read secret/data/app", `path "secret/data/*" (prefix) in [dev]: [read list]`, "granting_policies  [dev (acl)]"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain allow output lacks %q:\n%s", want, out)
		}
	}
	out = mustOK(t, "policy", "explain", "-token-accessor="+acc, "secret/data/app", "delete")
	if !strings.Contains(out, "DENIED: delete secret/data/app") || !strings.Contains(out, `does not grant "delete"`) {
		t.Errorf("explain deny output:\n%s", out)
	}
	runCLI(t, "policy", "explain", "secret/data/app", "read").wantCode(t, 1)
}

func TestPolicyFmt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(file, []byte("path \"secret/*\" {\ncapabilities=[\"read\"]\n   min_wrapping_ttl = 5\n}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out := mustOK(t, "policy", "fmt", file); !strings.Contains(out, "Formatted policy") {
		t.Fatal(out)
	}
	b, _ := os.ReadFile(file)
	want := "path \"secret/*\" {\n  capabilities     = [\"read\"]\n  min_wrapping_ttl = 5\n}\n"
	if string(b) != want {
		t.Fatalf("formatted:\n%s\nwant:\n%s", b, want)
	}
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("path \"x\" {\n  capabilities = [\"fly\"]\n}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	runCLI(t, "policy", "fmt", bad).wantCode(t, 2, `invalid capability "fly"`)
}
