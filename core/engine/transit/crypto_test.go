package transit

import (
	"crypto/rand"
	"crypto/rsa"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestParseVersioned(t *testing.T) {
	for in, want := range map[string]string{
		"vault:v3:abc":  "3|abc",
		"vault:v0:abc":  "1|abc", // Vault's first ciphertexts used version 0
		"vault:v12:a:b": "12|a:b",
		"vault:v1:":     "1|",
		"vault:v1":      "wrong number of fields",
		"vault:vx:abc":  "version number could not be decoded",
		"vault:v-1:abc": "version number could not be decoded",
		"vault:1:abc":   "no prefix",
		"v1:abc":        "no prefix",
		"":              "no prefix",
	} {
		ver, payload, err := parseVersioned(in, "ciphertext")
		got := ""
		if err != nil {
			if core.CodeOf(err) != core.CodeInvalid {
				t.Errorf("%q: error code %s", in, core.CodeOf(err))
			}
			got = err.Error()
		} else {
			got = strconv.Itoa(ver) + "|" + payload
		}
		if !strings.Contains(got, want) {
			t.Errorf("parseVersioned(%q) = %q, want %q", in, got, want)
		}
	}
}

// mustPolicy makes an in-memory key of type t with one version.
func mustPolicy(tb testing.TB, t keyType, o createOptions) *policy {
	tb.Helper()
	p, err := newPolicy("fuzz", t, o, enginetest.Epoch, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FuzzDecrypt feeds arbitrary ciphertexts, contexts and associated data to
// decrypt: it must never panic, and every failure must be a client error
// (400), never an internal one.
func FuzzDecrypt(f *testing.F) {
	keys := []*policy{
		mustPolicy(f, typeAES256, createOptions{}),
		mustPolicy(f, typeChaCha, createOptions{derived: true}),
		mustPolicy(f, typeAES128, createOptions{derived: true, convergent: true}),
		mustPolicy(f, typeRSA2048, createOptions{}),
	}
	for _, p := range keys {
		ct, _, err := p.encrypt(0, []byte("c"), []byte("seed plaintext"), nil, rand.Reader)
		if err != nil && !p.Type.isRSA() {
			f.Fatal(err)
		}
		f.Add(ct, []byte("c"), []byte(nil))
	}
	f.Add("vault:v1:", []byte(nil), []byte("ad"))
	f.Add("vault:v99999999999999999999:AAAA", []byte("c"), []byte(nil))
	f.Add("vault:v1:"+strings.Repeat("A", 400), []byte("c"), []byte(nil))
	f.Fuzz(func(t *testing.T, ct string, keyCtx, aad []byte) {
		for _, p := range keys {
			_, err := p.decrypt(ct, keyCtx, aad)
			if err != nil && core.CodeOf(err) != core.CodeInvalid {
				t.Fatalf("%s: decrypt(%q) gave a %s error: %v", p.Type, ct, core.CodeOf(err), err)
			}
		}
	})
}

// FuzzVerify does the same for signature verification.
func FuzzVerify(f *testing.F) {
	keys := []*policy{
		mustPolicy(f, typeEd25519, createOptions{}),
		mustPolicy(f, typeEd25519, createOptions{derived: true}),
		mustPolicy(f, typeP256, createOptions{}),
		mustPolicy(f, typeRSA2048, createOptions{}),
	}
	for _, p := range keys {
		for _, jws := range []bool{false, true} {
			o := signOptions{hash: signHashes["sha2-256"], rsaAlg: "pss", saltLength: rsa.PSSSaltLengthAuto, jws: jws}
			sig, _, _, err := p.sign(0, []byte("c"), []byte("m"), o)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(sig, []byte("m"), jws)
		}
	}
	f.Add("vault:v1:", []byte("m"), true)
	f.Add("vault:v1:MEQCIA==", []byte(""), false)
	f.Fuzz(func(t *testing.T, sig string, input []byte, jws bool) {
		for _, p := range keys {
			for _, alg := range []string{"pss", "pkcs1v15"} {
				o := signOptions{hash: signHashes["sha2-256"], rsaAlg: alg, saltLength: rsa.PSSSaltLengthAuto, jws: jws}
				_, err := p.verify(sig, []byte("c"), input, o)
				if err != nil && core.CodeOf(err) != core.CodeInvalid {
					t.Fatalf("%s: verify(%q) gave a %s error: %v", p.Type, sig, core.CodeOf(err), err)
				}
			}
		}
	})
}
