package transit

import (
	"encoding/base64"
	"testing"
)

func TestDatakey(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	for _, bits := range []int{128, 256, 512} {
		d := must(t)(c.Write("datakey/plaintext/k", map[string]any{"bits": bits}))
		key, err := base64.StdEncoding.DecodeString(str(t, d, "plaintext"))
		if err != nil || len(key) != bits/8 || d["key_version"] != 1 {
			t.Fatalf("%d bits: %v", bits, d)
		}
		dec := must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": d["ciphertext"]}))
		if dec["plaintext"] != d["plaintext"] {
			t.Errorf("%d bits: wrapped key decrypts to %v, want %v", bits, dec["plaintext"], d["plaintext"])
		}
	}
	d := must(t)(c.Write("datakey/wrapped/k", nil))
	if _, ok := d["plaintext"]; ok {
		t.Error("wrapped data key returns the plaintext")
	}
	dec := must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": d["ciphertext"]}))
	if raw, _ := base64.StdEncoding.DecodeString(str(t, dec, "plaintext")); len(raw) != 32 {
		t.Errorf("default data key is %d bytes, want 32", len(raw))
	}

	must(t)(c.Write("keys/dk", map[string]any{"derived": true}))
	d = must(t)(c.Write("datakey/plaintext/dk", map[string]any{"context": b64("c")}))
	if dec := must(t)(c.Write("decrypt/dk", map[string]any{"ciphertext": d["ciphertext"], "context": b64("c")})); dec["plaintext"] != d["plaintext"] {
		t.Error("derived data key round trip failed")
	}
	must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519"}))

	invalid(t, "Invalid path, must be 'plaintext' or 'wrapped'")(c.Write("datakey/raw/k", nil))
	invalid(t, "invalid bit length 100")(c.Write("datakey/plaintext/k", map[string]any{"bits": 100}))
	invalid(t, "encryption key not found")(c.Write("datakey/plaintext/nope", nil))
	invalid(t, "missing 'context' for key derivation")(c.Write("datakey/plaintext/dk", nil))
	invalid(t, "message encryption not supported for key type ed25519")(c.Write("datakey/wrapped/ed", nil))
}
