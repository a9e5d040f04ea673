package transit

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestEncryptDecryptEveryEncryptionType(t *testing.T) {
	_, c := newEngine(t)
	for _, typ := range []keyType{typeAES128, typeAES256, typeChaCha, typeRSA2048, typeRSA4096} {
		t.Run(string(typ), func(t *testing.T) {
			name := "k-" + string(typ)
			must(t)(c.Write("keys/"+name, map[string]any{"type": string(typ)}))
			for _, pt := range []string{"", "a", strings.Repeat("longer plaintext ", 10)} {
				d := must(t)(c.Write("encrypt/"+name, map[string]any{"plaintext": b64(pt)}))
				ct := str(t, d, "ciphertext")
				if !strings.HasPrefix(ct, "vault:v1:") || d["key_version"] != 1 {
					t.Fatalf("encrypt: %v", d)
				}
				if got := unb64(t, must(t)(c.Write("decrypt/"+name, map[string]any{"ciphertext": ct}))["plaintext"]); got != pt {
					t.Errorf("round trip of %q gave %q", pt, got)
				}
			}
		})
	}
}

func TestAEADCiphertextLayout(t *testing.T) {
	// nonce(12) || ciphertext || tag(16): a fresh nonce per call.
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	seen := map[string]bool{}
	for range 3 {
		ct := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("0123456789")})), "ciphertext")
		blob, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:"))
		if err != nil {
			t.Fatal(err)
		}
		if len(blob) != nonceSize+10+16 {
			t.Fatalf("payload is %d bytes, want %d", len(blob), nonceSize+10+16)
		}
		if seen[string(blob[:nonceSize])] {
			t.Fatal("nonce reused")
		}
		seen[string(blob[:nonceSize])] = true
	}
}

func TestRotationAndMinVersions(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	var cts []string // cts[i] encrypted with version i+1
	for v := 1; v <= 3; v++ {
		if v > 1 {
			if d := must(t)(c.Write("keys/k/rotate", nil)); d["latest_version"] != v {
				t.Fatalf("rotate: latest_version %v, want %d", d["latest_version"], v)
			}
		}
		d := must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64(fmt.Sprint("v", v))}))
		if d["key_version"] != v || !strings.HasPrefix(str(t, d, "ciphertext"), fmt.Sprintf("vault:v%d:", v)) {
			t.Fatalf("encrypt after rotation to %d: %v", v, d)
		}
		cts = append(cts, d["ciphertext"].(string))
	}
	// Every old version still decrypts.
	for i, ct := range cts {
		if got := unb64(t, must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": ct}))["plaintext"]); got != fmt.Sprint("v", i+1) {
			t.Errorf("version %d decrypts to %q", i+1, got)
		}
	}
	// An explicit old version may encrypt until min_encryption_version forbids it.
	must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": 1}))
	must(t)(c.Write("keys/k/config", map[string]any{"min_encryption_version": 2}))
	invalid(t, "requested version for encryption is less than the minimum encryption key version")(
		c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": 1}))
	invalid(t, "requested version for encryption is higher than the latest key version")(
		c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": 4}))
	invalid(t, "requested version for encryption is negative")(
		c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "key_version": -1}))

	// Raising min_decryption_version retires old ciphertexts, with a clear 400.
	must(t)(c.Write("keys/k/config", map[string]any{"min_decryption_version": 2}))
	invalid(t, "ciphertext or signature version is disallowed by policy (too old)")(
		c.Write("decrypt/k", map[string]any{"ciphertext": cts[0]}))
	must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": cts[1]}))
	keys := must(t)(c.Read("keys/k", nil))["keys"].(map[string]int64)
	if _, ok := keys["1"]; ok || len(keys) != 2 {
		t.Errorf("read lists versions %v, want 2 and 3 only", keys)
	}
	// Lowering it again brings version 1 back (it was never deleted).
	must(t)(c.Write("keys/k/config", map[string]any{"min_decryption_version": 1}))
	must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": cts[0]}))
}

func TestDecryptBadCiphertexts(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	ct := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("secret")})), "ciphertext")
	blob, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:"))
	flip := func(i int) string {
		b := slices.Clone(blob)
		b[i] ^= 1
		return "vault:v1:" + base64.StdEncoding.EncodeToString(b)
	}
	for ciphertext, msg := range map[string]string{
		flip(0):             "message authentication failed", // nonce
		flip(nonceSize):     "message authentication failed", // ciphertext
		flip(len(blob) - 1): "message authentication failed", // tag
		"vault:v1:" + base64.StdEncoding.EncodeToString(blob[:nonceSize+15]): "invalid ciphertext length",
		"vault:v1:not*base64":                "invalid ciphertext: could not decode base64",
		"vault:v2:" + ct[len("vault:v1:"):]:  "invalid ciphertext: version is too new",
		"vault:vv1:" + ct[len("vault:v1:"):]: "invalid ciphertext: version number could not be decoded",
		"vlt:v1:" + ct[len("vault:v1:"):]:    "invalid ciphertext: no prefix",
		strings.TrimPrefix(ct, "vault:v1:"):  "invalid ciphertext: no prefix",
		"vault:v1":                           "invalid ciphertext: wrong number of fields",
	} {
		invalid(t, msg)(c.Write("decrypt/k", map[string]any{"ciphertext": ciphertext}))
	}
	invalid(t, "missing ciphertext to decrypt")(c.Write("decrypt/k", nil))
	invalid(t, "encryption key not found")(c.Write("decrypt/nope", map[string]any{"ciphertext": ct}))
	// A ciphertext of another key does not decrypt.
	must(t)(c.Write("keys/other", nil))
	invalid(t, "message authentication failed")(c.Write("decrypt/other", map[string]any{"ciphertext": ct}))
}

func TestEncryptBadInput(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519"}))
	must(t)(c.Write("keys/mac", map[string]any{"type": "hmac"}))
	must(t)(c.Write("keys/rsa", map[string]any{"type": "rsa-2048"}))
	for _, tc := range []struct {
		path string
		data map[string]any
		msg  string
	}{
		{"encrypt/k", nil, "missing plaintext to encrypt"},
		{"encrypt/k", map[string]any{"plaintext": "not base64!"}, "unable to decode plaintext as base64"},
		{"encrypt/k", map[string]any{"plaintext": b64("x"), "nonce": b64("123456789012")}, "provided nonce not allowed for this key"},
		{"encrypt/k", map[string]any{"plaintext": b64("x"), "associated_data": "%%"}, "unable to decode associated_data as base64"},
		{"encrypt/ed", map[string]any{"plaintext": b64("x")}, "message encryption not supported for key type ed25519"},
		{"encrypt/mac", map[string]any{"plaintext": b64("x")}, "message encryption not supported for key type hmac"},
		{"decrypt/ed", map[string]any{"ciphertext": "vault:v1:AAAA"}, "message decryption not supported for key type ed25519"},
		{"encrypt/rsa", map[string]any{"plaintext": b64("x"), "associated_data": b64("ad")}, "associated_data provided for non-AEAD cipher suite rsa-2048"},
		{"encrypt/rsa", map[string]any{"plaintext": b64(strings.Repeat("x", 256))}, "failed to RSA encrypt the plaintext"},
		{"encrypt/nope", map[string]any{"plaintext": b64("x")}, "encryption key not found"},
	} {
		invalid(t, tc.msg)(c.Write(tc.path, tc.data))
	}
}

func TestAssociatedData(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"type": "chacha20-poly1305"}))
	ad := b64("row 42")
	ct := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "associated_data": ad})), "ciphertext")
	must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": ct, "associated_data": ad}))
	invalid(t, "message authentication failed")(c.Write("decrypt/k", map[string]any{"ciphertext": ct}))
	invalid(t, "message authentication failed")(c.Write("decrypt/k", map[string]any{"ciphertext": ct, "associated_data": b64("row 43")}))
}

func TestDerivedKeys(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"derived": true}))
	invalid(t, "missing 'context' for key derivation")(c.Write("encrypt/k", map[string]any{"plaintext": b64("x")}))
	ctA := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "context": b64("a")})), "ciphertext")
	if got := unb64(t, must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": ctA, "context": b64("a")}))["plaintext"]); got != "x" {
		t.Errorf("derived round trip: %q", got)
	}
	invalid(t, "message authentication failed")(c.Write("decrypt/k", map[string]any{"ciphertext": ctA, "context": b64("b")}))
	invalid(t, "missing 'context' for key derivation")(c.Write("decrypt/k", map[string]any{"ciphertext": ctA}))
	invalid(t, "unable to decode context as base64")(c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "context": "%%%"}))
	// Not convergent: the same input encrypts differently each time.
	ctA2 := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("x"), "context": b64("a")})), "ciphertext")
	if ctA2 == ctA {
		t.Error("derived, non-convergent encryption is deterministic")
	}
}

func TestConvergentEncryption(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"derived": true, "convergent_encryption": true}))
	enc := func(pt, ctx string) string {
		return str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64(pt), "context": b64(ctx)})), "ciphertext")
	}
	if first, second := enc("x", "a"), enc("x", "a"); first != second {
		t.Error("same plaintext and context encrypt differently")
	}
	if enc("x", "a") == enc("y", "a") || enc("x", "a") == enc("x", "b") {
		t.Error("different plaintext or context encrypt alike")
	}
	// After a rotation the same input encrypts under the new version.
	v1 := enc("x", "a")
	must(t)(c.Write("keys/k/rotate", nil))
	if v2 := enc("x", "a"); v2 == v1 || !strings.HasPrefix(v2, "vault:v2:") {
		t.Errorf("after rotation: %s (was %s)", v2, v1)
	}
	if got := unb64(t, must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": v1, "context": b64("a")}))["plaintext"]); got != "x" {
		t.Errorf("convergent v1 decrypts to %q", got)
	}
}

func TestEncryptCreatesMissingKey(t *testing.T) {
	// POST encrypt/<missing> arrives as OpCreate (the route's existence
	// check says the key is missing) and creates the key, as Vault does.
	_, c := newEngine(t)
	exists, ok, err := c.Exists(t.Context(), "encrypt/auto", nil)
	if err != nil || !ok || exists {
		t.Fatalf("existence check: exists=%v ok=%v err=%v", exists, ok, err)
	}
	d := must(t)(c.Call(t.Context(), core.OpCreate, "encrypt/auto", map[string]any{"plaintext": b64("x"), "type": "chacha20-poly1305"}))
	if d["key_version"] != 1 {
		t.Fatalf("encrypt with upsert: %v", d)
	}
	if typ := must(t)(c.Read("keys/auto", nil))["type"]; typ != "chacha20-poly1305" {
		t.Errorf("upserted key type %v", typ)
	}
	// A context on the creating request makes a derived key.
	must(t)(c.Call(t.Context(), core.OpCreate, "encrypt/autoderived", map[string]any{"plaintext": b64("x"), "context": b64("c")}))
	if derived := must(t)(c.Read("keys/autoderived", nil))["derived"]; derived != true {
		t.Errorf("key upserted with a context is not derived")
	}
	invalid(t, "key type ecdsa-p256 not supported for this operation")(
		c.Call(t.Context(), core.OpCreate, "encrypt/x", map[string]any{"plaintext": b64("x"), "type": "ecdsa-p256"}))
	invalid(t, "unknown key type des")(
		c.Call(t.Context(), core.OpCreate, "encrypt/x", map[string]any{"plaintext": b64("x"), "type": "des"}))
	invalid(t, "convergent encryption requires derivation to be enabled, so context is required")(
		c.Call(t.Context(), core.OpCreate, "encrypt/x", map[string]any{"plaintext": b64("x"), "convergent_encryption": true}))
	// Lost the race: the key exists by the time the create runs.
	resp, err := c.Call(t.Context(), core.OpCreate, "encrypt/auto", map[string]any{"plaintext": b64("x")})
	if err != nil || !slices.Contains(resp.Warnings, "Attempted creation of the key during the encrypt operation, but it was created beforehand") {
		t.Errorf("create on an existing key: %v %v", resp, err)
	}
}

func TestEncryptBatch(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	must(t)(c.Write("keys/k/rotate", nil))
	resp, err := c.Write("encrypt/k", map[string]any{"batch_input": []any{
		map[string]any{"plaintext": b64("one"), "reference": "r1"},
		map[string]any{"plaintext": "%%% not base64", "reference": "r2"},
		map[string]any{"plaintext": b64("three"), "key_version": 1},
		map[string]any{"reference": "r4"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("batch with a failed item: status %d, want 400 (Vault's default)", resp.StatusCode)
	}
	res := batch(t, resp)
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	if res[0]["reference"] != "r1" || res[0]["key_version"] != 2 || res[0]["error"] != nil {
		t.Errorf("item 0: %v", res[0])
	}
	if res[1]["reference"] != "r2" || res[1]["ciphertext"] != nil || !strings.Contains(fmt.Sprint(res[1]["error"]), "unable to decode plaintext as base64") {
		t.Errorf("item 1: %v", res[1])
	}
	if res[2]["key_version"] != 1 || !strings.HasPrefix(fmt.Sprint(res[2]["ciphertext"]), "vault:v1:") {
		t.Errorf("item 2: %v", res[2])
	}
	if res[3]["error"] != "missing plaintext to encrypt" {
		t.Errorf("item 3: %v", res[3])
	}
	// The good items decrypt, in one batch.
	dresp, err := c.Write("decrypt/k", map[string]any{"batch_input": []any{
		map[string]any{"ciphertext": res[0]["ciphertext"]},
		map[string]any{"ciphertext": res[2]["ciphertext"]},
	}})
	if err != nil || dresp.StatusCode != 0 {
		t.Fatalf("batch decrypt: %v %v", dresp, err)
	}
	dres := batch(t, dresp)
	if unb64(t, dres[0]["plaintext"]) != "one" || unb64(t, dres[1]["plaintext"]) != "three" {
		t.Errorf("batch decrypt: %v", dres)
	}

	// partial_failure_response_code answers partial failures with that status.
	resp, err = c.Write("encrypt/k", map[string]any{"partial_failure_response_code": 207, "batch_input": []any{
		map[string]any{"plaintext": b64("ok")}, map[string]any{"plaintext": "!!"},
	}})
	if err != nil || resp.StatusCode != 207 {
		t.Errorf("partial failure code: %v %v", resp, err)
	}
	resp, err = c.Write("encrypt/k", map[string]any{"partial_failure_response_code": 999, "batch_input": []any{
		map[string]any{"plaintext": b64("ok")}, map[string]any{"plaintext": "!!"},
	}})
	if err != nil || resp.StatusCode != 400 || len(resp.Warnings) == 0 {
		t.Errorf("invalid partial failure code: %v %v", resp, err)
	}
	// ...but not when every item failed.
	resp, err = c.Write("encrypt/k", map[string]any{"partial_failure_response_code": 207, "batch_input": []any{map[string]any{"plaintext": "!!"}}})
	if err != nil || resp.StatusCode != 400 {
		t.Errorf("all items failed: %v %v", resp, err)
	}

	invalid(t, "missing batch input to process")(c.Write("encrypt/k", map[string]any{"batch_input": []any{}}))
	invalid(t, "expected a map")(c.Write("encrypt/k", map[string]any{"batch_input": []any{"x"}}))
	invalid(t, "context should be set either in all the request blocks or in none")(c.Write("encrypt/k", map[string]any{"batch_input": []any{
		map[string]any{"plaintext": b64("a"), "context": b64("c")}, map[string]any{"plaintext": b64("b")},
	}}))
	resp, err = c.Write("encrypt/k", map[string]any{"batch_input": []any{map[string]any{"plaintext": 5}}})
	if err != nil || !strings.Contains(fmt.Sprint(batch(t, resp)[0]["error"]), "expected type 'string'") {
		t.Errorf("non-string plaintext: %v %v", resp, err)
	}
}

func TestDecryptBatchPerItemErrors(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	ct := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("x")})), "ciphertext")
	resp, err := c.Write("decrypt/k", map[string]any{"batch_input": []any{
		map[string]any{"ciphertext": ct},
		map[string]any{"ciphertext": "vault:v1:AAAA"},
		map[string]any{},
	}})
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("%v %v", resp, err)
	}
	res := batch(t, resp)
	if unb64(t, res[0]["plaintext"]) != "x" || res[1]["error"] != "invalid ciphertext length" || res[2]["error"] != "missing ciphertext to decrypt" {
		t.Errorf("results: %v", res)
	}
}

func TestRewrap(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"derived": true}))
	ctx := b64("c")
	v1 := str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("secret"), "context": ctx})), "ciphertext")
	must(t)(c.Write("keys/k/rotate", nil))
	d := must(t)(c.Write("rewrap/k", map[string]any{"ciphertext": v1, "context": ctx}))
	v2 := str(t, d, "ciphertext")
	if d["key_version"] != 2 || !strings.HasPrefix(v2, "vault:v2:") {
		t.Fatalf("rewrap: %v", d)
	}
	must(t)(c.Write("keys/k/config", map[string]any{"min_decryption_version": 2}))
	if got := unb64(t, must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": v2, "context": ctx}))["plaintext"]); got != "secret" {
		t.Errorf("rewrapped ciphertext decrypts to %q", got)
	}
	invalid(t, "too old")(c.Write("rewrap/k", map[string]any{"ciphertext": v1, "context": ctx}))
	invalid(t, "missing ciphertext to rewrap")(c.Write("rewrap/k", nil))
	resp, err := c.Write("rewrap/k", map[string]any{"batch_input": []any{
		map[string]any{"ciphertext": v2, "context": ctx}, map[string]any{"ciphertext": v1, "context": ctx},
	}})
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("batch rewrap: %v %v", resp, err)
	}
	if res := batch(t, resp); res[0]["key_version"] != 2 || !strings.Contains(fmt.Sprint(res[1]["error"]), "too old") {
		t.Errorf("batch rewrap: %v", res)
	}
}

func TestConcurrentEncryptDuringRotation(t *testing.T) {
	// Encryptions racing rotations each use one consistent key version, and
	// every ciphertext decrypts afterwards (run with -race).
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	const workers, each, rotations = 4, 25, 10
	cts := make(chan string, workers*each)
	errs := make(chan error, workers*each+rotations)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				resp, err := c.Write("encrypt/k", map[string]any{"plaintext": b64(fmt.Sprint(w, "-", i))})
				if err != nil {
					errs <- err
					continue
				}
				cts <- resp.Data["ciphertext"].(string)
			}
		}()
	}
	go func() {
		defer func() { done <- struct{}{} }()
		for range rotations {
			if _, err := c.Write("keys/k/rotate", nil); err != nil {
				errs <- err
			}
		}
	}()
	for range workers + 1 {
		<-done
	}
	close(cts)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	for ct := range cts {
		must(t)(c.Write("decrypt/k", map[string]any{"ciphertext": ct}))
		n++
	}
	if n != workers*each {
		t.Errorf("%d ciphertexts, want %d", n, workers*each)
	}
	if v := must(t)(c.Read("keys/k", nil))["latest_version"]; v != rotations+1 {
		t.Errorf("latest_version %v after %d concurrent rotations, want %d", v, rotations, rotations+1)
	}
}
