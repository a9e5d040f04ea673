package transit_test

import (
	"net/http"
	"strings"
	"testing"
)

// A key version below min_decryption_version (or min_encryption_version)
// must not encrypt, sign, HMAC or wrap a data key: the result could never
// be decrypted or verified again. Each is a 400, as in Vault.
func TestTransitRefusesVersionsBelowTheMinimums(t *testing.T) {
	s := startTransit(t)
	c := s.Client
	for _, k := range []string{"aes", "ed"} {
		body := map[string]any{}
		if k == "ed" {
			body["type"] = "ed25519"
		}
		write(t, c, "transit/keys/"+k, body)
		write(t, c, "transit/keys/"+k+"/rotate", nil)
		write(t, c, "transit/keys/"+k+"/rotate", nil) // versions 1, 2, 3
		write(t, c, "transit/keys/"+k+"/config", map[string]any{"min_decryption_version": 2})
	}
	refused := []struct {
		path, msg string
		body      map[string]any
	}{
		{"transit/encrypt/aes", "minimum decryption key version", map[string]any{"plaintext": enc("x"), "key_version": 1}},
		{"transit/datakey/plaintext/aes", "minimum decryption key version", map[string]any{"key_version": 1}},
		{"transit/hmac/aes", "version is too old", map[string]any{"input": enc("x"), "key_version": 1}},
		{"transit/sign/ed", "minimum decryption key version", map[string]any{"input": enc("x"), "key_version": 1}},
	}
	for _, r := range refused {
		_, err := c.Logical().Write(r.path, r.body)
		wantHTTP(t, err, http.StatusBadRequest, r.msg)
	}
	// Rewrapping to an old version is refused too.
	ct := write(t, c, "transit/encrypt/aes", map[string]any{"plaintext": enc("x")})["ciphertext"].(string)
	_, err := c.Logical().Write("transit/rewrap/aes", map[string]any{"ciphertext": ct, "key_version": 1})
	wantHTTP(t, err, http.StatusBadRequest, "minimum decryption key version")
	// In a batch, the item fails and the request is a 400.
	sec, err := c.Logical().Write("transit/encrypt/aes", map[string]any{"batch_input": []map[string]any{{"plaintext": enc("x"), "key_version": 1}}})
	wantHTTP(t, err, http.StatusBadRequest, "")
	_ = sec

	// Version 2 still encrypts, and decrypts.
	d := write(t, c, "transit/encrypt/aes", map[string]any{"plaintext": enc("ok"), "key_version": 2})
	ct2 := d["ciphertext"].(string)
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("encrypt v2: %v", d)
	}
	write(t, c, "transit/decrypt/aes", map[string]any{"ciphertext": ct2})

	// min_encryption_version 3: version 2 no longer encrypts.
	write(t, c, "transit/keys/aes/config", map[string]any{"min_encryption_version": 3})
	_, err = c.Logical().Write("transit/encrypt/aes", map[string]any{"plaintext": enc("x"), "key_version": 2})
	wantHTTP(t, err, http.StatusBadRequest, "minimum encryption key version")
}
