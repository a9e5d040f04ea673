package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// testPKI issues certificates from one in-memory CA into dir.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CLI test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caFile = p.write(t, "ca.crt", "CERTIFICATE", der)
	return p
}

func (p *testPKI) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(p.dir, name)
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (p *testPKI) issue(t *testing.T, name, cn string, eku x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &k.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	return p.write(t, name+".crt", "CERTIFICATE", der), p.write(t, name+".key", "EC PRIVATE KEY", kb)
}

// TestLoginCertCLI: `vigil login -method=cert -client-cert -client-key`
// presents the certificate on the TLS connection (VIGIL_CACERT trusts the
// server); without one the login is refused.
func TestLoginCertCLI(t *testing.T) {
	pki := newTestPKI(t)
	srvCert, srvKey := pki.issue(t, "server", "127.0.0.1", x509.ExtKeyUsageServerAuth)
	carolCert, carolKey := pki.issue(t, "carol", "carol", x509.ExtKeyUsageClientAuth)
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true, ClientTLS: &vaultapi.TLSConfig{CACert: pki.caFile},
		Configure: func(c *config.Config) {
			c.Listeners = []config.Listener{{Type: "tcp", Address: "127.0.0.1:0", TLSCertFile: srvCert, TLSKeyFile: srvKey}}
		}})
	pointCLI(t, s)
	t.Setenv("VIGIL_CACERT", pki.caFile)
	mustOK(t, "auth", "enable", "cert")
	caPEM, _ := os.ReadFile(pki.caFile)
	mustOK(t, "write", "auth/cert/certs/staff", "certificate="+string(caPEM), "token_policies=default")
	out := mustOK(t, "login", "-method=cert", "-no-store", "-format=json", "-client-cert="+carolCert, "-client-key="+carolKey, "name=staff")
	if !strings.Contains(out, `"common_name": "carol"`) {
		t.Fatalf("login output:\n%s", out)
	}
	runCLI(t, "login", "-method=cert", "-no-store", "name=staff").wantCode(t, 2, "client certificate must be supplied")
}
