package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/reports"
	"github.com/vigilsec/vigil/reports/query"
)

// keySigner signs evidence as the audit subsystem does (Ed25519 over the
// evidence context and the statement).
type keySigner struct{ k ed25519.PrivateKey }

func (s keySigner) SignEvidence(msg []byte) ([]byte, ed25519.PublicKey, error) {
	return ed25519.Sign(s.k, append([]byte(reports.EvidenceContext), msg...)), s.k.Public().(ed25519.PublicKey), nil
}

// TestReportVerify: `vigil report verify` accepts an intact bundle (zip
// or folder) with the checkpoint key, exits 2 on a changed byte or another
// key, and says when the key was not pinned.
func TestReportVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	r := &reports.Report{Kind: reports.KindHIPAA, Title: "HIPAA Security Rule audit report", From: at.AddDate(0, 0, -7), To: at, GeneratedAt: at,
		TimeZone: "UTC", Checkpoint: &query.CheckpointRef{NodeID: "n1", Seq: 42, Hash: strings.Repeat("a", 64), Time: at}}
	zb, _, err := reports.BuildBundle(r, map[string]string{"from": "2025-03-03"}, "vigil test", keySigner{priv})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	zp := filepath.Join(dir, "b.zip")
	if err := os.WriteFile(zp, zb, 0o600); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	kp := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runCLI(t, "report", "verify", "-pubkey", kp, zp); res.code != 0 || !strings.Contains(res.out, "OK: HIPAA") || strings.Contains(res.out, "not pinned") {
		t.Fatalf("intact bundle: %d %s %s", res.code, res.out, res.err)
	}
	if res := runCLI(t, "report", "verify", zp); res.code != 0 || !strings.Contains(res.out, "pass -pubkey to pin it") {
		t.Fatalf("without a key: %d %s", res.code, res.out)
	}
	// An unpacked folder with one byte of the PDF changed.
	files, err := reports.ReadBundle(zp)
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "unpacked")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if name == reports.BundlePDF {
			b[len(b)/2] ^= 0x01
		}
		if err := os.WriteFile(filepath.Join(folder, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if res := runCLI(t, "report", "verify", "-pubkey", kp, folder); res.code != 2 || !strings.Contains(res.err, "report.pdf") {
		t.Fatalf("changed PDF: %d %s", res.code, res.err)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	der, _ = x509.MarshalPKIXPublicKey(other)
	if err := os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runCLI(t, "report", "verify", "-pubkey", kp, zp); res.code != 2 {
		t.Fatalf("another key: %d %s", res.code, res.err)
	}
}
