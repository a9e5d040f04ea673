package ssh

import (
	"errors"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestRoleValidation(t *testing.T) {
	_, c := newEngine(t)
	for _, tc := range []struct {
		data map[string]any
		msg  string
	}{
		{map[string]any{}, "missing key_type"},
		{map[string]any{"key_type": "otp"}, `key_type "otp" is not supported`},
		{map[string]any{"key_type": "dynamic"}, `key_type "dynamic" is not supported`},
		{map[string]any{"key_type": "ca"}, "allow_user_certificates or allow_host_certificates"},
		{map[string]any{"key_type": "ca", "allow_user_certificates": true, "ttl": "2h", "max_ttl": "1h"}, "less than"},
		{map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users_template": true}, "templating is not supported"},
		{map[string]any{"key_type": "ca", "allow_user_certificates": true, "default_extensions": map[string]any{"permit-pty": true}}, "must be a string"},
		{map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_user_key_lengths": map[string]any{"rsa": "big"}}, "not a number"},
		{map[string]any{"key_type": "ca", "allow_user_certificates": true, "algorithm_signer": "md5"}, "algorithm_signer"},
	} {
		_, err := c.Write("roles/r", tc.data)
		wantInvalid(t, err, tc.msg)
	}
	must(t)(c.Write("roles/r", map[string]any{
		"key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice, bob,alice", "default_user": "alice",
		"allowed_extensions": "permit-pty,permit-port-forwarding", "default_extensions": map[string]any{"permit-pty": ""},
		"allowed_user_key_lengths": map[string]any{"rsa": []any{2048, 4096}, "ed25519": 0}, "ttl": "30m", "max_ttl": "2h",
	}))
	d := must(t)(c.Read("roles/r", nil))
	if d["allowed_users"] != "alice,bob" || d["ttl"] != int64(1800) || d["max_ttl"] != int64(7200) || d["not_before_duration"] != int64(30) ||
		d["algorithm_signer"] != "default" || d["key_type"] != "ca" {
		t.Fatalf("role read back as %v", d)
	}
	if l := must(t)(c.List("roles")); len(l["keys"].([]string)) != 1 {
		t.Fatalf("list: %v", l)
	}
	must(t)(c.Delete("roles/r", nil))
	if _, err := c.Read("roles/r", nil); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("deleted role reads as %v", err)
	}
}
