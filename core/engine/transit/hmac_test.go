package transit

import (
	"fmt"
	"strings"
	"testing"
)

func TestHMACVerifyEveryType(t *testing.T) {
	_, c := newEngine(t)
	for _, typ := range []keyType{typeAES256, typeChaCha, typeHMAC, typeEd25519, typeP256, typeRSA2048} {
		name := "k-" + string(typ)
		must(t)(c.Write("keys/"+name, map[string]any{"type": string(typ)}))
		for _, alg := range []string{"", "/sha1", "/sha2-224", "/sha2-384", "/sha3-256", "/sha3-512"} {
			mac := str(t, must(t)(c.Write("hmac/"+name+alg, map[string]any{"input": b64("data")})), "hmac")
			if !strings.HasPrefix(mac, "vault:v1:") {
				t.Fatalf("%s%s: hmac %q", typ, alg, mac)
			}
			if v := must(t)(c.Write("verify/"+name+alg, map[string]any{"input": b64("data"), "hmac": mac}))["valid"]; v != true {
				t.Errorf("%s%s: verify = %v", typ, alg, v)
			}
			if v := must(t)(c.Write("verify/"+name+alg, map[string]any{"input": b64("date"), "hmac": mac}))["valid"]; v != false {
				t.Errorf("%s%s: verify of other data = %v", typ, alg, v)
			}
		}
	}
	// hash_algorithm in the body selects the verification algorithm too.
	mac := str(t, must(t)(c.Write("hmac/k-hmac/sha2-512", map[string]any{"input": b64("d")})), "hmac")
	if v := must(t)(c.Write("verify/k-hmac", map[string]any{"input": b64("d"), "hmac": mac, "hash_algorithm": "sha2-512"}))["valid"]; v != true {
		t.Errorf("verify with hash_algorithm: %v", v)
	}
}

func TestHMACVersions(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"type": "hmac", "key_size": 64}))
	v1 := str(t, must(t)(c.Write("hmac/k", map[string]any{"input": b64("d")})), "hmac")
	must(t)(c.Write("keys/k/rotate", nil))
	v2 := str(t, must(t)(c.Write("hmac/k", map[string]any{"input": b64("d")})), "hmac")
	if !strings.HasPrefix(v2, "vault:v2:") || v1[len("vault:v1:"):] == v2[len("vault:v2:"):] {
		t.Fatalf("rotation did not change the HMAC key: %s %s", v1, v2)
	}
	if again := str(t, must(t)(c.Write("hmac/k", map[string]any{"input": b64("d"), "key_version": 1})), "hmac"); again != v1 {
		t.Errorf("key_version 1 HMAC %s, want %s", again, v1)
	}
	must(t)(c.Write("keys/k/config", map[string]any{"min_encryption_version": 2, "min_decryption_version": 2}))
	invalid(t, "cannot generate HMAC: version is too old (disallowed by policy)")(c.Write("hmac/k", map[string]any{"input": b64("d"), "key_version": 1}))
	invalid(t, "cannot verify HMAC: version is too old (disallowed by policy)")(c.Write("verify/k", map[string]any{"input": b64("d"), "hmac": v1}))
	invalid(t, "key version does not exist; latest key version is 2")(c.Write("hmac/k", map[string]any{"input": b64("d"), "key_version": 3}))
	invalid(t, "invalid HMAC: version is too new")(c.Write("verify/k", map[string]any{"input": b64("d"), "hmac": "vault:v3:AAAA"}))
}

func TestHMACBadInput(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	invalid(t, "missing input for HMAC")(c.Write("hmac/k", nil))
	invalid(t, "unable to decode input as base64")(c.Write("hmac/k", map[string]any{"input": "!!"}))
	invalid(t, `unsupported algorithm "md5"`)(c.Write("hmac/k/md5", map[string]any{"input": b64("d")}))
	invalid(t, `unsupported algorithm "none"`)(c.Write("hmac/k", map[string]any{"input": b64("d"), "algorithm": "none"}))
	invalid(t, "encryption key not found")(c.Write("hmac/nope", map[string]any{"input": b64("d")}))
	invalid(t, "invalid HMAC: no prefix")(c.Write("verify/k", map[string]any{"input": b64("d"), "hmac": "abcd"}))
	invalid(t, "unable to decode verification HMAC as base64")(c.Write("verify/k", map[string]any{"input": b64("d"), "hmac": "vault:v1:!!"}))
}

func TestHMACBatch(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	resp, err := c.Write("hmac/k", map[string]any{"batch_input": []any{
		map[string]any{"input": b64("a"), "reference": "1"},
		map[string]any{"input": "??", "reference": "2"},
	}})
	if err != nil || resp.StatusCode != 0 {
		t.Fatalf("batch hmac: %v %v", resp, err)
	}
	res := batch(t, resp)
	single := str(t, must(t)(c.Write("hmac/k", map[string]any{"input": b64("a")})), "hmac")
	if res[0]["hmac"] != single || res[0]["reference"] != "1" || !strings.Contains(fmt.Sprint(res[1]["error"]), "unable to decode input as base64") {
		t.Fatalf("batch hmac results: %v", res)
	}
	resp, err = c.Write("verify/k", map[string]any{"batch_input": []any{
		map[string]any{"input": b64("a"), "hmac": single},
		map[string]any{"input": b64("b"), "hmac": single},
		map[string]any{"input": b64("a"), "hmac": "nope"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	vres := batch(t, resp)
	if vres[0]["valid"] != true || vres[1]["valid"] != false || vres[2]["valid"] != false || vres[2]["error"] != "invalid HMAC: no prefix" {
		t.Errorf("batch hmac verify: %v", vres)
	}
}
