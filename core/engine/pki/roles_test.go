package pki

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/vigilsec/vigil/core"
)

// TestRoleDefaults is a known-answer test: a role written with only a name
// reads back with Vault's defaults.
func TestRoleDefaults(t *testing.T) {
	c := newPKI(t)
	must(t)(c.Write("roles/plain", nil))
	got := must(t)(c.Read("roles/plain", nil)).Data
	want := map[string]any{
		"ttl": int64(0), "max_ttl": int64(0), "allow_localhost": true, "allowed_domains": []string{},
		"allow_bare_domains": false, "allow_subdomains": false, "allow_glob_domains": false,
		"allow_wildcard_certificates": true, "allow_any_name": false, "enforce_hostnames": true,
		"allow_ip_sans": true, "allowed_uri_sans": []string{}, "server_flag": true, "client_flag": true,
		"code_signing_flag": false, "email_protection_flag": false, "key_type": "rsa", "key_bits": 2048,
		"signature_bits": 0, "key_usage": []string{"DigitalSignature", "KeyAgreement", "KeyEncipherment"},
		"ext_key_usage": []string{}, "ext_key_usage_oids": []string{}, "use_csr_common_name": true,
		"use_csr_sans": true, "ou": []string{}, "organization": []string{}, "country": []string{},
		"locality": []string{}, "province": []string{}, "street_address": []string{}, "postal_code": []string{},
		"generate_lease": false, "no_store": false, "require_cn": true, "basic_constraints_valid_for_non_ca": false,
		"not_before_duration": int64(30), "issuer_ref": "default",
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("role defaults:\n%s", gb)
	}
}

func TestRoleCRUD(t *testing.T) {
	c := newPKI(t)
	if _, err := c.List("roles/"); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("empty list: %v", err)
	}
	exists, ok, err := c.Exists(context.Background(), "roles/web", nil)
	if err != nil || !ok || exists {
		t.Errorf("existence before create: %v %v %v", exists, ok, err)
	}
	must(t)(c.Write("roles/web", map[string]any{"allowed_domains": "example.com,example.org", "allow_subdomains": true,
		"key_type": "ec", "key_bits": 384, "ttl": "1h", "max_ttl": "24h", "ou": "Ops", "generate_lease": true}))
	d := must(t)(c.Read("roles/web", nil)).Data
	if d["key_bits"] != 384 || d["ttl"] != int64(3600) || d["max_ttl"] != int64(86400) || d["generate_lease"] != true ||
		!reflect.DeepEqual(d["allowed_domains"], []string{"example.com", "example.org"}) {
		t.Errorf("role %v", d)
	}
	if exists, _, _ := c.Exists(context.Background(), "roles/web", nil); !exists {
		t.Error("existence after create")
	}
	// PATCH changes only what is sent; POST replaces the role.
	must(t)(c.Patch("roles/web", map[string]any{"max_ttl": "48h"}))
	d = must(t)(c.Read("roles/web", nil)).Data
	if d["max_ttl"] != int64(172800) || d["key_type"] != "ec" || d["key_bits"] != 384 {
		t.Errorf("after patch: %v", d)
	}
	must(t)(c.Write("roles/web", map[string]any{"allowed_domains": "example.net"}))
	d = must(t)(c.Read("roles/web", nil)).Data
	if d["key_type"] != "rsa" || d["max_ttl"] != int64(0) || d["generate_lease"] != false {
		t.Errorf("POST did not replace the role: %v", d)
	}
	must(t)(c.Write("roles/api", nil))
	if keys := must(t)(c.List("roles/")).Data["keys"]; !reflect.DeepEqual(keys, []string{"api", "web"}) {
		t.Errorf("list %v", keys)
	}
	must(t)(c.Delete("roles/web", nil))
	if _, err := c.Read("roles/web", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("read after delete: %v", err)
	}
	_, err = c.Patch("roles/nope", map[string]any{"ttl": 1})
	wantErr(t, err, core.CodeNotFound, `role "nope" not found`)
}

func TestRoleBadInput(t *testing.T) {
	c := newPKI(t)
	for _, tc := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"ttl": "2h", "max_ttl": "1h"}, `"ttl" value must be less than "max_ttl" value`},
		{map[string]any{"key_type": "dsa"}, `unknown key_type value "dsa": must be rsa, ec, ed25519 or any`},
		{map[string]any{"key_type": "rsa", "key_bits": 1000}, "unsupported bit length for RSA key: 1000"},
		{map[string]any{"key_usage": "DigitalSignature,Teleport"}, `unrecognized key_usage "Teleport"`},
		{map[string]any{"ext_key_usage": "Flying"}, `unrecognized ext_key_usage "Flying"`},
		{map[string]any{"ext_key_usage_oids": "1.2.x"}, `invalid OID "1.2.x"`},
		{map[string]any{"signature_bits": 128}, "unsupported signature_bits 128"},
		{map[string]any{"allow_subdomains": "maybe"}, `field "allow_subdomains"`},
	} {
		_, err := c.Write("roles/bad", tc.body)
		wantErr(t, err, core.CodeInvalid, tc.msg)
	}
	if _, err := c.Read("roles/bad", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("a rejected role was stored: %v", err)
	}
	resp := must(t)(c.Write("roles/odd", map[string]any{"generate_lease": true, "no_store": true}))
	if len(resp.Warnings) != 1 {
		t.Errorf("generate_lease with no_store: warnings %q", resp.Warnings)
	}
}
