package ssh

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestConfigCAGenerateEachKeyType(t *testing.T) {
	cases := []struct {
		keyType string
		bits    int
		want    string
	}{
		{"ssh-rsa", 2048, ssh.KeyAlgoRSA},
		{"rsa", 3072, ssh.KeyAlgoRSA},
		{"ecdsa-sha2-nistp256", 0, ssh.KeyAlgoECDSA256},
		{"ec", 384, ssh.KeyAlgoECDSA384},
		{"ecdsa-sha2-nistp521", 0, ssh.KeyAlgoECDSA521},
		{"ssh-ed25519", 0, ssh.KeyAlgoED25519},
		{"ed25519", 0, ssh.KeyAlgoED25519},
	}
	for _, tc := range cases {
		t.Run(tc.keyType, func(t *testing.T) {
			_, c := newEngine(t)
			d := must(t)(c.Write("config/ca", map[string]any{"key_type": tc.keyType, "key_bits": tc.bits}))
			pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d["public_key"].(string)))
			if err != nil {
				t.Fatal(err)
			}
			if pub.Type() != tc.want {
				t.Fatalf("generated %s, want %s", pub.Type(), tc.want)
			}
			if tc.bits != 0 && tc.want == ssh.KeyAlgoRSA {
				if n := pub.(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey).N.BitLen(); n != tc.bits {
					t.Fatalf("RSA key has %d bits, want %d", n, tc.bits)
				}
			}
			if got := must(t)(c.Read("config/ca", nil))["public_key"]; got != d["public_key"] {
				t.Fatalf("config/ca read %q, generated %q", got, d["public_key"])
			}
			resp, err := c.Read("public_key", nil)
			if err != nil || resp.Raw == nil || string(resp.Raw.Body) != d["public_key"] || resp.Raw.ContentType != "text/plain" {
				t.Fatalf("public_key: %+v %v", resp, err)
			}
			if strings.Contains(string(resp.Raw.Body), "PRIVATE") {
				t.Fatal("public_key leaks the private key")
			}
		})
	}
}

func TestConfigCARefusals(t *testing.T) {
	_, c := newEngine(t)
	_, err := c.Read("config/ca", nil)
	wantInvalid(t, err, "keys haven't been configured yet")
	_, err = c.Read("public_key", nil)
	wantInvalid(t, err, "keys haven't been configured yet")
	_, err = c.Write("config/ca", map[string]any{"key_type": "dsa"})
	wantInvalid(t, err, "unsupported key_type")
	_, err = c.Write("config/ca", map[string]any{"key_type": "rsa", "key_bits": 1024})
	wantInvalid(t, err, "too small")
	_, err = c.Write("config/ca", map[string]any{"key_type": "ec", "key_bits": 224})
	wantInvalid(t, err, "not valid for ECDSA")
	_, err = c.Write("config/ca", map[string]any{"generate_signing_key": false})
	wantInvalid(t, err, "generate_signing_key is false")
	_, err = c.Write("config/ca", map[string]any{"private_key": "not a key"})
	wantInvalid(t, err, "does not parse")
	mustCA(t, c)
	_, err = c.Write("config/ca", map[string]any{"key_type": "ed25519"})
	wantInvalid(t, err, "already configured")
	must(t)(c.Delete("config/ca", nil))
	_, err = c.Read("config/ca", nil)
	wantInvalid(t, err, "haven't been configured")
}

func TestConfigCAImport(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(ecKey, "imported")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pubText := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	privText := string(pem.EncodeToMemory(blk))

	_, c := newEngine(t)
	_, other := userKey(t)
	_, err = c.Write("config/ca", map[string]any{"private_key": privText, "public_key": other})
	wantInvalid(t, err, "does not match")
	_, err = c.Write("config/ca", map[string]any{"public_key": pubText})
	wantInvalid(t, err, "only public_key")
	d := must(t)(c.Write("config/ca", map[string]any{"private_key": privText, "public_key": pubText}))
	if d["public_key"] != pubText {
		t.Fatalf("imported CA answers %q, want %q", d["public_key"], pubText)
	}
	// The imported key signs.
	must(t)(c.Write("roles/r", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*"}))
	_, up := userKey(t)
	s := must(t)(c.Write("sign/r", map[string]any{"public_key": up, "valid_principals": "bob"}))
	parseCert(t, s["signed_key"].(string), signer.PublicKey())
	// PKCS#8 PEM (as openssl writes it) imports too.
	must(t)(c.Delete("config/ca", nil))
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p8, err := ssh.MarshalPrivateKey(edKey, "")
	if err != nil {
		t.Fatal(err)
	}
	must(t)(c.Write("config/ca", map[string]any{"private_key": string(pem.EncodeToMemory(p8))}))
}
