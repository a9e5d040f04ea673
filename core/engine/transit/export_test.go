package transit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestExportNonExportable(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	for _, kind := range []string{"encryption-key", "signing-key", "hmac-key"} {
		invalid(t, "private key material is not exportable")(c.Read("export/"+kind+"/k", nil))
	}
	invalid(t, "invalid export type: everything")(c.Read("export/everything/k", nil))
	if _, err := c.Read("export/encryption-key/nope", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("export of a missing key: %v, want 404", err)
	}
	// exportable can be turned on later, and not off again.
	must(t)(c.Write("keys/k/config", map[string]any{"exportable": true}))
	must(t)(c.Read("export/encryption-key/k", nil))
	if d := must(t)(c.Write("keys/k/config", map[string]any{"exportable": false})); d["exportable"] != true {
		t.Error("exportable was unset")
	}
}

func TestExportedAESKeyDecryptsIndependently(t *testing.T) {
	// The exported key and Go's AES-GCM open a transit ciphertext laid out
	// as nonce || ciphertext || tag.
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"exportable": true}))
	ct := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("independent"), "associated_data": b64("ad")})), "ciphertext")
	d := must(t)(c.Read("export/encryption-key/k", nil))
	if d["name"] != "k" || d["type"] != "aes256-gcm96" {
		t.Errorf("export: %v", d)
	}
	key, _ := base64.StdEncoding.DecodeString(d["keys"].(map[string]string)["1"])
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, _ := cipher.NewGCM(blk)
	blob, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:"))
	pt, err := gcm.Open(nil, blob[:12], blob[12:], []byte("ad"))
	if err != nil || string(pt) != "independent" {
		t.Fatalf("independent decrypt: %q %v", pt, err)
	}
}

func TestExportKinds(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519", "exportable": true}))
	must(t)(c.Write("keys/ec", map[string]any{"type": "ecdsa-p256", "exportable": true}))
	must(t)(c.Write("keys/rsa", map[string]any{"type": "rsa-2048", "exportable": true}))
	must(t)(c.Write("keys/aes", map[string]any{"exportable": true}))

	// Ed25519: the exported 64-byte private key signs what transit verifies.
	priv, _ := base64.StdEncoding.DecodeString(must(t)(c.Read("export/signing-key/ed/1", nil))["keys"].(map[string]string)["1"])
	sig := "vault:v1:" + base64.StdEncoding.EncodeToString(ed25519.Sign(ed25519.PrivateKey(priv), []byte("m")))
	if v := must(t)(c.Write("verify/ed", map[string]any{"input": b64("m"), "signature": sig}))["valid"]; v != true {
		t.Error("signature made with the exported ed25519 key does not verify")
	}
	// ECDSA: SEC 1 "EC PRIVATE KEY"; RSA: PKCS#1 "RSA PRIVATE KEY".
	ecPEM := must(t)(c.Read("export/signing-key/ec/latest", nil))["keys"].(map[string]string)["1"]
	if blk, _ := pem.Decode([]byte(ecPEM)); blk == nil || blk.Type != "EC PRIVATE KEY" {
		t.Errorf("ecdsa export: %q", ecPEM)
	} else if _, err := x509.ParseECPrivateKey(blk.Bytes); err != nil {
		t.Error(err)
	}
	for _, kind := range []string{"signing-key", "encryption-key"} {
		rsaPEM := must(t)(c.Read("export/"+kind+"/rsa/v1", nil))["keys"].(map[string]string)["1"]
		if blk, _ := pem.Decode([]byte(rsaPEM)); blk == nil || blk.Type != "RSA PRIVATE KEY" {
			t.Errorf("rsa %s export: %q", kind, rsaPEM)
		} else if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
			t.Error(err)
		}
	}
	// hmac-key: the key hmac/:name uses.
	hk, _ := base64.StdEncoding.DecodeString(must(t)(c.Read("export/hmac-key/aes", nil))["keys"].(map[string]string)["1"])
	m := hmac.New(sha256.New, hk)
	m.Write([]byte("m"))
	if want, got := "vault:v1:"+base64.StdEncoding.EncodeToString(m.Sum(nil)), must(t)(c.Write("hmac/aes", map[string]any{"input": b64("m")}))["hmac"]; got != want {
		t.Errorf("exported hmac key gives %s, transit %v", want, got)
	}
	// public-key needs no exportable flag.
	must(t)(c.Write("keys/pub", map[string]any{"type": "ecdsa-p384"}))
	if pk := must(t)(c.Read("export/public-key/pub", nil))["keys"].(map[string]string)["1"]; !strings.Contains(pk, "BEGIN PUBLIC KEY") {
		t.Errorf("public key export: %q", pk)
	}

	invalid(t, "encryption not supported for the key")(c.Read("export/encryption-key/ed", nil))
	invalid(t, "signing not supported for the key")(c.Read("export/signing-key/aes", nil))
	invalid(t, "signing not supported for the key")(c.Read("export/public-key/aes", nil))
	invalid(t, "invalid key version")(c.Read("export/signing-key/ed/first", nil))
	invalid(t, "version does not exist or cannot be found")(c.Read("export/signing-key/ed/7", nil))

	// All retained versions, unless below min_decryption_version.
	must(t)(c.Write("keys/aes/rotate", nil))
	if keys := must(t)(c.Read("export/encryption-key/aes", nil))["keys"].(map[string]string); len(keys) != 2 {
		t.Errorf("export of all versions: %d keys", len(keys))
	}
	must(t)(c.Write("keys/aes/config", map[string]any{"min_decryption_version": 2}))
	if keys := must(t)(c.Read("export/encryption-key/aes", nil))["keys"].(map[string]string); len(keys) != 1 || keys["2"] == "" {
		t.Errorf("export after min_decryption_version 2: %v", keys)
	}
	invalid(t, "version for export is below minimum decryption version")(c.Read("export/encryption-key/aes/1", nil))
}
