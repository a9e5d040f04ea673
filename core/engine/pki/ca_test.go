package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestRootGenerateInternal(t *testing.T) {
	c := newPKI(t)
	tuneMax(t, c, 768*time.Hour, 87600*time.Hour)
	resp := must(t)(c.Write("root/generate/internal", map[string]any{
		"common_name": "Vigil Root", "ttl": "87600h", "key_type": "rsa", "key_bits": 2048,
		"organization": "Vigil", "ou": "Security,PKI", "country": "NP", "issuer_name": "root-2030",
		"max_path_length": 2, "alt_names": "root.example.com", "ip_sans": "10.0.0.1",
	}))
	d := resp.Data
	if _, ok := d["private_key"]; ok {
		t.Error("internal root returned a private key")
	}
	cert := parseCert(t, str(t, d, "certificate"))
	if str(t, d, "issuing_ca") != str(t, d, "certificate") {
		t.Error("issuing_ca of a root must be the root itself")
	}
	if !cert.IsCA || cert.MaxPathLen != 2 || cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA flags: IsCA=%v MaxPathLen=%d KeyUsage=%v", cert.IsCA, cert.MaxPathLen, cert.KeyUsage)
	}
	if cert.Subject.CommonName != "Vigil Root" || cert.Subject.Organization[0] != "Vigil" || len(cert.Subject.OrganizationalUnit) != 2 || cert.Subject.Country[0] != "NP" {
		t.Errorf("subject %v", cert.Subject)
	}
	// "Vigil Root" is not a host name, so only alt_names are DNS SANs.
	if strings.Join(cert.DNSNames, ",") != "root.example.com" {
		t.Errorf("DNS SANs %v", cert.DNSNames)
	}
	if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "10.0.0.1" {
		t.Errorf("IP SANs %v", cert.IPAddresses)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if got, want := cert.NotAfter.Sub(enginetest.Epoch), 87600*time.Hour; got != want {
		t.Errorf("validity %v, want %v", got, want)
	}
	if got := enginetest.Epoch.Sub(cert.NotBefore); got != 30*time.Second {
		t.Errorf("NotBefore backdated by %v, want 30s", got)
	}
	if d["serial_number"] != formatSerial(cert.SerialNumber) || d["expiration"] != cert.NotAfter.Unix() {
		t.Errorf("serial_number %v expiration %v", d["serial_number"], d["expiration"])
	}
	if d["issuer_name"] != "root-2030" || d["issuer_id"] == "" || d["key_id"] == "" {
		t.Errorf("issuer_id %v issuer_name %v key_id %v", d["issuer_id"], d["issuer_name"], d["key_id"])
	}
	if len(cert.SubjectKeyId) != 20 {
		t.Errorf("SubjectKeyId %x, want a 20-byte SHA-1", cert.SubjectKeyId)
	}
	if pemCA := string(must(t)(c.Read("ca/pem", nil)).Raw.Body); strings.TrimSpace(pemCA) != str(t, d, "certificate") {
		t.Errorf("ca/pem = %q", pemCA)
	}
	if der := must(t)(c.Read("ca", nil)).Raw; der.ContentType != ctDERCert || string(der.Body) != string(cert.Raw) {
		t.Errorf("ca: %s %d bytes", der.ContentType, len(der.Body))
	}
}

func TestRootGenerateExportedKeyTypes(t *testing.T) {
	for _, tc := range []struct {
		keyType, keyFormat, wantPEM string
		bits                        int
	}{
		{"rsa", "", "RSA PRIVATE KEY", 2048},
		{"ec", "", "EC PRIVATE KEY", 384},
		{"ed25519", "", "PRIVATE KEY", 0},
		{"ec", "pkcs8", "PRIVATE KEY", 256},
	} {
		t.Run(tc.keyType+tc.keyFormat, func(t *testing.T) {
			c := newPKI(t)
			d := must(t)(c.Write("root/generate/exported", map[string]any{"common_name": "R", "key_type": tc.keyType,
				"key_bits": tc.bits, "private_key_format": tc.keyFormat})).Data
			key := str(t, d, "private_key")
			if !strings.HasPrefix(key, "-----BEGIN "+tc.wantPEM+"-----") {
				t.Fatalf("private_key starts %q, want %s", key[:40], tc.wantPEM)
			}
			if d["private_key_type"] != tc.keyType {
				t.Errorf("private_key_type %v", d["private_key_type"])
			}
			signer, err := parsePrivateKeyPEM(key)
			if err != nil {
				t.Fatal(err)
			}
			cert := parseCert(t, str(t, d, "certificate"))
			if !samePublicKey(signer.Public(), cert.PublicKey) {
				t.Error("exported key does not match the certificate")
			}
			switch k := cert.PublicKey.(type) {
			case *rsa.PublicKey:
				if k.N.BitLen() != tc.bits {
					t.Errorf("RSA bits %d", k.N.BitLen())
				}
			case *ecdsa.PublicKey:
				if k.Curve.Params().BitSize != tc.bits {
					t.Errorf("EC bits %d", k.Curve.Params().BitSize)
				}
			case ed25519.PublicKey:
			default:
				t.Errorf("key %T", k)
			}
			// The default lease TTL applies when no ttl is given.
			if got := cert.NotAfter.Sub(enginetest.Epoch); got != enginetest.DefaultLeaseTTL {
				t.Errorf("validity %v, want the mount default %v", got, enginetest.DefaultLeaseTTL)
			}
		})
	}
}

func TestRootGenerateFormats(t *testing.T) {
	c := newPKI(t)
	d := must(t)(c.Write("root/generate/exported", map[string]any{"common_name": "R", "key_type": "ec", "format": "der"})).Data
	der, err := base64.StdEncoding.DecodeString(str(t, d, "certificate"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatalf("der certificate: %v", err)
	}
	kder, err := base64.StdEncoding.DecodeString(str(t, d, "private_key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseECPrivateKey(kder); err != nil {
		t.Fatalf("der key: %v", err)
	}

	c2 := newPKI(t)
	d = must(t)(c2.Write("root/generate/exported", map[string]any{"common_name": "R", "key_type": "ec", "format": "pem_bundle"})).Data
	bundle := str(t, d, "certificate")
	if !strings.HasPrefix(bundle, "-----BEGIN EC PRIVATE KEY-----") || !strings.Contains(bundle, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("pem_bundle = %q", bundle)
	}
}

func TestRootGenerateTTLCappedByMountMax(t *testing.T) {
	c := newPKI(t)
	resp := must(t)(c.Write("root/generate/internal", map[string]any{"common_name": "R", "key_type": "ec", "ttl": "87600h"}))
	cert := parseCert(t, str(t, resp.Data, "certificate"))
	if got := cert.NotAfter.Sub(enginetest.Epoch); got != enginetest.MaxLeaseTTL {
		t.Errorf("validity %v, want capped to %v", got, enginetest.MaxLeaseTTL)
	}
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "maxTTL is being used") {
		t.Errorf("warnings %q", resp.Warnings)
	}
}

func TestRootGenerateBadInput(t *testing.T) {
	c := newPKI(t)
	for _, tc := range []struct {
		path string
		body map[string]any
		msg  string
	}{
		{"root/generate/internal", map[string]any{}, "the common_name field is required"},
		{"root/generate/kms", map[string]any{"common_name": "R"}, `invalid type "kms"`},
		{"root/generate/internal", map[string]any{"common_name": "R", "key_type": "dsa"}, `unknown key_type value "dsa"`},
		{"root/generate/internal", map[string]any{"common_name": "R", "key_type": "rsa", "key_bits": 1024}, "unsupported bit length for RSA key: 1024"},
		{"root/generate/internal", map[string]any{"common_name": "R", "key_type": "ec", "key_bits": 255}, "unsupported bit length for EC key: 255"},
		{"root/generate/internal", map[string]any{"common_name": "R", "ip_sans": "300.1.1.1"}, `"300.1.1.1" is not a valid IP address`},
		{"root/generate/internal", map[string]any{"common_name": "R", "alt_names": "bad_name!"}, "is not a valid DNS name"},
		{"root/generate/internal", map[string]any{"common_name": "R", "ttl": "1h", "not_after": "2031-01-01T00:00:00Z"}, "Either ttl or not_after"},
		{"root/generate/internal", map[string]any{"common_name": "R", "issuer_name": "default"}, "invalid issuer_name"},
		{"intermediate/generate/internal", map[string]any{"key_type": "ec"}, "the common_name field is required"},
	} {
		_, err := c.Write(tc.path, tc.body)
		wantErr(t, err, core.CodeInvalid, tc.msg)
	}
	if _, err := c.Read("ca/pem", nil); err == nil {
		t.Error("a failed generation left a CA behind")
	}
}

// intermediateFlow builds root (on root) and intermediate (on inter) CAs the
// Vault way: generate → sign-intermediate → set-signed with the chain.
func intermediateFlow(t testing.TB, root, inter *enginetest.Client, keyType string) (rootPEM, intPEM string) {
	t.Helper()
	tuneMax(t, root, 768*time.Hour, 87600*time.Hour)
	tuneMax(t, inter, 768*time.Hour, 43800*time.Hour)
	rootPEM = str(t, genRoot(t, root, nil), "certificate")
	csr := str(t, must(t)(inter.Write("intermediate/generate/internal", map[string]any{
		"common_name": "Vigil Intermediate", "key_type": keyType})).Data, "csr")
	signed := must(t)(root.Write("root/sign-intermediate", map[string]any{
		"csr": csr, "common_name": "Vigil Intermediate", "ttl": "43800h", "format": "pem_bundle"})).Data
	bundle := str(t, signed, "certificate")
	set := must(t)(inter.Write("intermediate/set-signed", map[string]any{"certificate": bundle})).Data
	if n := len(stringsOf(t, set["imported_issuers"])); n != 2 {
		t.Fatalf("set-signed imported %d issuers, want the intermediate and the root: %v", n, set)
	}
	intPEM = strings.TrimSpace(string(must(t)(inter.Read("ca/pem", nil)).Raw.Body))
	return rootPEM, intPEM
}

func TestIntermediateFlow(t *testing.T) {
	root, inter := newPKIAt(t, "pki/"), newPKIAt(t, "pki_int/")
	rootPEM, intPEM := intermediateFlow(t, root, inter, "rsa")
	ic := parseCert(t, intPEM)
	if ic.Subject.CommonName != "Vigil Intermediate" || !ic.IsCA {
		t.Fatalf("intermediate %v IsCA=%v", ic.Subject, ic.IsCA)
	}
	if _, err := ic.Verify(x509.VerifyOptions{Roots: rootPool(t, rootPEM), CurrentTime: enginetest.Epoch.Add(time.Hour)}); err != nil {
		t.Fatalf("intermediate does not verify against the root: %v", err)
	}
	// The intermediate mount's default issuer is the one with a key, and its
	// chain reaches the root.
	chain := string(must(t)(inter.Read("ca_chain", nil)).Raw.Body)
	if !strings.HasPrefix(chain, intPEM) || !strings.Contains(chain, rootPEM) {
		t.Errorf("ca_chain = %q", chain)
	}
	// The root mount recorded what it signed.
	list := must(t)(root.List("certs/")).Data["keys"].([]string)
	if len(list) != 2 || !contains(list, formatSerial(ic.SerialNumber)) {
		t.Errorf("root certs/ = %v", list)
	}
	// Setting the same certificate again changes nothing.
	again := must(t)(inter.Write("intermediate/set-signed", map[string]any{"certificate": intPEM})).Data
	if len(stringsOf(t, again["existing_issuers"])) != 1 || len(stringsOf(t, again["imported_issuers"])) != 0 {
		t.Errorf("second set-signed: %v", again)
	}
}

func TestSetSignedKeyMismatch(t *testing.T) {
	root, inter := newPKIAt(t, "pki/"), newPKIAt(t, "pki_int/")
	genRoot(t, root, nil)
	must(t)(inter.Write("intermediate/generate/internal", map[string]any{"common_name": "I", "key_type": "ec"}))
	// A CSR from another mount, signed by the root: its key is not inter's.
	other := newPKIAt(t, "other/")
	csr := str(t, must(t)(other.Write("intermediate/generate/internal", map[string]any{"common_name": "O", "key_type": "ec"})).Data, "csr")
	signed := str(t, must(t)(root.Write("root/sign-intermediate", map[string]any{"csr": csr, "common_name": "O", "ttl": "24h"})).Data, "certificate")
	_, err := inter.Write("intermediate/set-signed", map[string]any{"certificate": signed})
	wantErr(t, err, core.CodeInvalid, "does not match any key generated on this mount")
	if _, err := inter.Read("ca/pem", nil); err == nil {
		t.Error("a rejected set-signed left an issuer behind")
	}
	// Non-CA certificates and garbage are refused too.
	webRole(t, root, nil)
	leaf := str(t, must(t)(root.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data, "certificate")
	_, err = inter.Write("intermediate/set-signed", map[string]any{"certificate": leaf})
	wantErr(t, err, core.CodeInvalid, "refusing to import non-CA certificate")
	_, err = inter.Write("intermediate/set-signed", map[string]any{"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"})
	wantErr(t, err, core.CodeInvalid, "unable to parse the certificate")
	_, err = inter.Write("intermediate/set-signed", map[string]any{})
	wantErr(t, err, core.CodeInvalid, "no certificate provided")
}

func TestSignIntermediateBadInput(t *testing.T) {
	root, inter := newPKIAt(t, "pki/"), newPKIAt(t, "pki_int/")
	csr := str(t, must(t)(inter.Write("intermediate/generate/internal", map[string]any{"common_name": "I", "key_type": "ec"})).Data, "csr")
	_, err := root.Write("root/sign-intermediate", map[string]any{"csr": csr, "common_name": "I"})
	wantErr(t, err, core.CodeInvalid, "no default issuer currently configured")
	genRoot(t, root, map[string]any{"max_path_length": 0})
	for _, tc := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"common_name": "I"}, "missing csr"},
		{map[string]any{"csr": "not a csr", "common_name": "I"}, "certificate request could not be parsed"},
		{map[string]any{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----", "common_name": "I"}, "certificate request could not be parsed"},
		{map[string]any{"csr": tamperCSR(t, csr), "common_name": "I"}, "request signature invalid"},
		{map[string]any{"csr": csr}, "the common_name field is required"},
		{map[string]any{"csr": csr, "common_name": "I"}, "max path length of zero"},
	} {
		_, err := root.Write("root/sign-intermediate", tc.body)
		wantErr(t, err, core.CodeInvalid, tc.msg)
	}
}

func TestSignIntermediateUseCSRValuesAndPathLen(t *testing.T) {
	root, inter := newPKIAt(t, "pki/"), newPKIAt(t, "pki_int/")
	tuneMax(t, root, 768*time.Hour, 87600*time.Hour)
	genRoot(t, root, map[string]any{"max_path_length": 3})
	csr := str(t, must(t)(inter.Write("intermediate/generate/internal", map[string]any{
		"common_name": "From CSR", "organization": "CSR Org", "key_type": "ed25519"})).Data, "csr")
	d := must(t)(root.Write("root/sign-intermediate", map[string]any{"csr": csr, "use_csr_values": true, "ttl": "24h"})).Data
	ic := parseCert(t, str(t, d, "certificate"))
	if ic.Subject.CommonName != "From CSR" || len(ic.Subject.Organization) != 1 || ic.Subject.Organization[0] != "CSR Org" {
		t.Errorf("subject %v", ic.Subject)
	}
	if ic.MaxPathLen != 2 {
		t.Errorf("MaxPathLen %d, want the root's 3 minus one", ic.MaxPathLen)
	}
	if got := ic.NotAfter.Sub(enginetest.Epoch); got != 24*time.Hour {
		t.Errorf("validity %v", got)
	}
	if len(stringsOf(t, d["ca_chain"])) != 1 || d["issuing_ca"] != d["ca_chain"].([]string)[0] {
		t.Errorf("issuing_ca / ca_chain: %v / %v", d["issuing_ca"], d["ca_chain"])
	}
}

func TestIntermediateBeyondRootLifetime(t *testing.T) {
	root, inter := newPKIAt(t, "pki/"), newPKIAt(t, "pki_int/")
	tuneMax(t, root, 768*time.Hour, 87600*time.Hour)
	genRoot(t, root, map[string]any{"ttl": "48h"})
	csr := str(t, must(t)(inter.Write("intermediate/generate/internal", map[string]any{"common_name": "I", "key_type": "ec"})).Data, "csr")
	_, err := root.Write("root/sign-intermediate", map[string]any{"csr": csr, "common_name": "I", "ttl": "72h"})
	wantErr(t, err, core.CodeInvalid, "beyond the expiration of the CA certificate")
}

func TestIntermediateGenerateExported(t *testing.T) {
	c := newPKI(t)
	d := must(t)(c.Write("intermediate/generate/exported", map[string]any{"common_name": "I", "key_type": "ec",
		"alt_names": "int.example.com", "add_basic_constraints": true})).Data
	csr, err := parseCSR(str(t, d, "csr"))
	if err != nil {
		t.Fatal(err)
	}
	// The common name is a host name, so it leads the DNS SANs (as in Vault).
	if csr.Subject.CommonName != "I" || strings.Join(csr.DNSNames, ",") != "I,int.example.com" {
		t.Errorf("CSR subject %v DNS %v", csr.Subject, csr.DNSNames)
	}
	found := false
	for _, e := range csr.Extensions {
		found = found || e.Id.Equal(oidBasicConstraints)
	}
	if !found {
		t.Error("add_basic_constraints did not add the extension")
	}
	key, err := parsePrivateKeyPEM(str(t, d, "private_key"))
	if err != nil || !samePublicKey(key.Public(), csr.PublicKey) {
		t.Fatalf("exported key does not match the CSR: %v", err)
	}
	if d["key_id"] == "" || d["private_key_type"] != "ec" {
		t.Errorf("key_id %v private_key_type %v", d["key_id"], d["private_key_type"])
	}
}

// tamperCSR flips a byte of the CSR's signature.
func tamperCSR(t testing.TB, csrPEM string) string {
	t.Helper()
	csr, err := parseCSR(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), csr.Raw...)
	raw[len(raw)-3] ^= 0xff
	return "-----BEGIN CERTIFICATE REQUEST-----\n" + base64.StdEncoding.EncodeToString(raw) + "\n-----END CERTIFICATE REQUEST-----\n"
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
