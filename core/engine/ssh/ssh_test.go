package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

var testMount = core.MountInfo{Path: "ssh/", Type: "ssh"}

func newEngine(t *testing.T) (*Backend, *enginetest.Client) {
	t.Helper()
	e, c := enginetest.MustSetup(t, New, testMount)
	return e.(*Backend), c
}

// must fails the test on an error and returns the response data.

func must(t *testing.T) func(*core.Response, error) map[string]any {
	t.Helper()
	return func(resp *core.Response, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if resp == nil {
			return nil
		}
		return resp.Data
	}
}

// wantInvalid fails unless err is a 400 whose message contains msg.

func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a 400 containing %q, got success", msg)
	}
	if core.CodeOf(err) != core.CodeInvalid || !strings.Contains(err.Error(), msg) {
		t.Fatalf("want a 400 containing %q, got %s: %v", msg, core.CodeOf(err), err)
	}
}

// mustCA generates an Ed25519 CA (fast) and returns its public key.

func mustCA(t *testing.T, c *enginetest.Client) ssh.PublicKey {
	t.Helper()
	d := must(t)(c.Write("config/ca", map[string]any{"key_type": "ed25519"}))
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d["public_key"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// userKey returns a fresh Ed25519 public key in authorized_keys format.

func userKey(t *testing.T) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp, string(ssh.MarshalAuthorizedKey(sp))
}

// parseCert parses a signed_key and checks its signature against ca.

func parseCert(t *testing.T, signed string, ca ssh.PublicKey) *ssh.Certificate {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(signed))
	if err != nil {
		t.Fatalf("signed_key does not parse: %v", err)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok {
		t.Fatalf("signed_key is a %T, not a certificate", k)
	}
	if string(cert.SignatureKey.Marshal()) != string(ca.Marshal()) {
		t.Fatal("certificate is not signed by the mount's CA")
	}
	// CheckCert verifies the signature (and validity against its clock).
	checker := &ssh.CertChecker{Clock: func() time.Time { return time.Unix(int64(cert.ValidAfter)+1, 0) },
		SupportedCriticalOptions: []string{"source-address", "force-command"}}
	principal := ""
	if len(cert.ValidPrincipals) > 0 {
		principal = cert.ValidPrincipals[0]
	}
	if err := checker.CheckCert(principal, cert); err != nil {
		t.Fatalf("certificate does not verify: %v", err)
	}
	return cert
}

func TestConformance(t *testing.T) {
	enginetest.RunConformance(t, New, testMount, enginetest.WithPersistence(func(tb testing.TB, c *enginetest.Client) {
		c.MustCall(tb, core.OpUpdate, "config/ca", map[string]any{"key_type": "ed25519"})
		c.MustCall(tb, core.OpUpdate, "roles/ops", map[string]any{"key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice"})
	}, enginetest.Probe{Op: core.OpRead, Path: "config/ca"}, enginetest.Probe{Op: core.OpRead, Path: "roles/ops"},
		enginetest.Probe{Op: core.OpRead, Path: "public_key"}, enginetest.Probe{Op: core.OpList, Path: "roles"}))
}
