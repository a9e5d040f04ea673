package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/storage"
)

// mustCert makes a self-signed certificate for 127.0.0.1 and writes its
// PEM to dir/ca.pem.
func mustCert(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

// Streams reach a broker that requires TLS and SASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512), configured from an audit_stream block; wrong credentials
// are refused (and retried, never skipped).
func TestTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	cert, ca := mustCert(t, dir)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.EnableSASL(),
				kfake.Superuser(mech, "vigil", "s3cret"), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			addr := c.ListenAddrs()[0]
			block := func(pass string) config.Block {
				o := map[string]config.Value{}
				for k, v := range map[string]string{"brokers": addr, "topic": "secure", "tls": "true", "tls_ca_file": ca,
					"sasl_mechanism": strings.ToLower(mech), "sasl_username": "vigil", "sasl_password": pass} {
					o[k] = config.Value{Value: v, Line: 1, File: "t.hcl"}
				}
				return config.Block{Type: "kafka", Name: "secure", Options: o, Line: 1, File: "t.hcl"}
			}
			sink, err := New(block("s3cret"), ship.Env{NodeID: "node-tls"})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			l := shiptest.MustLog(t, "node-tls")
			l.Append(t, 50, "tls")
			sh := shiptest.MustShipper(t, "secure", l, sink, ship.StorageCursors{S: storage.NewMemory()})
			shiptest.WaitCaughtUp(t, sh, l.Head(), time.Minute)

			cfg, _ := ParseBlock(block("s3cret"))
			read := func(ctx context.Context) ([][]byte, error) {
				var out [][]byte
				err := ReadTopic(ctx, ReadOptions{Brokers: cfg.Brokers, Topic: "secure", TLS: cfg.TLS, SASL: cfg.SASL}, func(m Message) error {
					out = append(out, m.Value)
					return nil
				})
				return out, err
			}
			shiptest.MustVerify(t, read, "node-tls", l.Head())

			bad, err := New(block("wrong"), ship.Env{NodeID: "node-tls"})
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := bad.Write(ctx, []ship.Record{{Seq: 1, NodeID: "n", Line: []byte("{}")}}); err == nil {
				t.Fatal("wrong password accepted")
			}
		})
	}
}
