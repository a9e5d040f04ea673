package system_test

import (
	"reflect"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// Vault's older sys/ endpoints repeat their data at the top level of the
// body; accessors have Vault's form; capability lists are sorted.
func TestSysShapesMatchVault(t *testing.T) {
	s := devServer(t)
	c := s.Client
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	top := map[string][]string{
		"sys/mounts":         {"secret/", "sys/"},
		"sys/auth":           {"token/", "userpass/"},
		"sys/policy":         {"keys", "policies"},
		"sys/policy/default": {"name", "rules"},
		"sys/key-status":     {"term", "install_time", "encryptions"},
	}
	for path, fields := range top {
		body := rawJSON(t, c, "GET", path, nil)
		data, _ := body["data"].(map[string]any)
		for _, f := range fields {
			if body[f] == nil || !reflect.DeepEqual(body[f], data[f]) {
				t.Errorf("%s: top-level %q = %v, data %v", path, f, body[f], data[f])
			}
		}
	}
	if ks := rawJSON(t, c, "GET", "sys/key-status", nil); ks["encryptions"] == float64(0) {
		t.Errorf("key-status counts no encryptions after writes: %v", ks)
	}
	// Endpoints outside that list keep data inside the envelope only.
	if body := rawJSON(t, c, "GET", "sys/policies/acl/default", nil); body["policy"] != nil {
		t.Errorf("sys/policies/acl/:name repeats its data at the top level")
	}

	caps := rawJSON(t, c, "POST", "sys/capabilities-self", map[string]any{"path": "secret/data/x"})
	if !reflect.DeepEqual(caps["capabilities"], []any{"root"}) {
		t.Errorf("capabilities-self top level: %v", caps)
	}
	if err := c.Sys().PutPolicy("p", `path "secret/*" { capabilities = ["update", "read", "sudo", "create", "list", "delete", "patch"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Sys().Capabilities(tok.Auth.ClientToken, "secret/x")
	want := []string{"create", "delete", "list", "patch", "read", "sudo", "update"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("capabilities = %v, %v; want %v", got, err, want)
	}

	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	for name, acc := range map[string]string{
		"auth token/": auths["token/"].Accessor, "auth userpass/": auths["userpass/"].Accessor,
		"secret/": mounts["secret/"].Accessor, "sys/": mounts["sys/"].Accessor,
	} {
		wantPrefix := map[string]string{"auth token/": "auth_token_", "auth userpass/": "auth_userpass_", "secret/": "kv_", "sys/": "system_"}[name]
		if !strings.HasPrefix(acc, wantPrefix) || len(acc) != len(wantPrefix)+8 {
			t.Errorf("%s accessor %q, want %s<8 hex>", name, acc, wantPrefix)
		}
	}
}
