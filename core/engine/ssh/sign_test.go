package ssh

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestSignUserCertificate(t *testing.T) {
	_, c := newEngine(t)
	ca := mustCA(t, c)
	must(t)(c.Write("roles/dev", map[string]any{
		"key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice,bob", "default_user": "alice",
		"allowed_extensions": "permit-pty,permit-agent-forwarding", "default_extensions": map[string]any{"permit-pty": ""},
		"allowed_critical_options": "source-address", "ttl": "10m", "max_ttl": "1h",
	}))
	pub, pubText := userKey(t)
	now := c.Clock.Now()

	// Defaults: default_user, default extensions, role TTL, backdated start.
	d := must(t)(c.Write("sign/dev", map[string]any{"public_key": pubText}))
	cert := parseCert(t, d["signed_key"].(string), ca)
	if cert.CertType != ssh.UserCert || strings.Join(cert.ValidPrincipals, ",") != "alice" {
		t.Fatalf("type %d principals %v", cert.CertType, cert.ValidPrincipals)
	}
	if string(cert.Key.Marshal()) != string(pub.Marshal()) {
		t.Fatal("certificate carries another key")
	}
	if _, ok := cert.Permissions.Extensions["permit-pty"]; !ok || len(cert.Permissions.Extensions) != 1 {
		t.Fatalf("extensions %v", cert.Permissions.Extensions)
	}
	if int64(cert.ValidAfter) != now.Add(-30*time.Second).Unix() || int64(cert.ValidBefore) != now.Add(10*time.Minute).Unix() {
		t.Fatalf("validity %d..%d, now %d", cert.ValidAfter, cert.ValidBefore, now.Unix())
	}
	if !strings.HasPrefix(cert.KeyId, "vault-enginetest-") || len(cert.KeyId) != len("vault-enginetest-")+64 {
		t.Fatalf("key id %q", cert.KeyId)
	}
	if d["serial_number"] == "" || d["serial_number"] == "0" {
		t.Fatalf("serial %v", d["serial_number"])
	}

	// Requested principals, extensions, critical options and TTL.
	d = must(t)(c.Write("sign/dev", map[string]any{"public_key": pubText, "valid_principals": "bob,alice", "ttl": "1h",
		"extensions": map[string]any{"permit-agent-forwarding": ""}, "critical_options": map[string]any{"source-address": "127.0.0.1/32"}}))
	cert = parseCert(t, d["signed_key"].(string), ca)
	if strings.Join(cert.ValidPrincipals, ",") != "bob,alice" || int64(cert.ValidBefore) != now.Add(time.Hour).Unix() {
		t.Fatalf("principals %v until %d", cert.ValidPrincipals, cert.ValidBefore)
	}
	if _, ok := cert.Permissions.Extensions["permit-pty"]; ok || len(cert.Permissions.Extensions) != 1 {
		t.Fatalf("requested extensions replace the defaults; got %v", cert.Permissions.Extensions)
	}
	if cert.Permissions.CriticalOptions["source-address"] != "127.0.0.1/32" {
		t.Fatalf("critical options %v", cert.Permissions.CriticalOptions)
	}

	for _, tc := range []struct {
		data map[string]any
		msg  string
	}{
		{map[string]any{"valid_principals": "root"}, "root is not a valid value for valid_principals"},
		{map[string]any{"valid_principals": "alice,mallory"}, "mallory is not a valid value"},
		{map[string]any{"extensions": map[string]any{"permit-X11-forwarding": ""}}, "not on allowed list"},
		{map[string]any{"critical_options": map[string]any{"force-command": "/bin/true"}}, "not on allowed list"},
		{map[string]any{"ttl": "2h"}, "ttl is larger than maximum allowed 3600"},
		{map[string]any{"key_id": "mine"}, "setting key_id is not allowed"},
		{map[string]any{"cert_type": "host"}, "cert_type 'host' is not allowed"},
		{map[string]any{"cert_type": "other"}, "cert_type must be"},
	} {
		tc.data["public_key"] = pubText
		_, err := c.Write("sign/dev", tc.data)
		wantInvalid(t, err, tc.msg)
	}
	_, err := c.Write("sign/dev", map[string]any{"public_key": "ssh-ed25519 AAAAnotbase64"})
	wantInvalid(t, err, "failed to parse public_key")
	_, err = c.Write("sign/dev", map[string]any{})
	wantInvalid(t, err, "missing public_key")
	_, err = c.Write("sign/nosuch", map[string]any{"public_key": pubText})
	wantInvalid(t, err, "unknown role")
	// A certificate is not signed again.
	_, err = c.Write("sign/dev", map[string]any{"public_key": d["signed_key"]})
	wantInvalid(t, err, "is a certificate")
}

func TestSignPrincipalRules(t *testing.T) {
	_, c := newEngine(t)
	ca := mustCA(t, c)
	_, pubText := userKey(t)
	// No default user and no principals: refused (a certificate valid for
	// every user), unless the role allows it or allows any user.
	must(t)(c.Write("roles/strict", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice"}))
	_, err := c.Write("sign/strict", map[string]any{"public_key": pubText})
	wantInvalid(t, err, "refusing to issue unsafe")
	must(t)(c.Write("roles/none", map[string]any{"key_type": "ca", "allow_user_certificates": true}))
	_, err = c.Write("sign/none", map[string]any{"public_key": pubText, "valid_principals": "alice"})
	wantInvalid(t, err, "not configured to allow any principals")
	must(t)(c.Write("roles/any", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*",
		"allow_user_key_ids": true, "key_id_format": "custom-{{role_name}}"}))
	d := must(t)(c.Write("sign/any", map[string]any{"public_key": pubText, "valid_principals": "whoever"}))
	if cert := parseCert(t, d["signed_key"].(string), ca); cert.KeyId != "custom-any" {
		t.Fatalf("key id %q", cert.KeyId)
	}
	d = must(t)(c.Write("sign/any", map[string]any{"public_key": pubText, "valid_principals": "x", "key_id": "ticket-42"}))
	if cert := parseCert(t, d["signed_key"].(string), ca); cert.KeyId != "ticket-42" {
		t.Fatalf("key id %q", cert.KeyId)
	}
	// Extensions: an empty allowed list allows none; "*" allows any.
	_, err = c.Write("sign/strict", map[string]any{"public_key": pubText, "valid_principals": "alice", "extensions": map[string]any{"permit-pty": ""}})
	wantInvalid(t, err, "not on allowed list")
	// Default TTL above the mount's max is capped, not refused.
	must(t)(c.Write("roles/long", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*"}))
	d = must(t)(c.Write("sign/long", map[string]any{"public_key": pubText, "valid_principals": "a"}))
	cert := parseCert(t, d["signed_key"].(string), ca)
	if got := time.Duration(cert.ValidBefore-uint64(c.Clock.Now().Unix())) * time.Second; got != enginetest.DefaultLeaseTTL {
		t.Fatalf("role without TTL signs for %s, want the mount default %s", got, enginetest.DefaultLeaseTTL)
	}
}

func TestSignHostCertificate(t *testing.T) {
	_, c := newEngine(t)
	ca := mustCA(t, c)
	_, pubText := userKey(t)
	must(t)(c.Write("roles/hosts", map[string]any{"key_type": "ca", "allow_host_certificates": true,
		"allowed_domains": "example.com", "allow_subdomains": true}))
	d := must(t)(c.Write("sign/hosts", map[string]any{"public_key": pubText, "cert_type": "host", "valid_principals": "web1.example.com"}))
	if cert := parseCert(t, d["signed_key"].(string), ca); cert.CertType != ssh.HostCert {
		t.Fatalf("cert type %d", cert.CertType)
	}
	_, err := c.Write("sign/hosts", map[string]any{"public_key": pubText, "cert_type": "host", "valid_principals": "example.com"})
	wantInvalid(t, err, "example.com is not a valid value")
	_, err = c.Write("sign/hosts", map[string]any{"public_key": pubText, "cert_type": "host", "valid_principals": "evil-example.com"})
	wantInvalid(t, err, "not a valid value")
	_, err = c.Write("sign/hosts", map[string]any{"public_key": pubText, "valid_principals": "web1.example.com"})
	wantInvalid(t, err, "cert_type 'user' is not allowed")
}

func TestAllowedUserKeyLengths(t *testing.T) {
	_, c := newEngine(t)
	mustCA(t, c)
	must(t)(c.Write("roles/r", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*",
		"allowed_user_key_lengths": map[string]any{"rsa": 3072, "ec": []any{384}}}))
	rsaKey := func(bits int) string {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := ssh.NewPublicKey(&k.PublicKey)
		return string(ssh.MarshalAuthorizedKey(p))
	}
	ecKey := func(curve elliptic.Curve) string {
		k, _ := ecdsa.GenerateKey(curve, rand.Reader)
		p, _ := ssh.NewPublicKey(&k.PublicKey)
		return string(ssh.MarshalAuthorizedKey(p))
	}
	must(t)(c.Write("sign/r", map[string]any{"public_key": rsaKey(3072), "valid_principals": "a"}))
	must(t)(c.Write("sign/r", map[string]any{"public_key": ecKey(elliptic.P384()), "valid_principals": "a"}))
	_, err := c.Write("sign/r", map[string]any{"public_key": rsaKey(2048), "valid_principals": "a"})
	wantInvalid(t, err, "invalid size: 2048")
	_, err = c.Write("sign/r", map[string]any{"public_key": ecKey(elliptic.P256()), "valid_principals": "a"})
	wantInvalid(t, err, "invalid size: 256")
	_, ed := userKey(t)
	_, err = c.Write("sign/r", map[string]any{"public_key": ed, "valid_principals": "a"})
	wantInvalid(t, err, "key of type ed25519 is not allowed")
}

func TestRSACASignsWithSHA2(t *testing.T) {
	_, c := newEngine(t)
	d := must(t)(c.Write("config/ca", map[string]any{"key_type": "rsa", "key_bits": 2048}))
	ca, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(d["public_key"].(string)))
	_, pubText := userKey(t)
	for signer, want := range map[string]string{"default": ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512: ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSA: ssh.KeyAlgoRSA} {
		must(t)(c.Write("roles/r", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*", "algorithm_signer": signer}))
		s := must(t)(c.Write("sign/r", map[string]any{"public_key": pubText, "valid_principals": "a"}))
		if got := parseCert(t, s["signed_key"].(string), ca).Signature.Format; got != want {
			t.Errorf("algorithm_signer %s: signature %s, want %s", signer, got, want)
		}
	}
}

func TestIssue(t *testing.T) {
	_, c := newEngine(t)
	ca := mustCA(t, c)
	must(t)(c.Write("roles/r", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice"}))
	d := must(t)(c.Write("issue/r", map[string]any{"key_type": "ed25519", "valid_principals": "alice"}))
	cert := parseCert(t, d["signed_key"].(string), ca)
	signer, err := ssh.ParsePrivateKey([]byte(d["private_key"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	if string(signer.PublicKey().Marshal()) != string(cert.Key.Marshal()) || d["private_key_type"] != "ed25519" {
		t.Fatal("issued private key does not match the certificate")
	}
	_, err = c.Write("issue/r", map[string]any{"key_type": "ed25519", "valid_principals": "root"})
	wantInvalid(t, err, "root is not a valid value")
	_, err = c.Write("issue/nosuch", map[string]any{"key_type": "ed25519"})
	wantInvalid(t, err, "unknown role")
}
