package clustertls

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/storage"
)

func mustLeaf(t *testing.T, n *NodeCert) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(n.CertPEM))
	if b == nil {
		t.Fatal("not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureIssueRevoke(t *testing.T) {
	ctx := context.Background()
	st := storage.NewMemory()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := Options{Now: func() time.Time { return now }}
	if _, err := Load(ctx, st, "n1"); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Load before Ensure: %v", err)
	}
	n1, err := Ensure(ctx, st, "prod", "n1", o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Ensure(ctx, st, "prod", "n1", o)
	if err != nil || again.CertPEM != n1.CertPEM {
		t.Fatalf("Ensure is not idempotent: %v", err)
	}
	ca, err := LoadCA(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustLeaf(t, n1)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: ServerName, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("node certificate does not verify for %v: %v", usage, err)
		}
	}
	if leaf.Subject.CommonName != "n1" || leaf.NotAfter.After(ca.Cert.NotAfter) {
		t.Fatalf("leaf %v until %v", leaf.Subject, leaf.NotAfter)
	}
	if _, _, err := n1.TLS(); err != nil {
		t.Fatal(err)
	}

	check := PeerCheck(st)
	if err := check(leaf); err != nil {
		t.Fatalf("current certificate refused: %v", err)
	}
	// A re-issue replaces the certificate: the old one is refused.
	n1b, err := Issue(ctx, st, "n1", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(leaf); err == nil {
		t.Fatal("a replaced certificate is still accepted")
	}
	if err := check(mustLeaf(t, n1b)); err != nil {
		t.Fatal(err)
	}
	// A second node gets a certificate of the same CA.
	n2, err := Ensure(ctx, st, "prod", "n2", o)
	if err != nil || n2.CAPEM != n1.CAPEM {
		t.Fatalf("second node: %v", err)
	}
	if err := Revoke(ctx, st, "n2"); err != nil {
		t.Fatal(err)
	}
	if err := check(mustLeaf(t, n2)); err == nil {
		t.Fatal("a revoked node is accepted")
	}
}

func TestIssueNeedsCAAndValidID(t *testing.T) {
	ctx := context.Background()
	st := storage.NewMemory()
	if _, err := Issue(ctx, st, "n1", Options{}); !errors.Is(err, ErrNoCA) {
		t.Fatalf("Issue without a CA: %v", err)
	}
	for _, bad := range []string{"", "a/b", "..", "a b"} {
		if _, err := Ensure(ctx, st, "", bad, Options{}); err == nil {
			t.Errorf("node id %q accepted", bad)
		}
	}
}
