package ssh_test

// Integration tests: a real in-process Vigil server driven with the vault/api
// client; its certificates are read back with OpenSSH's ssh-keygen -L and
// presented to a real sshd (.ci/services/sshd.sh) that trusts the mount's CA.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// startSSH starts a dev server with an RSA CA (signing with rsa-sha2-256,
// which OpenSSH 8.8+ requires) mounted at ssh-client-signer/.
func startSSH(t *testing.T) (*servertest.Server, string) {
	t.Helper()
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	if err := s.Client.Sys().Mount("ssh-client-signer", &vaultapi.MountInput{Type: "ssh"}); err != nil {
		t.Fatalf("mount ssh: %v", err)
	}
	sec, err := s.Client.Logical().Write("ssh-client-signer/config/ca", map[string]any{"generate_signing_key": true, "key_type": "ssh-rsa", "key_bits": 2048})
	if err != nil {
		t.Fatalf("config/ca: %v", err)
	}
	return s, sec.Data["public_key"].(string)
}

// userKeyPair returns a new Ed25519 signer and its authorized_keys line.
func userKeyPair(t *testing.T) (ssh.Signer, ed25519.PrivateKey, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, priv, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

func sign(t *testing.T, c *vaultapi.Client, role string, data map[string]any) *ssh.Certificate {
	t.Helper()
	sec, err := c.Logical().Write("ssh-client-signer/sign/"+role, data)
	if err != nil {
		t.Fatalf("sign/%s: %v", role, err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sec.Data["signed_key"].(string)))
	if err != nil {
		t.Fatalf("signed_key: %v", err)
	}
	return k.(*ssh.Certificate)
}

func TestAPIPublicKeyNeedsNoToken(t *testing.T) {
	s, caPub := startSSH(t)
	resp, err := http.Get(s.URL + "/v1/ssh-client-signer/public_key")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != caPub || !strings.HasPrefix(string(body), "ssh-rsa ") {
		t.Fatalf("public_key: %d %q", resp.StatusCode, body)
	}
	// Signing needs a token.
	anon := s.NewClient("")
	anon.ClearToken()
	if _, err := anon.Logical().Write("ssh-client-signer/sign/x", map[string]any{"public_key": caPub}); err == nil {
		t.Fatal("sign without a token succeeded")
	}
}

// TestAPISignedKeyReadsWithSSHKeygen checks the certificate with OpenSSH's
// own parser: type, signing algorithm, key id, principals, validity and
// extensions as ssh-keygen -L prints them.
func TestAPISignedKeyReadsWithSSHKeygen(t *testing.T) {
	keygen := testsvc.Tool(t, "ssh-keygen")
	s, _ := startSSH(t)
	if _, err := s.Client.Logical().Write("ssh-client-signer/roles/dev", map[string]any{
		"key_type": "ca", "allow_user_certificates": true, "allowed_users": "alice,bob", "default_user": "alice",
		"allowed_extensions": "permit-pty", "default_extensions": map[string]any{"permit-pty": ""}, "ttl": "30m",
	}); err != nil {
		t.Fatal(err)
	}
	_, _, pub := userKeyPair(t)
	sec, err := s.Client.Logical().Write("ssh-client-signer/sign/dev", map[string]any{"public_key": pub, "valid_principals": "alice,bob"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "id-cert.pub")
	if err := os.WriteFile(file, []byte(sec.Data["signed_key"].(string)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keygen, "-L", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"Type: ssh-ed25519-cert-v01@openssh.com user certificate",
		"Signing CA: RSA SHA256:", "(using rsa-sha2-256)",
		`Key ID: "vault-root-`,
		"Serial: ",
		"Principals: \n                alice\n                bob\n",
		"Critical Options: (none)",
		"Extensions: \n                permit-pty\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("ssh-keygen -L output lacks %q:\n%s", want, text)
		}
	}
}

// trustCA adds caPub to the sshd's TrustedUserCAKeys file for the test's
// duration (other tests may hold lines in the same file).
func trustCA(t *testing.T, caFile, caPub string) {
	t.Helper()
	edit := func(f func(lines []string) []string) {
		fh, err := os.OpenFile(caFile, os.O_RDWR, 0)
		if err != nil {
			t.Fatalf("sshd CA file: %v", err)
		}
		defer fh.Close()
		if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Flock(int(fh.Fd()), syscall.LOCK_UN) }()
		old, err := io.ReadAll(fh)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(old), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		lines = f(lines)
		body := strings.Join(lines, "\n")
		if body != "" {
			body += "\n"
		}
		if err := fh.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := fh.WriteAt([]byte(body), 0); err != nil {
			t.Fatal(err)
		}
	}
	line := strings.TrimSpace(caPub)
	edit(func(l []string) []string { return append(l, line) })
	t.Cleanup(func() {
		edit(func(l []string) []string {
			var out []string
			for _, x := range l {
				if x != line {
					out = append(out, x)
				}
			}
			return out
		})
	})
}

// dialSSH logs in to addr as user with the certificate and runs cmd.
func dialSSH(addr, user string, key ssh.Signer, cert *ssh.Certificate, cmd string) (string, error) {
	certSigner, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		return "", err
	}
	cfg := &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		// The test sshd's host key is generated by its start script; the
		// test checks user authentication, not the host.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec // see above
		Timeout:         30 * time.Second,
	}
	conn, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	return string(out), err
}

// TestAPISSHDAcceptsSignedKey: a real OpenSSH server that trusts the
// mount's CA lets in the holder of a certificate signed for its user, and
// nobody else.
func TestAPISSHDAcceptsSignedKey(t *testing.T) {
	addr := testsvc.Env(t, "VIGIL_TEST_SSHD_ADDR")
	user := testsvc.Env(t, "VIGIL_TEST_SSHD_USER")
	caFile := testsvc.Env(t, "VIGIL_TEST_SSHD_CA_FILE")
	if conn, err := net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
		testsvc.Missing(t, "sshd is not answering at "+addr+" (bash .ci/services/sshd.sh start)")
	} else {
		conn.Close()
	}
	s, caPub := startSSH(t)
	if _, err := s.Client.Logical().Write("ssh-client-signer/roles/login", map[string]any{
		"key_type": "ca", "allow_user_certificates": true, "allowed_users": user + ",root", "default_user": user,
		"allowed_extensions": "permit-pty", "default_extensions": map[string]any{"permit-pty": ""}, "ttl": "5m", "max_ttl": "10m",
	}); err != nil {
		t.Fatal(err)
	}
	key, priv, pub := userKeyPair(t)
	cert := sign(t, s.Client, "login", map[string]any{"public_key": pub})

	// Not trusted yet: refused.
	if _, err := dialSSH(addr, user, key, cert, "true"); err == nil {
		t.Fatal("sshd accepted a certificate from a CA it does not trust")
	}
	trustCA(t, caFile, caPub)
	out, err := dialSSH(addr, user, key, cert, "id -un")
	if err != nil {
		t.Fatalf("login with the signed key: %v (%s)", err, out)
	}
	if strings.TrimSpace(out) != user {
		t.Fatalf("logged in as %q, want %q", out, user)
	}

	// A certificate for another principal does not open this account.
	other := sign(t, s.Client, "login", map[string]any{"public_key": pub, "valid_principals": "root"})
	if _, err := dialSSH(addr, user, key, other, "true"); err == nil {
		t.Fatal("sshd accepted a certificate whose principals do not include the user")
	}
	// The certificate does not work with another key.
	otherKey, _, _ := userKeyPair(t)
	if _, err := dialSSH(addr, user, otherKey, cert, "true"); err == nil {
		t.Fatal("sshd accepted the certificate with a different private key")
	}

	// The OpenSSH client, with the private key and certificate as files.
	sshBin := testsvc.Tool(t, "ssh")
	dir := t.TempDir()
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(sshBin, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i", keyFile, "-p", port, user+"@"+host, "echo cli-ok")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(got)) != "cli-ok" {
		t.Fatalf("ssh CLI login: %v %q\n%s", err, got, stderr.String())
	}
}
