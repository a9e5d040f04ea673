package transit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

// publicKey returns version 1's public key of a signing key, parsed.
func publicKey(t *testing.T, c *enginetest.Client, name string) crypto.PublicKey {
	t.Helper()
	k := must(t)(c.Read("keys/"+name, nil))["keys"].(map[string]map[string]any)["1"]["public_key"].(string)
	if blk, _ := pem.Decode([]byte(k)); blk != nil {
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return pub
	}
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.PublicKey(b)
}

func sigBytes(t *testing.T, sig string, jws bool) []byte {
	t.Helper()
	enc := base64.StdEncoding
	if jws {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(strings.TrimPrefix(sig, "vault:v1:"))
	if err != nil {
		t.Fatalf("signature %q: %v", sig, err)
	}
	return b
}

func TestSignVerifyEveryType(t *testing.T) {
	// Each signature verifies through verify/ and, independently, with Go's
	// crypto against the public key the key read shows.
	_, c := newEngine(t)
	msg := []byte("the message")
	sum256 := sha256.Sum256(msg)
	sum512 := sha512.Sum512(msg)
	for _, tc := range []struct {
		typ    keyType
		path   string
		params map[string]any
		check  func(pub crypto.PublicKey, sig []byte) bool
	}{
		{typeEd25519, "", nil, func(pub crypto.PublicKey, sig []byte) bool { return ed25519.Verify(pub.(ed25519.PublicKey), msg, sig) }},
		{typeP256, "", nil, func(pub crypto.PublicKey, sig []byte) bool {
			return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum256[:], sig)
		}},
		{typeP256, "/sha2-512", nil, func(pub crypto.PublicKey, sig []byte) bool {
			return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum512[:], sig)
		}},
		{typeP256, "", map[string]any{"marshaling_algorithm": "jws"}, func(pub crypto.PublicKey, sig []byte) bool {
			return len(sig) == 64 && ecdsa.Verify(pub.(*ecdsa.PublicKey), sum256[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}},
		{typeP384, "", map[string]any{"hash_algorithm": "sha2-512"}, func(pub crypto.PublicKey, sig []byte) bool {
			return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum512[:], sig)
		}},
		{typeP521, "", nil, func(pub crypto.PublicKey, sig []byte) bool {
			return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum256[:], sig)
		}},
		{typeRSA2048, "", nil, func(pub crypto.PublicKey, sig []byte) bool {
			return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, sum256[:], sig, nil) == nil
		}},
		{typeRSA2048, "", map[string]any{"signature_algorithm": "pkcs1v15"}, func(pub crypto.PublicKey, sig []byte) bool {
			return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, sum256[:], sig) == nil
		}},
		{typeRSA2048, "", map[string]any{"salt_length": "hash"}, func(pub crypto.PublicKey, sig []byte) bool {
			return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, sum256[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}},
		{typeRSA2048, "", map[string]any{"prehashed": true, "input": base64.StdEncoding.EncodeToString(sum256[:])}, func(pub crypto.PublicKey, sig []byte) bool {
			return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, sum256[:], sig, nil) == nil
		}},
		{typeRSA2048, "", map[string]any{"prehashed": true, "hash_algorithm": "none", "signature_algorithm": "pkcs1v15", "input": base64.StdEncoding.EncodeToString(sum256[:])},
			func(pub crypto.PublicKey, sig []byte) bool {
				return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), 0, sum256[:], sig) == nil
			}},
		{typeRSA3072, "/sha3-256", nil, func(pub crypto.PublicKey, sig []byte) bool {
			h := crypto.SHA3_256.New()
			h.Write(msg)
			return rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA3_256, h.Sum(nil), sig, nil) == nil
		}},
		{typeRSA4096, "", map[string]any{"signature_algorithm": "pkcs1v15", "hash_algorithm": "sha2-384"}, func(pub crypto.PublicKey, sig []byte) bool {
			s := sha512.Sum384(msg)
			return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA384, s[:], sig) == nil
		}},
	} {
		t.Run(fmt.Sprintf("%s%s %v", tc.typ, tc.path, tc.params), func(t *testing.T) {
			name := "k-" + string(tc.typ)
			if _, err := c.Read("keys/"+name, nil); err != nil {
				must(t)(c.Write("keys/"+name, map[string]any{"type": string(tc.typ)}))
			}
			req := map[string]any{"input": base64.StdEncoding.EncodeToString(msg)}
			for k, v := range tc.params {
				req[k] = v
			}
			d := must(t)(c.Write("sign/"+name+tc.path, req))
			sig := str(t, d, "signature")
			if d["key_version"] != 1 || !strings.HasPrefix(sig, "vault:v1:") {
				t.Fatalf("sign: %v", d)
			}
			jws := tc.params["marshaling_algorithm"] == "jws"
			if !tc.check(publicKey(t, c, name), sigBytes(t, sig, jws)) {
				t.Fatal("signature does not verify with Go's crypto")
			}
			req["signature"] = sig
			if v := must(t)(c.Write("verify/"+name+tc.path, req))["valid"]; v != true {
				t.Fatalf("verify/ says %v", v)
			}
			// Any change to the input or the signature makes it invalid.
			req["input"] = b64("another message")
			if v := must(t)(c.Write("verify/"+name+tc.path, req))["valid"]; v != false {
				t.Errorf("verify of another input: %v", v)
			}
		})
	}
}

func TestEd25519SignaturesAreDeterministic(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519"}))
	in := map[string]any{"input": b64("m")}
	if a, b := must(t)(c.Write("sign/ed", in))["signature"], must(t)(c.Write("sign/ed", in))["signature"]; a != b {
		t.Errorf("two ed25519 signatures of one message differ: %v %v", a, b)
	}
}

func TestVerifyTamperedSignature(t *testing.T) {
	_, c := newEngine(t)
	for _, typ := range []string{"ed25519", "ecdsa-p256", "rsa-2048"} {
		must(t)(c.Write("keys/"+typ, map[string]any{"type": typ}))
		sig := str(t, must(t)(c.Write("sign/"+typ, map[string]any{"input": b64("m")})), "signature")
		raw := sigBytes(t, sig, false)
		raw[len(raw)/2] ^= 0x10
		bad := "vault:v1:" + base64.StdEncoding.EncodeToString(raw)
		if v := must(t)(c.Write("verify/"+typ, map[string]any{"input": b64("m"), "signature": bad}))["valid"]; v != false {
			t.Errorf("%s: tampered signature verifies (%v)", typ, v)
		}
	}
}

func TestSignBadInput(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/aes", nil))
	must(t)(c.Write("keys/mac", map[string]any{"type": "hmac"}))
	must(t)(c.Write("keys/ec", map[string]any{"type": "ecdsa-p256"}))
	must(t)(c.Write("keys/rsa", map[string]any{"type": "rsa-2048"}))
	must(t)(c.Write("keys/edd", map[string]any{"type": "ed25519", "derived": true}))
	in := b64("m")
	for _, tc := range []struct {
		path string
		data map[string]any
		msg  string
	}{
		{"sign/aes", map[string]any{"input": in}, "key type aes256-gcm96 does not support signing"},
		{"sign/mac", map[string]any{"input": in}, "key type hmac does not support signing"},
		{"verify/aes", map[string]any{"input": in, "signature": "vault:v1:AAAA"}, "key type aes256-gcm96 does not support verification"},
		{"sign/nope", map[string]any{"input": in}, "signing key not found"},
		{"verify/nope", map[string]any{"input": in, "signature": "vault:v1:AAAA"}, "signature verification key not found"},
		{"sign/ec", map[string]any{"input": "***"}, "unable to decode input as base64"},
		{"sign/ec/md5", map[string]any{"input": in}, `invalid hash algorithm "md5"`},
		{"sign/ec", map[string]any{"input": in, "marshaling_algorithm": "der"}, `invalid marshaling type "der"`},
		{"sign/rsa", map[string]any{"input": in, "signature_algorithm": "raw"}, "unsupported rsa signature algorithm raw"},
		{"sign/rsa", map[string]any{"input": in, "salt_length": "big"}, "salt length neither 'auto', 'hash', nor an int"},
		{"sign/rsa", map[string]any{"input": in, "salt_length": "1000"}, "requested salt length 1000 is invalid"},
		{"sign/rsa", map[string]any{"input": in, "hash_algorithm": "none"}, "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"},
		{"sign/rsa", map[string]any{"input": in, "prehashed": true}, "failed to sign"}, // not a SHA-256 digest
		{"sign/ec", map[string]any{"input": in, "key_version": 2}, "requested version for signing is higher than the latest key version"},
		{"sign/edd", map[string]any{"input": in}, "missing 'context' for key derivation"},
		{"verify/ec", map[string]any{"input": in}, "neither a 'signature' nor an 'hmac' were given to verify"},
		{"verify/ec", map[string]any{"input": in, "signature": "x", "hmac": "y"}, "provide one of 'signature' or 'hmac'"},
		{"verify/ec", map[string]any{"input": in, "signature": "v1:AAAA"}, "invalid signature: no prefix"},
		{"verify/ec", map[string]any{"input": in, "signature": "vault:v1:***"}, "invalid base64 signature value"},
		{"verify/ec", map[string]any{"input": in, "signature": "vault:v9:AAAA"}, "invalid signature: version is too new"},
	} {
		invalid(t, tc.msg)(c.Write(tc.path, tc.data))
	}
}

func TestSignVersions(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519"}))
	in := b64("m")
	v1 := str(t, must(t)(c.Write("sign/ed", map[string]any{"input": in})), "signature")
	must(t)(c.Write("keys/ed/rotate", nil))
	d := must(t)(c.Write("sign/ed", map[string]any{"input": in}))
	if d["key_version"] != 2 || !strings.HasPrefix(str(t, d, "signature"), "vault:v2:") {
		t.Fatalf("sign after rotation: %v", d)
	}
	if v := must(t)(c.Write("verify/ed", map[string]any{"input": in, "signature": v1}))["valid"]; v != true {
		t.Errorf("version 1 signature: %v", v)
	}
	must(t)(c.Write("keys/ed/config", map[string]any{"min_decryption_version": 2, "min_encryption_version": 2}))
	invalid(t, "disallowed by policy (too old)")(c.Write("verify/ed", map[string]any{"input": in, "signature": v1}))
	invalid(t, "requested version for signing is less than the minimum encryption key version")(c.Write("sign/ed", map[string]any{"input": in, "key_version": 1}))
}

func TestDerivedEd25519Signatures(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/ed", map[string]any{"type": "ed25519", "derived": true}))
	sign := func(ctx string) map[string]any {
		return must(t)(c.Write("sign/ed", map[string]any{"input": b64("m"), "context": b64(ctx)}))
	}
	a, b := sign("a"), sign("b")
	if a["public_key"] == b["public_key"] || a["signature"] == b["signature"] {
		t.Fatal("contexts a and b derive the same key")
	}
	pub, _ := base64.StdEncoding.DecodeString(str(t, a, "public_key"))
	if !ed25519.Verify(pub, []byte("m"), sigBytes(t, str(t, a, "signature"), false)) {
		t.Error("signature does not verify with the returned public key")
	}
	if v := must(t)(c.Write("verify/ed", map[string]any{"input": b64("m"), "context": b64("a"), "signature": a["signature"]}))["valid"]; v != true {
		t.Errorf("verify with the signing context: %v", v)
	}
	if v := must(t)(c.Write("verify/ed", map[string]any{"input": b64("m"), "context": b64("b"), "signature": a["signature"]}))["valid"]; v != false {
		t.Errorf("verify with another context: %v", v)
	}
}

func TestSignVerifyBatch(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/ec", map[string]any{"type": "ecdsa-p256"}))
	resp, err := c.Write("sign/ec", map[string]any{"batch_input": []any{
		map[string]any{"input": b64("one"), "reference": "a"},
		map[string]any{"input": "%%%", "reference": "b"},
		map[string]any{"reference": "c"},
	}})
	if err != nil || resp.StatusCode != 0 {
		t.Fatalf("batch sign answers 200 with per-item errors, as Vault: %v %v", resp, err)
	}
	res := batch(t, resp)
	if res[0]["reference"] != "a" || res[0]["key_version"] != 1 || res[0]["error"] != nil ||
		!strings.Contains(fmt.Sprint(res[1]["error"]), "unable to decode input as base64") || res[2]["error"] != "missing input" {
		t.Fatalf("batch sign results: %v", res)
	}
	resp, err = c.Write("verify/ec", map[string]any{"batch_input": []any{
		map[string]any{"input": b64("one"), "signature": res[0]["signature"]},
		map[string]any{"input": b64("two"), "signature": res[0]["signature"]},
		map[string]any{"input": b64("one"), "signature": "garbage"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	vres := batch(t, resp)
	if vres[0]["valid"] != true || vres[1]["valid"] != false || vres[1]["error"] != nil ||
		vres[2]["valid"] != false || vres[2]["error"] != "invalid signature: no prefix" {
		t.Errorf("batch verify results: %v", vres)
	}
	for _, tc := range []struct {
		items []any
		msg   string
	}{
		{[]any{map[string]any{"input": b64("x"), "signature": "s"}, map[string]any{"input": b64("x"), "hmac": "h"}}, "must all provide 'signature' or all provide 'hmac'"},
		{[]any{map[string]any{"input": b64("x"), "signature": "s"}, map[string]any{"input": b64("x")}}, "some elements of batch_input are missing 'signature'"},
		{[]any{map[string]any{"input": b64("x"), "hmac": "s"}, map[string]any{"input": b64("x")}}, "some elements of batch_input are missing 'hmac'"},
		{[]any{map[string]any{"input": b64("x")}}, "no batch_input elements have 'signature' or 'hmac'"},
	} {
		invalid(t, tc.msg)(c.Write("verify/ec", map[string]any{"batch_input": tc.items}))
	}
}

func TestJWSOnlyAcceptsJWSSignatures(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/ec", map[string]any{"type": "ecdsa-p256"}))
	asn1Sig := str(t, must(t)(c.Write("sign/ec", map[string]any{"input": b64("m")})), "signature")
	jwsSig := str(t, must(t)(c.Write("sign/ec", map[string]any{"input": b64("m"), "marshaling_algorithm": "jws"})), "signature")
	if strings.ContainsAny(strings.TrimPrefix(jwsSig, "vault:v1:"), "+/=") {
		t.Errorf("jws signature %q is not unpadded base64url", jwsSig)
	}
	if v := must(t)(c.Write("verify/ec", map[string]any{"input": b64("m"), "signature": jwsSig, "marshaling_algorithm": "jws"}))["valid"]; v != true {
		t.Errorf("jws verify: %v", v)
	}
	if v, err := c.Write("verify/ec", map[string]any{"input": b64("m"), "signature": asn1Sig, "marshaling_algorithm": "jws"}); err == nil && v.Data["valid"] != false {
		t.Errorf("an ASN.1 signature verifies as JWS: %v", v.Data)
	} else if err != nil && core.CodeOf(err) != core.CodeInvalid {
		t.Errorf("ASN.1 signature as JWS: %v", err)
	}
}
