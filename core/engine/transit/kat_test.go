package transit

import (
	"encoding/json"
	"testing"
)

// Known answers. Every value below was computed independently of this
// package, with Python's "cryptography" and hashlib modules, from the key
// material the engine draws from seqReader (bytes 0, 1, 2, ...):
//
//	seq = bytes(range(256)); pt = b"hello world"
//	key, hmac_key, nonce = seq[0:32], seq[32:64], seq[64:76]   # aes256, chacha
//	"vault:v1:" + b64(nonce + AESGCM(key).encrypt(nonce, pt, aad))
//	# aes128: key seq[0:16], hmac key seq[16:48], nonce seq[48:60]
//	# derived: AESGCM(HKDF(SHA256, length=32, salt=None, info=b"tenant-1").derive(key))
//	# convergent: okm = HKDF(..., length=64, ...).derive(key)
//	#   nonce = HMAC-SHA256(okm[32:], pt)[:12]; AESGCM(okm[:32])
//	# ed25519: Ed25519PrivateKey.from_private_bytes(seq[0:32]).sign(pt)
//	# derived ed25519: seed = HKDF(..., 32, info=b"tenant-1").derive(seq[0:32] + public key)
//	# hmac: hmac.new(hmac_key, pt, sha256); an hmac-type key HMACs with key itself
const (
	katAES256              = "vault:v1:QEFCQ0RFRkdISUpLitzCT0kc8Gy/qHMEAcLiSd1RMaRWTqrrMOQB"
	katAES256AAD           = "vault:v1:QEFCQ0RFRkdISUpLitzCT0kc8Gy/qHM2ujQo0SAoEhVxrOKaxI/5" // associated data "header"
	katChaCha              = "vault:v1:QEFCQ0RFRkdISUpLkDEQ7R1qmW4qo5Iq9vBodfDOzMfQjDWULH2K"
	katAES128              = "vault:v1:MDEyMzQ1Njc4OTo783glhi2QfYPC0I+SPAed4tU33LfswEhJEOmM"
	katDerived             = "vault:v1:QEFCQ0RFRkdISUpLJTTmU+2hG/H/ndGwTO6FY1xD85ktixeqXtR8"
	katConvergent          = "vault:v1:VtTzT5UlGOYAHsFmUwYZTuclx22ZHgHthN8LFmKi/EOGr559ckAP"
	katHMACSHA256          = "vault:v1:ECy4zZWLwvd1Tm4fQAxVkae32Ewui1hkolrtxs5Pl9Y="
	katHMACSHA512          = "vault:v1:er66sX3l4bMW5QLN70Ot53IqsqWz5eQ70zHNgPZdKP1+7JzTfIgeLjJmySK7Qv/Z3tp7RG8WpoifKCGk1NIuEg=="
	katHMACTypeSHA256      = "vault:v1:QRuaUehWXh/HlkOypsRnL0o8Plc8M9CZWgh0jLYSjo4="
	katEd25519Pub          = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
	katEd25519Sig          = "vault:v1:yeiKBsiIVap1+QvP3FqHt2qZwNIEQRS4kx5yCJ57jHrGtKl3a1cyby14GqjaiCH+a0xylv3gtjyiTX9jQ6xqCg=="
	katEd25519DerivedPub   = "Izq2iDbitNxf8br0P5Ho7s8qMUpHGCc4gqtUjdPKnTQ="
	katEd25519DerivedSig   = "vault:v1:N6YTj2FI522Rq+98co8jSelMG5VqDBqMaXBcA9XxO5/CZ3aXvA181sj2fFGpi5yYoIizvRD/QsbYrqzurqLqDg=="
	katPlaintext           = "hello world"
	katContext             = "tenant-1"
	katAssociatedDataInput = "header"
)

func asJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKnownCiphertexts(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  map[string]any
		req  map[string]any
		want string
	}{
		{"aes256-gcm96", nil, nil, katAES256},
		{"aes256-gcm96 with associated data", nil, map[string]any{"associated_data": b64(katAssociatedDataInput)}, katAES256AAD},
		{"chacha20-poly1305", map[string]any{"type": "chacha20-poly1305"}, nil, katChaCha},
		{"aes128-gcm96", map[string]any{"type": "aes128-gcm96"}, nil, katAES128},
		{"derived", map[string]any{"derived": true}, map[string]any{"context": b64(katContext)}, katDerived},
		{"convergent", map[string]any{"derived": true, "convergent_encryption": true}, map[string]any{"context": b64(katContext)}, katConvergent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, c := newEngine(t)
			b.rand = seqReader()
			must(t)(c.Write("keys/k", tc.key))
			req := map[string]any{"plaintext": b64(katPlaintext)}
			for k, v := range tc.req {
				req[k] = v
			}
			got := str(t, must(t)(c.Write("encrypt/k", req)), "ciphertext")
			if got != tc.want {
				t.Fatalf("ciphertext\n got %s\nwant %s", got, tc.want)
			}
			dec := map[string]any{"ciphertext": tc.want}
			for k, v := range tc.req {
				dec[k] = v
			}
			if pt := unb64(t, must(t)(c.Write("decrypt/k", dec))["plaintext"]); pt != katPlaintext {
				t.Errorf("decrypt of the known ciphertext: %q", pt)
			}
		})
	}
}

func TestKnownSignaturesAndHMACs(t *testing.T) {
	b, c := newEngine(t)
	in := map[string]any{"input": b64(katPlaintext)}

	b.rand = seqReader()
	d := must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519"}))
	if pub := d["keys"].(map[string]map[string]any)["1"]["public_key"]; pub != katEd25519Pub {
		t.Errorf("ed25519 public key %v, want %s", pub, katEd25519Pub)
	}
	if sig := must(t)(c.Write("sign/ed", in))["signature"]; sig != katEd25519Sig {
		t.Errorf("ed25519 signature\n got %v\nwant %s", sig, katEd25519Sig)
	}

	b.rand = seqReader()
	must(t)(c.Write("keys/edd", map[string]any{"type": "ed25519", "derived": true}))
	d = must(t)(c.Write("sign/edd", map[string]any{"input": b64(katPlaintext), "context": b64(katContext)}))
	if d["signature"] != katEd25519DerivedSig || d["public_key"] != katEd25519DerivedPub {
		t.Errorf("derived ed25519 sign: %v, want signature %s and public key %s", d, katEd25519DerivedSig, katEd25519DerivedPub)
	}

	b.rand = seqReader()
	must(t)(c.Write("keys/aes", nil))
	for path, want := range map[string]string{
		"hmac/aes":          katHMACSHA256,
		"hmac/aes/sha2-256": katHMACSHA256,
		"hmac/aes/sha2-512": katHMACSHA512,
	} {
		if got := must(t)(c.Write(path, in))["hmac"]; got != want {
			t.Errorf("%s: %v, want %s", path, got, want)
		}
	}
	if got := must(t)(c.Write("hmac/aes", map[string]any{"input": b64(katPlaintext), "algorithm": "sha2-512"}))["hmac"]; got != katHMACSHA512 {
		t.Errorf("hmac with algorithm in the body: %v", got)
	}

	b.rand = seqReader()
	must(t)(c.Write("keys/mac", map[string]any{"type": "hmac"}))
	if got := must(t)(c.Write("hmac/mac", in))["hmac"]; got != katHMACTypeSHA256 {
		t.Errorf("hmac-type key: %v, want %s", got, katHMACTypeSHA256)
	}
}
