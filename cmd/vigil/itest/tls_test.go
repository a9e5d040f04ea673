package itest

import (
	"context"
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
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	src := []byte(`
storage "raft" {
  path    = "` + filepath.Join(dir, "data") + `"
  node_id = "tls-node"
}
listener "tcp" {
  address       = "127.0.0.1:0"
  tls_cert_file = "` + certFile + `"
  tls_key_file  = "` + keyFile + `"
}
`)
	cfg, err := config.Parse("tls.hcl", src)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := wire.Options(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	if err := srv.Listen(""); err != nil {
		t.Fatal(err)
	}
	// A client that trusts the certificate talks TLS.
	vc := vaultapi.DefaultConfig()
	vc.Address = "https://" + srv.Addr()
	if err := vc.ConfigureTLS(&vaultapi.TLSConfig{CACert: certFile}); err != nil {
		t.Fatal(err)
	}
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Sys().Init(&vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init over TLS: %v", err)
	}
	if st, err := c.Sys().Unseal(res.Keys[0]); err != nil || st.Sealed {
		t.Fatalf("unseal over TLS: %v %+v", err, st)
	}
	// Plain HTTP to the TLS port fails; so does a client that does not trust it.
	plain, _ := vaultapi.NewClient(&vaultapi.Config{Address: "http://" + srv.Addr(), MaxRetries: 0})
	if _, err := plain.Sys().Health(); err == nil {
		t.Fatal("plain HTTP accepted on a TLS listener")
	}
	untrusting := vaultapi.DefaultConfig()
	untrusting.Address = "https://" + srv.Addr()
	untrusting.MaxRetries = 0
	uc, _ := vaultapi.NewClient(untrusting)
	if _, err := uc.Sys().Health(); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
}
