package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"net"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

func TestIssueKeyTypes(t *testing.T) {
	root, inter := newPKIAt(t, "pki/"), newPKIAt(t, "pki_int/")
	rootPEM, intPEM := intermediateFlow(t, root, inter, "ec")
	for _, tc := range []struct {
		keyType string
		bits    int
		pemType string
	}{{"ec", 256, "EC PRIVATE KEY"}, {"rsa", 2048, "RSA PRIVATE KEY"}, {"ed25519", 0, "PRIVATE KEY"}} {
		t.Run(tc.keyType, func(t *testing.T) {
			webRole(t, inter, map[string]any{"key_type": tc.keyType, "key_bits": tc.bits, "organization": "Vigil", "ou": "Web"})
			d := must(t)(inter.Write("issue/web", map[string]any{"common_name": "www.example.com",
				"alt_names": "api.example.com,ops@mail.example.com", "ip_sans": "192.0.2.7", "ttl": "24h"})).Data
			cert := parseCert(t, str(t, d, "certificate"))
			if typ, bits := publicKeyType(cert.PublicKey); typ != tc.keyType || bits != tc.bits {
				t.Errorf("key %s/%d", typ, bits)
			}
			key, err := parsePrivateKeyPEM(str(t, d, "private_key"))
			if err != nil || !samePublicKey(key.Public(), cert.PublicKey) {
				t.Fatalf("private key does not match: %v", err)
			}
			if !strings.HasPrefix(str(t, d, "private_key"), "-----BEGIN "+tc.pemType) || d["private_key_type"] != tc.keyType {
				t.Errorf("private key %q type %v", str(t, d, "private_key")[:30], d["private_key_type"])
			}
			if str(t, d, "issuing_ca") != intPEM {
				t.Error("issuing_ca is not the intermediate")
			}
			if chain := stringsOf(t, d["ca_chain"]); len(chain) != 2 || chain[0] != intPEM || chain[1] != rootPEM {
				t.Errorf("ca_chain has %d entries, want [intermediate, root]", len(chain))
			}
			if d["serial_number"] != formatSerial(cert.SerialNumber) || d["expiration"] != cert.NotAfter.Unix() {
				t.Errorf("serial_number %v expiration %v", d["serial_number"], d["expiration"])
			}
			if !reflect.DeepEqual(cert.DNSNames, []string{"www.example.com", "api.example.com"}) ||
				!reflect.DeepEqual(cert.EmailAddresses, []string{"ops@mail.example.com"}) || !cert.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) {
				t.Errorf("SANs dns=%v email=%v ip=%v", cert.DNSNames, cert.EmailAddresses, cert.IPAddresses)
			}
			if cert.Subject.CommonName != "www.example.com" || cert.Subject.Organization[0] != "Vigil" || cert.Subject.OrganizationalUnit[0] != "Web" {
				t.Errorf("subject %v", cert.Subject)
			}
			if !reflect.DeepEqual(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ext key usage %v", cert.ExtKeyUsage)
			}
			wantKU := map[string]x509.KeyUsage{
				"rsa":     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment,
				"ec":      x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
				"ed25519": x509.KeyUsageDigitalSignature,
			}[tc.keyType]
			if cert.KeyUsage != wantKU {
				t.Errorf("key usage %b, want %b", cert.KeyUsage, wantKU)
			}
			if cert.IsCA || cert.BasicConstraintsValid {
				t.Error("leaf carries CA basic constraints")
			}
			if got := cert.NotAfter.Sub(enginetest.Epoch); got != 24*time.Hour {
				t.Errorf("validity %v", got)
			}
			_, err = cert.Verify(x509.VerifyOptions{Roots: rootPool(t, rootPEM), Intermediates: rootPool(t, intPEM),
				DNSName: "api.example.com", CurrentTime: enginetest.Epoch.Add(time.Minute)})
			if err != nil {
				t.Fatalf("leaf does not verify against the chain: %v", err)
			}
			// Stored under its serial.
			got := must(t)(inter.Read("cert/"+formatSerial(cert.SerialNumber), nil)).Data
			if got["certificate"] != str(t, d, "certificate") || got["revocation_time"] != int64(0) {
				t.Errorf("cert/:serial = %v", got)
			}
		})
	}
}

func TestIssueFormatsAndAIA(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	must(t)(c.Write("config/urls", map[string]any{"issuing_certificates": "http://ca.test/v1/pki/ca",
		"crl_distribution_points": "http://ca.test/v1/pki/crl", "ocsp_servers": "http://ca.test/v1/pki/ocsp"}))
	webRole(t, c, map[string]any{"basic_constraints_valid_for_non_ca": true, "ext_key_usage": "TimeStamping",
		"ext_key_usage_oids": "1.3.6.1.4.1.311.20.2.2", "server_flag": false})

	d := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "format": "der", "private_key_format": "pkcs8"})).Data
	der, err := base64.StdEncoding.DecodeString(str(t, d, "certificate"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cert.IssuingCertificateURL, []string{"http://ca.test/v1/pki/ca"}) ||
		!reflect.DeepEqual(cert.CRLDistributionPoints, []string{"http://ca.test/v1/pki/crl"}) ||
		!reflect.DeepEqual(cert.OCSPServer, []string{"http://ca.test/v1/pki/ocsp"}) {
		t.Errorf("AIA %v CRL %v OCSP %v", cert.IssuingCertificateURL, cert.CRLDistributionPoints, cert.OCSPServer)
	}
	if !cert.BasicConstraintsValid || cert.IsCA {
		t.Error("basic_constraints_valid_for_non_ca not honoured")
	}
	if !reflect.DeepEqual(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageTimeStamping}) ||
		len(cert.UnknownExtKeyUsage) != 1 || cert.UnknownExtKeyUsage[0].String() != "1.3.6.1.4.1.311.20.2.2" {
		t.Errorf("ext key usage %v %v", cert.ExtKeyUsage, cert.UnknownExtKeyUsage)
	}
	kder, err := base64.StdEncoding.DecodeString(str(t, d, "private_key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(kder); err != nil {
		t.Errorf("pkcs8 der key: %v", err)
	}
	if _, err := base64.StdEncoding.DecodeString(str(t, d, "issuing_ca")); err != nil {
		t.Error("issuing_ca is not base64 DER")
	}

	d = must(t)(c.Write("issue/web", map[string]any{"common_name": "b.example.com", "format": "pem_bundle"})).Data
	var types []string
	rest := []byte(str(t, d, "certificate"))
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		types = append(types, b.Type)
	}
	if !reflect.DeepEqual(types, []string{"EC PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"}) {
		t.Errorf("pem_bundle blocks %v", types)
	}
}

func TestIssueBadInput(t *testing.T) {
	c := newPKI(t)
	_, err := c.Write("issue/web", map[string]any{"common_name": "a.example.com"})
	wantErr(t, err, core.CodeInvalid, "unknown role: web")
	webRole(t, c, map[string]any{"allow_ip_sans": false})
	_, err = c.Write("issue/web", map[string]any{"common_name": "a.example.com"})
	wantErr(t, err, core.CodeInvalid, "no default issuer currently configured")
	genRoot(t, c, nil)
	for _, tc := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"common_name": "evil.com"}, "common name evil.com not allowed by this role"},
		{map[string]any{"common_name": "example.com"}, "common name example.com not allowed by this role"},
		{map[string]any{"common_name": "a.example.com", "alt_names": "b.example.org"}, "subject alternate name b.example.org not allowed by this role"},
		{map[string]any{"common_name": "a.example.com", "alt_names": "ops@evil.com"}, "email address ops@evil.com not allowed by this role"},
		{map[string]any{"common_name": "a.example.com", "alt_names": "bad name"}, "not a valid DNS name"},
		{map[string]any{"common_name": "a.example.com", "ip_sans": "10.0.0.1"}, "IP Subject Alternative Names are not allowed in this role"},
		{map[string]any{"common_name": "a.example.com", "uri_sans": "spiffe://x/y"}, "URI Subject Alternative Names are not allowed in this role"},
		{map[string]any{"common_name": "a.example.com", "not_after": "tomorrow"}, "invalid not_after"},
		{map[string]any{"common_name": "a.example.com", "other_sans": "1.2.3;UTF8:x"}, "other_sans are not supported"},
		{map[string]any{}, "the common_name field is required"},
		{map[string]any{"common_name": "a.example.com", "format": "jks"}, `field "format"`},
	} {
		_, err := c.Write("issue/web", tc.body)
		wantErr(t, err, core.CodeInvalid, tc.msg)
	}
	if _, err := c.List("certs/"); err != nil {
		t.Fatal(err) // only the root is stored
	}
	if keys := must(t)(c.List("certs/")).Data["keys"].([]string); len(keys) != 1 {
		t.Errorf("failed issues stored certificates: %v", keys)
	}
	must(t)(c.Write("roles/signer", map[string]any{"key_type": "any", "allow_any_name": true}))
	_, err = c.Write("issue/signer", map[string]any{"common_name": "x.test"})
	wantErr(t, err, core.CodeInvalid, `role key type "any" not allowed for issuing certificates`)
}

func TestIssueTTLRules(t *testing.T) {
	c := newPKI(t)
	tuneMax(t, c, 768*time.Hour, 87600*time.Hour)
	genRoot(t, c, map[string]any{"ttl": "1000h"})

	// The role's default ttl applies; a default above the max is capped with a warning.
	webRole(t, c, map[string]any{"ttl": "2h", "max_ttl": "10h"})
	d := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data
	if got := parseCert(t, str(t, d, "certificate")).NotAfter.Sub(enginetest.Epoch); got != 2*time.Hour {
		t.Errorf("role ttl: %v", got)
	}
	webRole(t, c, map[string]any{"max_ttl": "10h"}) // no role ttl: the mount default (768h) is capped to 10h
	resp := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"}))
	if got := parseCert(t, str(t, resp.Data, "certificate")).NotAfter.Sub(enginetest.Epoch); got != 10*time.Hour || len(resp.Warnings) != 1 {
		t.Errorf("capped default: %v, warnings %q", got, resp.Warnings)
	}
	// A requested ttl or not_after above the role's max_ttl is capped, with
	// a warning, as in Vault.
	for _, body := range []map[string]any{{"ttl": "11h"}, {"not_after": enginetest.Epoch.Add(30 * time.Hour).Format(time.RFC3339)}} {
		body["common_name"] = "a.example.com"
		resp = must(t)(c.Write("issue/web", body))
		if got := parseCert(t, str(t, resp.Data, "certificate")).NotAfter.Sub(enginetest.Epoch); got != 10*time.Hour || len(resp.Warnings) != 1 ||
			!strings.Contains(resp.Warnings[0], "maxTTL") {
			t.Errorf("capped %v: %v, warnings %q", body, got, resp.Warnings)
		}
	}
	// The role's max_ttl is itself capped by the mount's max.
	tuneMax(t, c, time.Hour, 5*time.Hour)
	resp = must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "6h"}))
	if got := parseCert(t, str(t, resp.Data, "certificate")).NotAfter.Sub(enginetest.Epoch); got != 5*time.Hour || len(resp.Warnings) != 1 {
		t.Errorf("capped by the mount: %v, warnings %q", got, resp.Warnings)
	}

	// A leaf never outlives its issuer: err (default), truncate, permit.
	tuneMax(t, c, time.Hour, 87600*time.Hour)
	webRole(t, c, map[string]any{"max_ttl": "2000h"})
	_, err := c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "1500h"})
	wantErr(t, err, core.CodeInvalid, "beyond the expiration of the CA certificate")
	rootNotAfter := parseCert(t, str(t, must(t)(c.Read("cert/ca", nil)).Data, "certificate")).NotAfter
	must(t)(c.Write("issuer/default", map[string]any{"leaf_not_after_behavior": "truncate"}))
	d = must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "1500h"})).Data
	if got := parseCert(t, str(t, d, "certificate")).NotAfter; !got.Equal(rootNotAfter) {
		t.Errorf("truncate: NotAfter %v, want the root's %v", got, rootNotAfter)
	}
	must(t)(c.Write("issuer/default", map[string]any{"leaf_not_after_behavior": "permit"}))
	d = must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "1500h"})).Data
	if got := parseCert(t, str(t, d, "certificate")).NotAfter.Sub(enginetest.Epoch); got != 1500*time.Hour {
		t.Errorf("permit: validity %v", got)
	}
	_, err = c.Write("issuer/default", map[string]any{"leaf_not_after_behavior": "shrug"})
	wantErr(t, err, core.CodeInvalid, `field "leaf_not_after_behavior"`)
}

func TestIssueLeaseAndNoStore(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, map[string]any{"generate_lease": true})
	resp := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "3h"}))
	if resp.Secret == nil || resp.Secret.TTL != 3*time.Hour || resp.Secret.Renewable {
		t.Fatalf("secret %+v", resp.Secret)
	}
	if resp.Secret.InternalData["serial_number"] != resp.Data["serial_number"] {
		t.Errorf("internal data %v", resp.Secret.InternalData)
	}
	webRole(t, c, map[string]any{"no_store": true})
	resp = must(t)(c.Write("issue/web", map[string]any{"common_name": "b.example.com"}))
	if resp.Secret != nil {
		t.Error("a role without generate_lease leased a certificate")
	}
	if _, err := c.Read("cert/"+str(t, resp.Data, "serial_number"), nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("no_store certificate was stored: %v", err)
	}
}

func TestSign(t *testing.T) {
	c := newPKI(t)
	rootPEM := str(t, genRoot(t, c, nil), "certificate")
	webRole(t, c, map[string]any{"key_type": "ec", "key_bits": 256, "allowed_uri_sans": "spiffe://vigil/*"})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://vigil/web")
	csr := makeCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "csr.example.com"},
		DNSNames: []string{"alt.example.com"}, URIs: []*url.URL{u}}, key)
	d := must(t)(c.Write("sign/web", map[string]any{"csr": csr, "ttl": "1h"})).Data
	if _, ok := d["private_key"]; ok {
		t.Error("sign returned a private key")
	}
	cert := parseCert(t, str(t, d, "certificate"))
	if cert.Subject.CommonName != "csr.example.com" || !reflect.DeepEqual(cert.DNSNames, []string{"csr.example.com", "alt.example.com"}) ||
		len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://vigil/web" {
		t.Errorf("CN %q DNS %v URIs %v", cert.Subject.CommonName, cert.DNSNames, cert.URIs)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		t.Error("certificate is not for the CSR's key")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: rootPool(t, rootPEM), CurrentTime: enginetest.Epoch}); err != nil {
		t.Errorf("verify: %v", err)
	}

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, err := c.Write("sign/web", map[string]any{"csr": makeCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.example.com"}}, rsaKey)})
	wantErr(t, err, core.CodeInvalid, "role requires keys of type ec")
	_, err = c.Write("sign/web", map[string]any{"csr": makeCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "evil.org"}}, key)})
	wantErr(t, err, core.CodeInvalid, "common name evil.org not allowed by this role")
	_, err = c.Write("sign/web", map[string]any{"csr": "garbage"})
	wantErr(t, err, core.CodeInvalid, "certificate request could not be parsed")
	_, err = c.Write("sign/web", map[string]any{"csr": tamperCSR(t, csr)})
	wantErr(t, err, core.CodeInvalid, "request signature invalid")
	badURI, _ := url.Parse("spiffe://other/db")
	_, err = c.Write("sign/web", map[string]any{"csr": makeCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.example.com"}, URIs: []*url.URL{badURI}}, key)})
	wantErr(t, err, core.CodeInvalid, "URI Subject Alternative Names were provided via CSR which are not valid for this role")

	// A role of key type "any" signs any key; with use_csr_* off, the request names win.
	must(t)(c.Write("roles/any", map[string]any{"key_type": "any", "allowed_domains": "example.com", "allow_subdomains": true,
		"use_csr_common_name": false, "use_csr_sans": false}))
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	d = must(t)(c.Write("sign/any", map[string]any{"csr": makeCSR(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored.org"}}, edKey),
		"common_name": "req.example.com"})).Data
	if cert := parseCert(t, str(t, d, "certificate")); cert.Subject.CommonName != "req.example.com" || !reflect.DeepEqual(cert.DNSNames, []string{"req.example.com"}) {
		t.Errorf("use_csr_* off: CN %q DNS %v", cert.Subject.CommonName, cert.DNSNames)
	}
}

func makeCSR(t testing.TB, tmpl *x509.CertificateRequest, key any) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func TestIssueExcludeCNAndWildcard(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, nil)
	d := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "alt_names": "b.example.com", "exclude_cn_from_sans": true})).Data
	if cert := parseCert(t, str(t, d, "certificate")); cert.Subject.CommonName != "a.example.com" || !reflect.DeepEqual(cert.DNSNames, []string{"b.example.com"}) {
		t.Errorf("exclude_cn_from_sans: CN %q DNS %v", cert.Subject.CommonName, cert.DNSNames)
	}
	// The common name is checked even when excluded from the SANs.
	_, err := c.Write("issue/web", map[string]any{"common_name": "evil.org", "alt_names": "b.example.com", "exclude_cn_from_sans": true})
	wantErr(t, err, core.CodeInvalid, "common name evil.org not allowed by this role")
	d = must(t)(c.Write("issue/web", map[string]any{"common_name": "*.example.com"})).Data
	if cert := parseCert(t, str(t, d, "certificate")); !reflect.DeepEqual(cert.DNSNames, []string{"*.example.com"}) {
		t.Errorf("wildcard DNS %v", cert.DNSNames)
	}
}
