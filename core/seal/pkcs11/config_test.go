package pkcs11_test

import (
	"testing"

	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/pkcs11"
	"github.com/vigilsec/vigil/core/testsvc"
)

func TestParseConfig(t *testing.T) {
	none := func(string) string { return "" }
	for name, vals := range map[string]map[string]string{
		"no lib":        {"token_label": "t", "pin": "1", "key_label": "k"},
		"no token":      {"lib": "/x.so", "pin": "1", "key_label": "k"},
		"no pin":        {"lib": "/x.so", "token_label": "t", "key_label": "k"},
		"no key":        {"lib": "/x.so", "token_label": "t", "pin": "1"},
		"bad mechanism": {"lib": "/x.so", "token_label": "t", "pin": "1", "key_label": "k", "mechanism": "CKM_AES_CBC"},
		"bad slot":      {"lib": "/x.so", "slot": "one", "pin": "1", "key_label": "k"},
		"unknown key":   {"lib": "/x.so", "token_label": "t", "pin": "1", "key_label": "k", "hmac_key_label": "h"},
	} {
		if _, err := pkcs11.ParseConfig(seal.Options{Type: "pkcs11", Values: vals, Getenv: none}); err == nil {
			t.Errorf("%s: accepted %v", name, vals)
		}
	}
	c, err := pkcs11.ParseConfig(seal.Options{Type: "pkcs11", Values: map[string]string{"slot": "0x2"}, Getenv: func(k string) string {
		return map[string]string{"VAULT_HSM_LIB": "/l.so", "VAULT_HSM_PIN": "9", "VAULT_HSM_KEY_LABEL": "k", "VAULT_HSM_GENERATE_KEY": "true"}[k]
	}})
	if err != nil || c.Lib != "/l.so" || *c.Slot != 2 || !c.GenerateKey || c.KeyLabel != "k" {
		t.Fatalf("ParseConfig = %+v, %v", c, err)
	}
}

// TestBuiltWithCgo fails under make test when this test binary was built
// without cgo, so the pkcs11 seal is always tested there.
func TestBuiltWithCgo(t *testing.T) {
	if !pkcs11.Available {
		testsvc.Missing(t, "the pkcs11 seal needs cgo (a C toolchain) and this test binary was built without it")
	}
}
