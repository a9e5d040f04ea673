package itest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// pemCA is a certificate authority made with the openssl command.
type pemCA struct {
	openssl, dir, certFile, keyFile, certPEM string
}

func openssl(t *testing.T, bin string, args ...string) {
	t.Helper()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newCA creates a CA valid for two days.
func newCA(t *testing.T, cn string) *pemCA {
	t.Helper()
	bin := testsvc.Tool(t, "openssl")
	dir := t.TempDir()
	ca := &pemCA{openssl: bin, dir: dir, certFile: filepath.Join(dir, "ca.crt"), keyFile: filepath.Join(dir, "ca.key")}
	cnf := filepath.Join(dir, "ca.cnf")
	writeFile(t, cnf, "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN="+cn+"\n[v3_ca]\n"+
		"basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n")
	openssl(t, bin, "req", "-x509", "-config", cnf, "-extensions", "v3_ca", "-newkey", "rsa:2048", "-nodes",
		"-days", "2", "-keyout", ca.keyFile, "-out", ca.certFile)
	b, err := os.ReadFile(ca.certFile)
	if err != nil {
		t.Fatal(err)
	}
	ca.certPEM = string(b)
	return ca
}

// issue signs a one-day certificate for subject (e.g. "/CN=carol/OU=icu")
// with the extended key usage (clientAuth or serverAuth) and SANs given.
func (ca *pemCA) issue(t *testing.T, name, subject, eku, sans string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	csr, ext := filepath.Join(ca.dir, name+".csr"), filepath.Join(ca.dir, name+".ext")
	e := "[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=" + eku + "\n" +
		"subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
	if sans != "" {
		e += "subjectAltName=" + sans + "\n"
	}
	writeFile(t, ext, e)
	openssl(t, ca.openssl, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", keyFile, "-out", csr)
	openssl(t, ca.openssl, "x509", "-req", "-in", csr, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial",
		"-days", "1", "-extfile", ext, "-extensions", "leaf", "-out", certFile)
	return certFile, keyFile
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCertLogin logs in with client certificates over mutual TLS on the
// listener (which asks for a certificate but does not require one). The
// role trusts one CA and allows one organizational unit; the certificate's
// common name names the entity alias. A certificate from another CA, one
// outside the allowed unit, an expired one, and none at all are refused.
func TestCertLogin(t *testing.T) {
	serverCA := newCA(t, "Vigil test server CA")
	srvCert, srvKey := serverCA.issue(t, "server", "/CN=127.0.0.1", "serverAuth", "IP:127.0.0.1,DNS:localhost")
	clinic := newCA(t, "Clinic CA")
	rogue := newCA(t, "Rogue CA")
	carolCert, carolKey := clinic.issue(t, "carol", "/CN=carol/OU=icu", "clientAuth", "email:carol@vigil.test")
	daveCert, daveKey := clinic.issue(t, "dave", "/CN=dave/OU=engineering", "clientAuth", "")
	fakeCert, fakeKey := rogue.issue(t, "carol-forged", "/CN=carol/OU=icu", "clientAuth", "")

	clock := newFakeClock()
	serverTLS := &vaultapi.TLSConfig{CACert: serverCA.certFile}
	s, dir := loginServer(t, servertest.Options{Now: clock.Now, ClientTLS: serverTLS, Configure: func(c *config.Config) {
		c.Listeners = []config.Listener{{Type: "tcp", Address: "127.0.0.1:0", TLSCertFile: srvCert, TLSKeyFile: srvKey}}
	}})
	c := s.Client
	acc := enableAuth(t, c, "cert", "cert")
	mustWriteAPI(t, c, "auth/cert/certs/clinicians", map[string]any{"certificate": clinic.certPEM, "display_name": "clinic",
		"allowed_organizational_units": "icu", "allowed_common_names": "*", "token_policies": "app"})

	login := func(cert, key string) (*vaultapi.Secret, error) {
		tc := &vaultapi.TLSConfig{CACert: serverCA.certFile, ClientCert: cert, ClientKey: key}
		return s.NewClientTLS("", tc).Logical().Write("auth/cert/login", map[string]any{"name": "clinicians"})
	}
	sec, err := login(carolCert, carolKey)
	wantLogin(t, s.Server, sec, err, acc, "carol", "app", "default")
	if sec.Auth.Metadata["common_name"] != "carol" || sec.Auth.Metadata["cert_name"] != "clinicians" {
		t.Fatalf("metadata %v", sec.Auth.Metadata)
	}
	// Without a name, every role is tried.
	tc := &vaultapi.TLSConfig{CACert: serverCA.certFile, ClientCert: carolCert, ClientKey: carolKey}
	if _, err := s.NewClientTLS("", tc).Logical().Write("auth/cert/login", nil); err != nil {
		t.Fatalf("login without a role name: %v", err)
	}

	const path = "auth/cert/login"
	t.Run("untrusted CA", func(t *testing.T) {
		_, err := login(fakeCert, fakeKey)
		wantRefused(t, dir, err, path, "certificate not trusted")
	})
	t.Run("wrong organizational unit", func(t *testing.T) {
		_, err := login(daveCert, daveKey)
		wantRefused(t, dir, err, path, "organizational units [engineering] are not allowed")
	})
	t.Run("no certificate", func(t *testing.T) {
		_, err := s.NewClient("").Logical().Write(path, map[string]any{"name": "clinicians"})
		wantRefused(t, dir, err, path, "client certificate must be supplied")
	})
	t.Run("role needs a certificate", func(t *testing.T) {
		_, err := c.Logical().Write("auth/cert/certs/empty", map[string]any{"token_policies": "app"})
		wantStatus(t, err, 400)
	})
	t.Run("expired", func(t *testing.T) {
		clock.Advance(50 * time.Hour)
		_, err := login(carolCert, carolKey)
		wantRefused(t, dir, err, path, "certificate has expired")
	})
}
