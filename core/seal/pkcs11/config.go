// Package pkcs11 is the "pkcs11" seal for hardware security modules: the
// root key is encrypted with an AES key held in the token, with AES-GCM
// (CKM_AES_GCM) and a fresh random 96-bit IV per wrap. It goes through
// github.com/ThalesGroup/crypto11 (on github.com/miekg/pkcs11), which loads
// the module with cgo: a binary built without cgo (CGO_ENABLED=0, or no C
// toolchain) has this seal type but refuses to start it, naming the cause.
//
//	seal "pkcs11" {
//	  lib          = "/usr/lib/softhsm/libsofthsm2.so"
//	  token_label  = "vigil"           # or slot = "0"
//	  pin          = "..."             # or VAULT_HSM_PIN
//	  key_label    = "vigil-root-key"
//	  mechanism    = "CKM_AES_GCM"     # the only one supported (0x1087)
//	  generate_key = "true"            # create the key when it is missing
//	}
package pkcs11

import (
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core/seal"
)

// Type is the seal type.
const Type = "pkcs11"

// Config is a parsed pkcs11 seal block.
type Config struct {
	Lib         string
	Slot        *int
	TokenLabel  string
	Pin         string
	KeyLabel    string
	KeyID       string
	GenerateKey bool
}

// ParseConfig reads a seal block, with Vault's VAULT_HSM_* variables as
// fallbacks.
func ParseConfig(o seal.Options) (Config, error) {
	if err := o.Known("lib", "slot", "token_label", "pin", "key_label", "key_id", "mechanism", "generate_key"); err != nil {
		return Config{}, err
	}
	var c Config
	var err error
	if c.Lib, err = o.Require("lib", "VAULT_HSM_LIB"); err != nil {
		return c, err
	}
	if v := o.Get("slot", "VAULT_HSM_SLOT"); v != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), map[bool]int{true: 16, false: 10}[strings.HasPrefix(v, "0x")], 32)
		if err != nil {
			return c, o.Errorf("slot: want a number, got %q", v)
		}
		i := int(n)
		c.Slot = &i
	}
	c.TokenLabel = o.Get("token_label", "VAULT_HSM_TOKEN_LABEL")
	if c.Slot == nil && c.TokenLabel == "" {
		return c, o.Errorf("slot or token_label is required (or VAULT_HSM_SLOT, VAULT_HSM_TOKEN_LABEL)")
	}
	if c.Pin, err = o.Require("pin", "VAULT_HSM_PIN"); err != nil {
		return c, err
	}
	c.KeyLabel = o.Get("key_label", "VAULT_HSM_KEY_LABEL")
	c.KeyID = o.Get("key_id", "VAULT_HSM_KEY_ID")
	if c.KeyLabel == "" && c.KeyID == "" {
		return c, o.Errorf("key_label or key_id is required (or VAULT_HSM_KEY_LABEL)")
	}
	switch m := strings.ToLower(o.Get("mechanism", "VAULT_HSM_MECHANISM")); m {
	case "", "ckm_aes_gcm", "aes-gcm", "0x1087", "4231":
	default:
		return c, o.Errorf("mechanism %q is not supported: only CKM_AES_GCM (0x1087)", m)
	}
	if c.GenerateKey, err = o.Bool("generate_key", false, "VAULT_HSM_GENERATE_KEY"); err != nil {
		return c, err
	}
	return c, nil
}
