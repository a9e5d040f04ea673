package transit

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestCreateAndReadKeyShape(t *testing.T) {
	_, c := newEngine(t)
	created := must(t)(c.Write("keys/orders", nil))
	want := map[string]any{
		"name": "orders", "type": "aes256-gcm96", "derived": false, "deletion_allowed": false,
		"min_available_version": 0, "min_decryption_version": 1, "min_encryption_version": 0, "latest_version": 1,
		"exportable": false, "allow_plaintext_backup": false, "supports_encryption": true, "supports_decryption": true,
		"supports_signing": false, "supports_derivation": true, "auto_rotate_period": 0, "imported_key": false,
		"keys": map[string]any{"1": enginetest.Epoch.Unix()},
	}
	equalJSON(t, "create response", created, want)
	equalJSON(t, "read", must(t)(c.Read("keys/orders", nil)), want)
}

func TestCreateEveryType(t *testing.T) {
	_, c := newEngine(t)
	for _, tc := range []struct {
		typ                  keyType
		enc, sign, derivable bool
		pubName              string
	}{
		{typeAES128, true, false, true, ""},
		{typeAES256, true, false, true, ""},
		{typeChaCha, true, false, true, ""},
		{typeHMAC, false, false, false, ""},
		{typeEd25519, false, true, true, "ed25519"},
		{typeP256, false, true, false, "P-256"},
		{typeP384, false, true, false, "P-384"},
		{typeP521, false, true, false, "P-521"},
		{typeRSA2048, true, true, false, "rsa-2048"},
		{typeRSA3072, true, true, false, "rsa-3072"},
		{typeRSA4096, true, true, false, "rsa-4096"},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			name := "k-" + string(tc.typ)
			d := must(t)(c.Write("keys/"+name, map[string]any{"type": string(tc.typ)}))
			if d["type"] != string(tc.typ) || d["supports_encryption"] != tc.enc || d["supports_decryption"] != tc.enc ||
				d["supports_signing"] != tc.sign || d["supports_derivation"] != tc.derivable {
				t.Fatalf("flags: %v", d)
			}
			if tc.typ == typeHMAC && d["key_size"] != hmacKeyDef {
				t.Errorf("hmac key_size = %v, want %d", d["key_size"], hmacKeyDef)
			}
			if !tc.sign {
				return
			}
			k := d["keys"].(map[string]map[string]any)["1"]
			if k["name"] != tc.pubName || k["creation_time"] != enginetest.Epoch.Format(time.RFC3339Nano) {
				t.Errorf("key 1: %v", k)
			}
			checkPublicKey(t, tc.typ, k["public_key"].(string))
		})
	}
}

// checkPublicKey parses a public key as Vault formats it: base64 for
// Ed25519, PEM "PUBLIC KEY" (PKIX) for ECDSA and RSA.
func checkPublicKey(t *testing.T, typ keyType, s string) {
	t.Helper()
	if typ == typeEd25519 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != ed25519.PublicKeySize {
			t.Fatalf("ed25519 public key %q: %v", s, err)
		}
		return
	}
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		t.Fatalf("public key is not a PEM PUBLIC KEY: %q", s)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != typ.curve() {
			t.Errorf("curve %s, want %s", k.Curve.Params().Name, typ.curve().Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() != typ.rsaBits() {
			t.Errorf("modulus %d bits, want %d", k.N.BitLen(), typ.rsaBits())
		}
	default:
		t.Errorf("public key is a %T", pub)
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	_, c := newEngine(t)
	for _, tc := range []struct {
		data map[string]any
		msg  string
	}{
		{map[string]any{"type": "aes512-gcm"}, "unknown key type aes512-gcm"},
		{map[string]any{"convergent_encryption": true}, "convergent encryption requires derivation to be enabled"},
		{map[string]any{"type": "ecdsa-p256", "derived": true}, "key derivation and convergent encryption not supported for keys of type ecdsa-p256"},
		{map[string]any{"type": "rsa-2048", "derived": true}, "not supported for keys of type rsa-2048"},
		{map[string]any{"type": "ed25519", "derived": true, "convergent_encryption": true}, "convergent encryption not supported for keys of type ed25519"},
		{map[string]any{"key_size": 64}, "key_size is not valid for algorithm aes256-gcm96"},
		{map[string]any{"type": "hmac", "key_size": 16}, "invalid key_size 16"},
		{map[string]any{"type": "hmac", "key_size": 1024}, "invalid key_size 1024"},
		{map[string]any{"auto_rotate_period": "30m"}, "auto rotate period must be 0 to disable or at least an hour"},
	} {
		invalid(t, tc.msg)(c.Write("keys/bad", tc.data))
	}
	if _, err := c.Read("keys/bad", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("rejected creations left a key behind: %v", err)
	}
}

func TestCreateExistingKeyIsUnchanged(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"type": "chacha20-poly1305"}))
	resp, err := c.Write("keys/k", map[string]any{"type": "ed25519", "exportable": true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Data["type"] != "chacha20-poly1305" || resp.Data["exportable"] != false {
		t.Errorf("second create changed the key: %v", resp.Data)
	}
	if !slices.Contains(resp.Warnings, "key k already existed") {
		t.Errorf("warnings %v lack the already-existed warning", resp.Warnings)
	}
}

func TestCreateOptionsShown(t *testing.T) {
	_, c := newEngine(t)
	d := must(t)(c.Write("keys/k", map[string]any{
		"derived": true, "convergent_encryption": true, "exportable": true, "allow_plaintext_backup": true, "auto_rotate_period": "24h",
	}))
	for k, v := range map[string]any{
		"derived": true, "convergent_encryption": true, "convergent_encryption_version": convergentVersionNow,
		"kdf": "hkdf_sha256", "exportable": true, "allow_plaintext_backup": true, "auto_rotate_period": int64(86400),
	} {
		if d[k] != v {
			t.Errorf("%s = %#v, want %#v", k, d[k], v)
		}
	}
}

func TestListKeys(t *testing.T) {
	_, c := newEngine(t)
	_, err := c.List("keys/")
	if core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("empty list: %v, want 404", err)
	}
	for _, n := range []string{"b", "a", "c.d"} {
		must(t)(c.Write("keys/"+n, nil))
	}
	equalJSON(t, "list", must(t)(c.List("keys/")), map[string]any{"keys": []string{"a", "b", "c.d"}})
}

func TestReadMissingKey(t *testing.T) {
	_, c := newEngine(t)
	_, err := c.Read("keys/nope", nil)
	if core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("read missing key: %v, want 404", err)
	}
}

func TestDeleteKey(t *testing.T) {
	_, c := newEngine(t)
	invalid(t, "could not delete key; not found")(c.Delete("keys/k", nil))
	must(t)(c.Write("keys/k", nil))
	invalid(t, "deletion is not allowed for this key")(c.Delete("keys/k", nil))
	must(t)(c.Read("keys/k", nil)) // still there
	must(t)(c.Write("keys/k/config", map[string]any{"deletion_allowed": true}))
	must(t)(c.Delete("keys/k", nil))
	if _, err := c.Read("keys/k", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("read after delete: %v, want 404", err)
	}
	if c.Storage.Keys() != nil && slices.ContainsFunc(c.Storage.Keys(), func(k string) bool { return strings.HasSuffix(k, "policy/k") }) {
		t.Errorf("key material left in storage: %v", c.Storage.Keys())
	}
	invalid(t, "encryption key not found")(c.Write("encrypt/k", map[string]any{"plaintext": b64("x")}))
}

func TestDerivedEd25519PublicKeyNeedsContext(t *testing.T) {
	b, c := newEngine(t)
	b.rand = seqReader()
	must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519", "derived": true}))
	keys := must(t)(c.Read("keys/ed", nil))["keys"].(map[string]map[string]any)
	if keys["1"]["public_key"] != "" {
		t.Errorf("derived key without context shows public key %q", keys["1"]["public_key"])
	}
	keys = must(t)(c.Read("keys/ed", map[string]any{"context": b64("tenant-1")}))["keys"].(map[string]map[string]any)
	if got := keys["1"]["public_key"]; got != katEd25519DerivedPub {
		t.Errorf("derived public key %q, want %q", got, katEd25519DerivedPub)
	}
	invalid(t, "unable to decode context as base64")(c.Read("keys/ed", map[string]any{"context": "%%%"}))
}

func TestKeyMaterialOnlyInStorage(t *testing.T) {
	// Key material is stored under policy/<name> in the mount's view and
	// nowhere else; reads never return it.
	b, c := newEngine(t)
	b.rand = seqReader()
	d := must(t)(c.Write("keys/k", nil))
	keys := c.Storage.Keys()
	if len(keys) != 1 || keys[0] != c.View.Prefix()+"policy/k" {
		t.Errorf("storage keys %v, want only the policy record", keys)
	}
	raw, err := c.View.Get(t.Context(), "policy/k")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), base64.StdEncoding.EncodeToString(seqBytes(0, 32))) {
		t.Error("stored record does not hold the key")
	}
	if strings.Contains(string(asJSONBytes(t, d)), base64.StdEncoding.EncodeToString(seqBytes(0, 32))) {
		t.Error("key read returns key material")
	}
}

func seqBytes(from, to int) []byte {
	out := make([]byte, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, byte(i))
	}
	return out
}
