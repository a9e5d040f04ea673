package pki_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ocsp"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/engine/enginetest"
	"github.com/vigilsec/vigil/core/engine/pki"
	"github.com/vigilsec/vigil/core/lease"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// startServer starts a dev server with the pki engine registered, and
// returns it with its lease subsystem.
func startServer(t testing.TB, now func() time.Time) (*servertest.Server, *lease.Subsystem) {
	t.Helper()
	var leases *lease.Subsystem
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.Options(cfg)
		if err != nil {
			return o, err
		}
		o.Engines["pki"] = pki.New
		for _, s := range o.Subsystems {
			if l, ok := s.Subsystem.(*lease.Subsystem); ok {
				leases = l
			}
		}
		return o, nil
	}
	srv := servertest.MustStart(t, build, servertest.Options{Dev: true, Now: now})
	return srv, leases
}

// mountPKI enables a pki mount at path with a max lease TTL.
func mountPKI(t testing.TB, c *vaultapi.Client, path, maxTTL string) {
	t.Helper()
	if err := c.Sys().Mount(path, &vaultapi.MountInput{Type: "pki", Config: vaultapi.MountConfigInput{MaxLeaseTTL: maxTTL}}); err != nil {
		t.Fatalf("mount %s: %v", path, err)
	}
}

func write(t testing.TB, c *vaultapi.Client, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func dataStr(t testing.TB, s *vaultapi.Secret, k string) string {
	t.Helper()
	if s == nil || s.Data == nil {
		t.Fatalf("no data for %q", k)
	}
	v, ok := s.Data[k].(string)
	if !ok {
		t.Fatalf("data[%q] = %#v", k, s.Data[k])
	}
	return v
}

// want400 checks a vault/api error is a 400 whose message contains msg.
func want400(t testing.TB, err error, msg string) {
	t.Helper()
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a 400 response error containing %q", err, msg)
	}
	if re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, "; "), msg) {
		t.Fatalf("got %d %q, want 400 containing %q", re.StatusCode, re.Errors, msg)
	}
}

// get fetches an unauthenticated URL and returns status, content type, body.
func get(t testing.TB, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// openssl runs the real openssl binary and returns its combined output.
func openssl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := testsvc.Tool(t, "openssl")
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func parsePEMCert(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM in %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// opensslHex is a serial as openssl prints it: upper-case hex, no colons,
// no leading zeros.
func opensslHex(n *big.Int) string { return strings.ToUpper(hex.EncodeToString(n.Bytes())) }

// buildHierarchy sets up pki/ (root) and pki_int/ (intermediate, signed by
// the root through the API) and a role "web" on the intermediate.
func buildHierarchy(t testing.TB, c *vaultapi.Client) (rootPEM, intPEM string) {
	t.Helper()
	mountPKI(t, c, "pki", "87600h")
	mountPKI(t, c, "pki_int", "43800h")
	rootPEM = dataStr(t, write(t, c, "pki/root/generate/internal", map[string]any{
		"common_name": "Vigil Root CA", "ttl": "87600h", "key_type": "ec", "key_bits": 384}), "certificate")
	csr := dataStr(t, write(t, c, "pki_int/intermediate/generate/internal", map[string]any{
		"common_name": "Vigil Intermediate CA", "key_type": "ec"}), "csr")
	signed := write(t, c, "pki/root/sign-intermediate", map[string]any{
		"csr": csr, "common_name": "Vigil Intermediate CA", "ttl": "43800h", "format": "pem_bundle"})
	write(t, c, "pki_int/intermediate/set-signed", map[string]any{"certificate": dataStr(t, signed, "certificate")})
	intPEM = strings.SplitAfter(dataStr(t, signed, "certificate"), "-----END CERTIFICATE-----")[0]
	return rootPEM, intPEM
}

// TestPKIOverHTTP drives the engine with the vault/api client on a real
// server: root → intermediate → role → leaves of three key types, each
// verified by Go and by openssl; revocation seen in the CRL (Go and
// openssl) and by OCSP (GET form, checked with Go and openssl).
func TestPKIOverHTTP(t *testing.T) {
	srv, _ := startServer(t, nil)
	c := srv.Client
	dir := t.TempDir()
	rootPEM, intPEM := buildHierarchy(t, c)
	rootFile := writeFile(t, dir, "root.pem", []byte(rootPEM+"\n"))
	intFile := writeFile(t, dir, "intermediate.pem", []byte(intPEM+"\n"))
	write(t, c, "pki_int/config/urls", map[string]any{"ocsp_servers": srv.URL + "/v1/pki_int/ocsp",
		"crl_distribution_points": srv.URL + "/v1/pki_int/crl", "issuing_certificates": srv.URL + "/v1/pki_int/ca"})

	// Public endpoints answer without a token.
	status, ctype, body := get(t, srv.URL+"/v1/pki_int/ca/pem")
	if status != 200 || strings.TrimSpace(string(body)) != strings.TrimSpace(intPEM) || ctype != "application/x-pem-file" {
		t.Fatalf("ca/pem: %d %q %q", status, ctype, body)
	}
	if status, _, body = get(t, srv.URL+"/v1/pki_int/ca_chain"); status != 200 || !strings.Contains(string(body), strings.TrimSpace(rootPEM)) {
		t.Fatalf("ca_chain: %d %q", status, body)
	}

	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(parsePEMCert(t, rootPEM))
	inters.AddCert(parsePEMCert(t, intPEM))
	leaves := map[string]*x509.Certificate{}
	for _, kt := range []struct {
		typ  string
		bits int
	}{{"ec", 256}, {"rsa", 2048}, {"ed25519", 0}} {
		write(t, c, "pki_int/roles/web-"+kt.typ, map[string]any{"allowed_domains": "example.com", "allow_subdomains": true,
			"key_type": kt.typ, "key_bits": kt.bits, "max_ttl": "72h"})
		s := write(t, c, "pki_int/issue/web-"+kt.typ, map[string]any{"common_name": kt.typ + ".example.com", "ttl": "24h"})
		leafPEM := dataStr(t, s, "certificate")
		leaf := parsePEMCert(t, leafPEM)
		leaves[kt.typ] = leaf
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: kt.typ + ".example.com"}); err != nil {
			t.Errorf("%s leaf: Go verify: %v", kt.typ, err)
		}
		leafFile := writeFile(t, dir, kt.typ+".pem", []byte(leafPEM+"\n"))
		out, err := openssl(t, "verify", "-CAfile", rootFile, "-untrusted", intFile, leafFile)
		if err != nil || !strings.Contains(out, ": OK") {
			t.Errorf("%s leaf: openssl verify: %v\n%s", kt.typ, err, out)
		}
		if key := dataStr(t, s, "private_key"); !strings.Contains(key, "PRIVATE KEY") || s.Data["private_key_type"] != kt.typ {
			t.Errorf("%s leaf: private key type %v", kt.typ, s.Data["private_key_type"])
		}
		if chain, _ := s.Data["ca_chain"].([]any); len(chain) != 2 {
			t.Errorf("%s leaf: ca_chain has %d entries", kt.typ, len(chain))
		}
	}

	revoked, good := leaves["ec"], leaves["rsa"]
	rs := write(t, c, "pki_int/revoke", map[string]any{"serial_number": formatColon(revoked.SerialNumber)})
	if rs.Data["state"] != "revoked" {
		t.Errorf("revoke: %v", rs.Data)
	}
	list, err := c.Logical().List("pki_int/certs/revoked")
	if err != nil || list == nil || len(list.Data["keys"].([]any)) != 1 {
		t.Errorf("certs/revoked: %v %v", list, err)
	}

	// The CRL (DER, unauthenticated) lists the revoked serial only.
	status, ctype, crlDER := get(t, srv.URL+"/v1/pki_int/crl")
	if status != 200 || ctype != "application/pkix-crl" {
		t.Fatalf("crl: %d %q", status, ctype)
	}
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(parsePEMCert(t, intPEM)); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(revoked.SerialNumber) != 0 {
		t.Errorf("CRL entries %v", crl.RevokedCertificateEntries)
	}
	crlFile := writeFile(t, dir, "crl.der", crlDER)
	out, err := openssl(t, "crl", "-inform", "DER", "-in", crlFile, "-text", "-noout")
	if err != nil || !strings.Contains(out, "Serial Number: "+opensslHex(revoked.SerialNumber)) || strings.Contains(out, opensslHex(good.SerialNumber)) {
		t.Errorf("openssl crl: %v\n%s", err, out)
	}
	// openssl verify with CRL checking: revoked fails, the other passes.
	_, _, crlPEM := get(t, srv.URL+"/v1/pki_int/crl/pem")
	crlPEMFile := writeFile(t, dir, "crl.pem", crlPEM)
	out, err = openssl(t, "verify", "-crl_check", "-CRLfile", crlPEMFile, "-CAfile", rootFile, "-untrusted", intFile, filepath.Join(dir, "ec.pem"))
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify -crl_check of the revoked leaf: %v\n%s", err, out)
	}
	out, err = openssl(t, "verify", "-crl_check", "-CRLfile", crlPEMFile, "-CAfile", rootFile, "-untrusted", intFile, filepath.Join(dir, "rsa.pem"))
	if err != nil || !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify -crl_check of the good leaf: %v\n%s", err, out)
	}

	// OCSP, GET form: revoked and good, signed by the intermediate.
	issuer := parsePEMCert(t, intPEM)
	for _, tc := range []struct {
		cert *x509.Certificate
		want int
		name string
	}{{revoked, ocsp.Revoked, "ec"}, {good, ocsp.Good, "rsa"}} {
		reqDER, err := ocsp.CreateRequest(tc.cert, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
		if err != nil {
			t.Fatal(err)
		}
		status, ctype, respDER := get(t, srv.URL+"/v1/pki_int/"+ocspGetPath(reqDER))
		if status != 200 || ctype != "application/ocsp-response" {
			t.Fatalf("ocsp GET: %d %q %x", status, ctype, respDER)
		}
		resp, err := ocsp.ParseResponseForCert(respDER, tc.cert, issuer)
		if err != nil || resp.Status != tc.want {
			t.Errorf("%s: OCSP status %v (%v), want %d", tc.name, resp, err, tc.want)
		}
		// openssl checks the same response: signature and status.
		respFile := writeFile(t, dir, tc.name+".ocspresp", respDER)
		chainFile := writeFile(t, dir, "chain.pem", []byte(intPEM+"\n"+rootPEM+"\n"))
		out, err := openssl(t, "ocsp", "-respin", respFile, "-issuer", intFile, "-cert", filepath.Join(dir, tc.name+".pem"),
			"-CAfile", chainFile, "-no_nonce")
		wantWord := map[int]string{ocsp.Revoked: ": revoked", ocsp.Good: ": good"}[tc.want]
		if err != nil || !strings.Contains(out, "Response verify OK") || !strings.Contains(out, wantWord) {
			t.Errorf("%s: openssl ocsp: %v\n%s", tc.name, err, out)
		}
	}

	// cert/:serial (unauthenticated) shows the revocation.
	cs, err := c.Logical().Read("pki_int/cert/" + formatColon(revoked.SerialNumber))
	if err != nil || cs.Data["revocation_time"] == nil || cs.Data["revocation_time"].(interface{ String() string }).String() == "0" {
		t.Errorf("cert/:serial %v %v", cs, err)
	}
}

// TestOCSPPostOverHTTP is the POST form with the DER body, as openssl ocsp
// and browsers send it. It needs the HTTP layer to pass the body raw for
// paths ending in "/ocsp"; until then it is skipped with the reason.
func TestOCSPPostOverHTTP(t *testing.T) {
	srv, _ := startServer(t, nil)
	_, intPEM := buildHierarchy(t, srv.Client)
	issuer := parsePEMCert(t, intPEM)
	reqDER, err := ocsp.CreateRequest(issuer, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/v1/pki_int/ocsp", "application/ocsp-request", bytes.NewReader(reqDER))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("OCSP POST: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if _, err := ocsp.ParseResponse(body, issuer); err != nil {
		t.Fatalf("OCSP POST response: %v", err)
	}
}

// TestPKIBadInputOverHTTP checks that bad requests are clear 400s.
func TestPKIBadInputOverHTTP(t *testing.T) {
	srv, _ := startServer(t, nil)
	c := srv.Client
	mountPKI(t, c, "pki", "8760h")
	mountPKI(t, c, "pki_int", "8760h")
	write(t, c, "pki/roles/web", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec", "max_ttl": "24h"})

	_, err := c.Logical().Write("pki/issue/web", map[string]any{"common_name": "a.example.com"})
	want400(t, err, "no default issuer currently configured")
	write(t, c, "pki/root/generate/internal", map[string]any{"common_name": "Root", "key_type": "ec", "ttl": "8760h"})

	_, err = c.Logical().Write("pki/issue/web", map[string]any{"common_name": "www.evil.com"})
	want400(t, err, "common name www.evil.com not allowed by this role")
	// A ttl above the role's max_ttl is capped with a warning, as in Vault.
	capped := write(t, c, "pki/issue/web", map[string]any{"common_name": "a.example.com", "ttl": "48h"})
	if exp, _ := capped.Data["expiration"].(json.Number).Int64(); time.Until(time.Unix(exp, 0)) > 24*time.Hour+time.Minute {
		t.Errorf("ttl above max_ttl not capped: expiration %v", capped.Data["expiration"])
	}
	if len(capped.Warnings) != 1 || !strings.Contains(capped.Warnings[0], "maxTTL") {
		t.Errorf("capped ttl warning: %v", capped.Warnings)
	}
	_, err = c.Logical().Write("pki/issue/nope", map[string]any{"common_name": "a.example.com"})
	want400(t, err, "unknown role: nope")
	_, err = c.Logical().Write("pki/sign/web", map[string]any{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"})
	want400(t, err, "certificate request could not be parsed")
	_, err = c.Logical().Write("pki/root/sign-intermediate", map[string]any{"csr": "not a csr", "common_name": "I"})
	want400(t, err, "certificate request could not be parsed")

	// set-signed with a CA certificate whose key this mount never generated.
	write(t, c, "pki_int/intermediate/generate/internal", map[string]any{"common_name": "I", "key_type": "ec"})
	mountPKI(t, c, "other", "8760h")
	otherCSR := dataStr(t, write(t, c, "other/intermediate/generate/internal", map[string]any{"common_name": "O", "key_type": "ec"}), "csr")
	signed := dataStr(t, write(t, c, "pki/root/sign-intermediate", map[string]any{"csr": otherCSR, "common_name": "O", "ttl": "24h"}), "certificate")
	_, err = c.Logical().Write("pki_int/intermediate/set-signed", map[string]any{"certificate": signed})
	want400(t, err, "does not match any key generated on this mount")
}

// TestLeaseExpiryAndTidyOverHTTP checks the lease of a leased certificate:
// revoking the lease revokes the certificate (CRL), the lease of another
// expires at NotAfter through the lease manager, and tidy then removes the
// expired certificates.
func TestLeaseExpiryAndTidyOverHTTP(t *testing.T) {
	clock := enginetest.NewClock(time.Now())
	srv, leases := startServer(t, clock.Now)
	c := srv.Client
	mountPKI(t, c, "pki", "8760h")
	write(t, c, "pki/root/generate/internal", map[string]any{"common_name": "Root", "key_type": "ec", "ttl": "8760h"})
	write(t, c, "pki/roles/leased", map[string]any{"allowed_domains": "example.com", "allow_subdomains": true,
		"key_type": "ec", "generate_lease": true})

	a := write(t, c, "pki/issue/leased", map[string]any{"common_name": "a.example.com", "ttl": "2m"})
	b := write(t, c, "pki/issue/leased", map[string]any{"common_name": "b.example.com", "ttl": "2m"})
	if a.LeaseID == "" || !strings.HasPrefix(a.LeaseID, "pki/issue/leased/") || a.LeaseDuration != 120 || a.Renewable {
		t.Fatalf("lease %q duration %d renewable %v", a.LeaseID, a.LeaseDuration, a.Renewable)
	}
	// Revoking a lease revokes its certificate.
	if err := c.Sys().Revoke(b.LeaseID); err != nil {
		t.Fatal(err)
	}
	_, _, crlDER := get(t, srv.URL+"/v1/pki/crl")
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || formatColon(crl.RevokedCertificateEntries[0].SerialNumber) != dataStr(t, b, "serial_number") {
		t.Errorf("CRL after lease revocation: %v", crl.RevokedCertificateEntries)
	}

	// The other lease expires at NotAfter: the manager revokes it (the
	// certificate has expired, so it is not added to the CRL, as in Vault).
	if _, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": a.LeaseID}); err != nil {
		t.Fatalf("lookup before expiry: %v", err)
	}
	clock.Advance(3 * time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		leases.M.RunDue(context.Background())
		_, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": a.LeaseID})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease did not expire")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if leases.M.Count() != 0 {
		t.Errorf("%d leases still scheduled", leases.M.Count())
	}
	_, _, crlDER = get(t, srv.URL+"/v1/pki/crl")
	if crl, err = x509.ParseRevocationList(crlDER); err != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Errorf("CRL after expiry: %v %v", crl, err)
	}

	// Tidy removes both expired certificates (and the revocation).
	ts, err := c.Logical().Write("pki/tidy", map[string]any{"tidy_cert_store": true, "tidy_revoked_certs": true, "safety_buffer": "1m"})
	if err != nil || len(ts.Warnings) == 0 {
		t.Fatalf("tidy: %v %v", ts, err)
	}
	st, err := c.Logical().Read("pki/tidy-status")
	if err != nil || st.Data["cert_store_deleted_count"].(interface{ String() string }).String() != "2" {
		t.Errorf("tidy-status %v %v", st, err)
	}
	list, err := c.Logical().List("pki/certs")
	if err != nil || list == nil || len(list.Data["keys"].([]any)) != 1 {
		t.Errorf("certs after tidy (only the root should remain): %v %v", list, err)
	}
}

// formatColon is Vault's serial form.
func formatColon(n *big.Int) string {
	b := n.Bytes()
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = strings.ToLower(strings.TrimPrefix(big.NewInt(int64(x)+0x100).Text(16), "1"))
	}
	return strings.Join(parts, ":")
}

// ocspGetPath is the GET form's path: standard base64, or URL-safe when
// the standard alphabet would put "//" in the path.
func ocspGetPath(der []byte) string {
	s := base64.StdEncoding.EncodeToString(der)
	if strings.Contains(s, "//") {
		s = base64.URLEncoding.EncodeToString(der)
	}
	return "ocsp/" + s
}
