package server

import (
	"context"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/awskms"
	"github.com/vigilsec/vigil/core/seal/transit"
)

func TestBuildSeals(t *testing.T) {
	f := map[string]seal.Factory{awskms.Type: awskms.Factory, transit.Type: transit.Factory}
	parse := func(src string) []config.Block {
		cfg, err := config.Parse("vigil.hcl", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Seals
	}
	// build parses and builds; the configuration parser refuses some
	// blocks (a disabled value that is not a boolean) before buildSeals.
	build := func(src string) ([]seal.Seal, error) {
		cfg, err := config.Parse("vigil.hcl", []byte(src))
		if err != nil {
			return nil, err
		}
		_, built, err := buildSeals(context.Background(), cfg.Seals, f)
		return built, err
	}
	kms := `seal "awskms" {
  kms_key_id = "k"
  region     = "us-east-1"
%s}
`
	tr := `seal "transit" {
  address = "http://127.0.0.1:1"
  token = "t"
  key_name = "k"
  mount_path = "transit/"
%s}
`
	ok := map[string]string{
		"none":              ``,
		"one":               sprintf(kms, ""),
		"migrate to shamir": sprintf(kms, "  disabled = \"true\"\n"),
		"migrate auto→auto": sprintf(kms, "  disabled = \"true\"\n") + sprintf(tr, "  disable_renewal = \"true\"\n"),
	}
	for name, src := range ok {
		if _, built, err := buildSeals(context.Background(), parse(src), f); err != nil {
			t.Errorf("%s: %v", name, err)
		} else {
			for _, s := range built {
				if c, ok := s.(interface{ Close() error }); ok {
					_ = c.Close()
				}
			}
		}
	}
	bad := map[string][2]string{
		"two enabled":   {sprintf(kms, "") + sprintf(tr, "  disable_renewal = \"true\"\n"), "only one seal may be enabled"},
		"two disabled":  {sprintf(kms, "  disabled = \"true\"\n") + sprintf(tr, "  disabled = \"true\"\n"), "only one seal block may be disabled"},
		"unknown type":  {`seal "gcpckms" {}`, "unknown seal type"},
		"shamir block":  {`seal "shamir" {}`, "needs no block"},
		"unknown key":   {sprintf(kms, "  kms_keyid = \"x\"\n"), `unknown key "kms_keyid"`},
		"bad disabled":  {sprintf(kms, "  disabled = \"maybe\"\n"), "disabled: expected true or false"},
		"same type off": {sprintf(kms, "") + sprintf(kms, "  disabled = \"true\"\n"), "both enabled and disabled"},
	}
	for name, c := range bad {
		built, err := build(c[0])
		for _, s := range built {
			if cl, ok := s.(interface{ Close() error }); ok {
				_ = cl.Close()
			}
		}
		if err == nil || !strings.Contains(err.Error(), c[1]) {
			t.Errorf("%s: %v; want %q", name, err, c[1])
		}
		if err != nil && !strings.Contains(err.Error(), "vigil.hcl:") {
			t.Errorf("%s: %v does not name the file and line", name, err)
		}
	}
}

func sprintf(f, a string) string { return strings.Replace(f, "%s", a, 1) }
