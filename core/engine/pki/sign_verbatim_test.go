package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

func csrPEM(t *testing.T, tmpl *x509.CertificateRequest) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func certOf(t *testing.T, data map[string]any) *x509.Certificate {
	t.Helper()
	s, _ := data["certificate"].(string)
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no certificate in %v", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sign-verbatim signs a CSR's subject and SANs as they are; with a role its
// lifetimes apply (a longer ttl is capped with a warning); CA CSRs are refused.
func TestPKISignVerbatim(t *testing.T) {
	srv, _ := startServer(t, nil)
	c := srv.Client
	mountPKI(t, c, "pki", "8760h")
	write(t, c, "pki/root/generate/internal", map[string]any{"common_name": "Root", "key_type": "ec", "ttl": "8760h"})
	write(t, c, "pki/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "24h"})

	csr := csrPEM(t, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "anything.other.org", Organization: []string{"Acme"}, Country: []string{"NP"}},
		DNSNames:    []string{"anything.other.org", "alt.other.org"},
		IPAddresses: []net.IP{net.ParseIP("10.1.2.3")},
	})
	sec := write(t, c, "pki/sign-verbatim", map[string]any{"csr": csr, "ext_key_usage": "ServerAuth"})
	cert := certOf(t, sec.Data)
	if cert.Subject.CommonName != "anything.other.org" || !reflect.DeepEqual(cert.Subject.Organization, []string{"Acme"}) ||
		!reflect.DeepEqual(cert.DNSNames, []string{"anything.other.org", "alt.other.org"}) || len(cert.IPAddresses) != 1 {
		t.Fatalf("verbatim certificate: subject %v DNS %v IP %v", cert.Subject, cert.DNSNames, cert.IPAddresses)
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 || !reflect.DeepEqual(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || cert.IsCA {
		t.Fatalf("verbatim usages: ku %v eku %v ca %v", cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA)
	}
	// The certificate is stored like any other.
	serial, _ := sec.Data["serial_number"].(string)
	if got, err := c.Logical().Read("pki/cert/" + serial); err != nil || got == nil {
		t.Fatalf("stored certificate: %v %v", got, err)
	}

	// With a role: its max_ttl caps the ttl, with a warning; its name rules
	// do not apply.
	sec = write(t, c, "pki/sign-verbatim/web", map[string]any{"csr": csr, "ttl": "48h"})
	cert = certOf(t, sec.Data)
	if life := time.Until(cert.NotAfter); life > 24*time.Hour+time.Minute || life < 23*time.Hour {
		t.Errorf("role ttl not applied: NotAfter in %v", life)
	}
	if len(sec.Warnings) != 1 || !strings.Contains(sec.Warnings[0], "maxTTL") {
		t.Errorf("capped ttl warning: %v", sec.Warnings)
	}
	_, err := c.Logical().Write("pki/sign-verbatim/nope", map[string]any{"csr": csr})
	want400(t, err, "unknown role")

	// A CSR asking for a CA certificate is refused.
	bc, _ := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{IsCA: true})
	caCSR := csrPEM(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Sub CA"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc}}})
	_, err = c.Logical().Write("pki/sign-verbatim", map[string]any{"csr": caCSR})
	want400(t, err, "CA certificate")
	_, err = c.Logical().Write("pki/sign-verbatim", map[string]any{"csr": "junk"})
	want400(t, err, "certificate request could not be parsed")
}
