package transit_test

// Integration tests: a real in-process Vigil server on a loopback port,
// driven with the official vault/api client. This file is an external test
// package so that it can import the server wiring (which will import this
// engine) without an import cycle.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/engine/transit"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// build is the binary's wiring plus this engine as type "transit".
func build(cfg *config.Config) (server.Options, error) {
	o, err := wire.Options(cfg)
	if err != nil {
		return o, err
	}
	o.Engines["transit"] = transit.New
	return o, nil
}

// startTransit starts a dev server with transit mounted at transit/.
func startTransit(tb testing.TB) *servertest.Server {
	tb.Helper()
	s := servertest.MustStart(tb, build, servertest.Options{Dev: true})
	if err := s.Client.Sys().Mount("transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
		tb.Fatalf("mount transit: %v", err)
	}
	return s
}

func enc(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func write(t *testing.T, c *vaultapi.Client, path string, data map[string]any) map[string]any {
	t.Helper()
	sec, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if sec == nil {
		return nil
	}
	return sec.Data
}

// wantHTTP checks that err is a vault/api response error with status and a
// message containing msg.
func wantHTTP(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want an HTTP %d error", err, status)
	}
	if re.StatusCode != status || !strings.Contains(strings.Join(re.Errors, "\n"), msg) {
		t.Fatalf("got HTTP %d %q, want %d containing %q", re.StatusCode, re.Errors, status, msg)
	}
}

func TestVaultAPIClientTransit(t *testing.T) {
	s := startTransit(t)
	c := s.Client

	// Encrypting with a missing key creates it (the route's existence check
	// makes the request a create), as Vault does.
	d := write(t, c, "transit/encrypt/orders", map[string]any{"plaintext": enc("4111 1111 1111 1111")})
	ct, _ := d["ciphertext"].(string)
	if !strings.HasPrefix(ct, "vault:v1:") || d["key_version"] != json.Number("1") {
		t.Fatalf("encrypt: %v", d)
	}
	d = write(t, c, "transit/decrypt/orders", map[string]any{"ciphertext": ct})
	if pt, _ := base64.StdEncoding.DecodeString(d["plaintext"].(string)); string(pt) != "4111 1111 1111 1111" {
		t.Fatalf("decrypt: %v", d)
	}

	// Key read in Vault's shape.
	sec, err := c.Logical().Read("transit/keys/orders")
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["type"] != "aes256-gcm96" || sec.Data["latest_version"] != json.Number("1") || sec.Data["supports_encryption"] != true {
		t.Errorf("key read: %v", sec.Data)
	}
	if keys, _ := sec.Data["keys"].(map[string]any); keys["1"] == nil {
		t.Errorf("key read keys: %v", sec.Data["keys"])
	}

	// Rotation: old ciphertexts decrypt until min_decryption_version rises,
	// then fail with a clear 400.
	write(t, c, "transit/keys/orders/rotate", nil)
	d = write(t, c, "transit/rewrap/orders", map[string]any{"ciphertext": ct})
	ct2 := d["ciphertext"].(string)
	if !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("rewrap: %v", d)
	}
	write(t, c, "transit/keys/orders/config", map[string]any{"min_decryption_version": 2})
	_, err = c.Logical().Write("transit/decrypt/orders", map[string]any{"ciphertext": ct})
	wantHTTP(t, err, http.StatusBadRequest, "ciphertext or signature version is disallowed by policy (too old)")
	write(t, c, "transit/decrypt/orders", map[string]any{"ciphertext": ct2})

	// Tampered ciphertext.
	blob, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct2, "vault:v2:"))
	blob[len(blob)-1] ^= 1
	_, err = c.Logical().Write("transit/decrypt/orders", map[string]any{"ciphertext": "vault:v2:" + base64.StdEncoding.EncodeToString(blob)})
	wantHTTP(t, err, http.StatusBadRequest, "message authentication failed")

	// Unknown key type; sign with an encryption-only key.
	_, err = c.Logical().Write("transit/keys/bad", map[string]any{"type": "rot13"})
	wantHTTP(t, err, http.StatusBadRequest, "unknown key type rot13")
	_, err = c.Logical().Write("transit/sign/orders", map[string]any{"input": enc("x")})
	wantHTTP(t, err, http.StatusBadRequest, "key type aes256-gcm96 does not support signing")

	// Sign and verify with ed25519 and ECDSA (path algorithm, JWS).
	write(t, c, "transit/keys/signer", map[string]any{"type": "ed25519"})
	sig := write(t, c, "transit/sign/signer", map[string]any{"input": enc("msg")})["signature"]
	if v := write(t, c, "transit/verify/signer", map[string]any{"input": enc("msg"), "signature": sig})["valid"]; v != true {
		t.Errorf("ed25519 verify: %v", v)
	}
	write(t, c, "transit/keys/ec", map[string]any{"type": "ecdsa-p256"})
	sig = write(t, c, "transit/sign/ec/sha2-384", map[string]any{"input": enc("msg"), "marshaling_algorithm": "jws"})["signature"]
	if v := write(t, c, "transit/verify/ec/sha2-384", map[string]any{"input": enc("msg"), "signature": sig, "marshaling_algorithm": "jws"})["valid"]; v != true {
		t.Errorf("ecdsa verify: %v", v)
	}

	// HMAC, hash, random, data keys.
	mac := write(t, c, "transit/hmac/orders/sha2-512", map[string]any{"input": enc("msg")})["hmac"]
	if v := write(t, c, "transit/verify/orders/sha2-512", map[string]any{"input": enc("msg"), "hmac": mac})["valid"]; v != true {
		t.Errorf("hmac verify: %v", v)
	}
	if sum := write(t, c, "transit/hash/sha2-256", map[string]any{"input": enc("hello world")})["sum"]; sum != "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9" {
		t.Errorf("hash: %v", sum)
	}
	if rb, _ := write(t, c, "transit/random/24", map[string]any{"format": "hex"})["random_bytes"].(string); len(rb) != 48 {
		t.Errorf("random: %q", rb)
	}
	dk := write(t, c, "transit/datakey/plaintext/orders", map[string]any{"bits": 512})
	if back := write(t, c, "transit/decrypt/orders", map[string]any{"ciphertext": dk["ciphertext"]}); back["plaintext"] != dk["plaintext"] {
		t.Errorf("datakey round trip: %v vs %v", back, dk)
	}

	// List, export refusal, delete rules.
	list, err := c.Logical().List("transit/keys")
	if err != nil || list == nil {
		t.Fatalf("list: %v %v", list, err)
	}
	if keys, _ := list.Data["keys"].([]any); len(keys) != 3 {
		t.Errorf("list: %v", list.Data)
	}
	_, err = c.Logical().Read("transit/export/encryption-key/orders")
	wantHTTP(t, err, http.StatusBadRequest, "private key material is not exportable")
	_, err = c.Logical().Delete("transit/keys/orders")
	wantHTTP(t, err, http.StatusBadRequest, "deletion is not allowed for this key")
	write(t, c, "transit/keys/orders/config", map[string]any{"deletion_allowed": true})
	if _, err := c.Logical().Delete("transit/keys/orders"); err != nil {
		t.Fatal(err)
	}
	if sec, err := c.Logical().Read("transit/keys/orders"); err != nil || sec != nil {
		t.Errorf("read after delete: %v %v", sec, err)
	}
}

func TestVaultAPIClientTransitBatch(t *testing.T) {
	s := startTransit(t)
	c := s.Client
	write(t, c, "transit/keys/k", nil)
	items := []map[string]any{{"plaintext": enc("a")}, {"plaintext": "not-base64!"}, {"plaintext": enc("c")}}

	// Vault answers a batch with a failed item with 400 and the results in
	// the body; the client surfaces the error, RawRequest shows the body.
	r := c.NewRequest(http.MethodPost, "/v1/transit/encrypt/k")
	if err := r.SetJSONBody(map[string]any{"batch_input": items}); err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 RawRequest gives access to the body of a 400.
	resp, err := c.RawRequest(r)
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("batch with a bad item: %v %v", resp, err)
	}
	sec, perr := vaultapi.ParseSecret(resp.Body)
	resp.Body.Close()
	if perr != nil {
		t.Fatal(perr)
	}
	results := sec.Data["batch_results"].([]any)
	if len(results) != 3 || results[0].(map[string]any)["ciphertext"] == nil || results[2].(map[string]any)["ciphertext"] == nil ||
		!strings.Contains(results[1].(map[string]any)["error"].(string), "unable to decode plaintext as base64") {
		t.Fatalf("batch results: %v", results)
	}

	// With partial_failure_response_code=200 the client takes the answer.
	d := write(t, c, "transit/encrypt/k", map[string]any{"batch_input": items, "partial_failure_response_code": 200})
	results = d["batch_results"].([]any)
	var back []any
	for _, i := range []int{0, 2} {
		back = append(back, map[string]any{"ciphertext": results[i].(map[string]any)["ciphertext"]})
	}
	dec := write(t, c, "transit/decrypt/k", map[string]any{"batch_input": back})["batch_results"].([]any)
	if dec[0].(map[string]any)["plaintext"] != enc("a") || dec[1].(map[string]any)["plaintext"] != enc("c") {
		t.Errorf("batch decrypt: %v", dec)
	}
}

func TestTransitKeysSurviveRestartInsideTheBarrier(t *testing.T) {
	s := startTransit(t)
	c := s.Client
	write(t, c, "transit/keys/k", map[string]any{"exportable": true})
	ct := write(t, c, "transit/encrypt/k", map[string]any{"plaintext": enc("durable")})["ciphertext"]
	exported, err := c.Logical().Read("transit/export/encryption-key/k/1")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(exported.Data["keys"].(map[string]any)["1"].(string))

	s.Restart()
	c = s.Client
	d := write(t, c, "transit/decrypt/k", map[string]any{"ciphertext": ct})
	if d["plaintext"] != enc("durable") {
		t.Fatalf("decrypt after restart: %v", d)
	}
	// Neither the raw key nor its base64 appears anywhere on disk: it is
	// stored only through the encrypted barrier.
	needles := [][]byte{key, []byte(base64.StdEncoding.EncodeToString(key))}
	err = filepath.WalkDir(s.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds the key in the clear", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
