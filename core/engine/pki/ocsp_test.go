package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
	"github.com/vigilsec/vigil/core/framework"
)

// ocspGetPath is the GET form's path for a DER request: standard base64
// (RFC 6960), or the URL-safe alphabet when the standard one would put "//"
// (an empty path segment HTTP layers reject) in the path.
func ocspGetPath(der []byte) string {
	s := base64.StdEncoding.EncodeToString(der)
	if strings.Contains(s, "//") {
		s = base64.URLEncoding.EncodeToString(der)
	}
	return "ocsp/" + s
}

// ocspRequest builds a DER OCSP request for cert issued by issuer.
func ocspRequest(t testing.TB, cert, issuer *x509.Certificate, hash crypto.Hash) []byte {
	t.Helper()
	der, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ocspGet asks over the GET form and parses the signed answer.
func ocspGet(t testing.TB, c *enginetest.Client, cert, issuer *x509.Certificate) *ocsp.Response {
	t.Helper()
	raw := must(t)(c.Read(ocspGetPath(ocspRequest(t, cert, issuer, crypto.SHA1)), nil))
	if raw.Raw == nil || raw.Raw.ContentType != ctOCSP || raw.StatusCode != http.StatusOK {
		t.Fatalf("OCSP answer %+v", raw)
	}
	resp, err := ocsp.ParseResponseForCert(raw.Raw.Body, cert, issuer)
	if err != nil {
		t.Fatalf("parse OCSP response: %v", err)
	}
	return resp
}

func TestOCSP(t *testing.T) {
	c := newPKI(t)
	rootCert := parseCert(t, str(t, genRoot(t, c, nil), "certificate"))
	webRole(t, c, nil)
	a := parseCert(t, str(t, must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data, "certificate"))
	b := parseCert(t, str(t, must(t)(c.Write("issue/web", map[string]any{"common_name": "b.example.com"})).Data, "certificate"))
	c.Clock.Advance(time.Minute)
	must(t)(c.Write("revoke", map[string]any{"serial_number": formatSerial(a.SerialNumber)}))

	ra := ocspGet(t, c, a, rootCert)
	if ra.Status != ocsp.Revoked || !ra.RevokedAt.Equal(c.Clock.Now().Truncate(time.Second)) || ra.SerialNumber.Cmp(a.SerialNumber) != 0 {
		t.Errorf("revoked cert: status %d revokedAt %v", ra.Status, ra.RevokedAt)
	}
	rb := ocspGet(t, c, b, rootCert)
	if rb.Status != ocsp.Good {
		t.Errorf("good cert: status %d", rb.Status)
	}
	if rb.NextUpdate.Sub(rb.ThisUpdate) != defaultOCSPExpiry || !rb.ThisUpdate.Equal(c.Clock.Now().Truncate(time.Second)) {
		t.Errorf("validity this=%v next=%v", rb.ThisUpdate, rb.NextUpdate)
	}

	// POST form: the DER request as the raw body, with a SHA-256 CertID.
	route, caps := findRoute(t, c, "ocsp")
	req, err := c.NewRequest(core.OpUpdate, "ocsp", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.RawBody = ocspRequest(t, a, rootCert, crypto.SHA256)
	out := must(t)(enginetest.Invoke(context.Background(), route, caps, req))
	resp, err := ocsp.ParseResponseForCert(out.Raw.Body, a, rootCert)
	if err != nil || resp.Status != ocsp.Revoked {
		t.Errorf("POST: %v status %v", err, resp)
	}

	// A certificate of another CA is unknown, signed by our default issuer.
	other := newPKIAt(t, "other/")
	otherRoot := parseCert(t, str(t, genRoot(t, other, nil), "certificate"))
	webRole(t, other, nil)
	foreign := parseCert(t, str(t, must(t)(other.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data, "certificate"))
	raw := must(t)(c.Read(ocspGetPath(ocspRequest(t, foreign, otherRoot, crypto.SHA1)), nil))
	unk, err := ocsp.ParseResponse(raw.Raw.Body, rootCert)
	if err != nil || unk.Status != ocsp.Unknown {
		t.Errorf("foreign cert: %v status %v", err, unk)
	}
}

func TestOCSPErrors(t *testing.T) {
	c := newPKI(t)
	// No issuer at all: nothing can sign, the answer is unauthorized.
	other := newPKIAt(t, "other/")
	otherRoot := parseCert(t, str(t, genRoot(t, other, nil), "certificate"))
	rootless := must(t)(c.Read(ocspGetPath(ocspRequest(t, otherRoot, otherRoot, crypto.SHA1)), nil))
	if rootless.StatusCode != http.StatusUnauthorized || string(rootless.Raw.Body) != string(ocsp.UnauthorizedErrorResponse) {
		t.Errorf("no issuer: status %d", rootless.StatusCode)
	}
	rootCert := parseCert(t, str(t, genRoot(t, c, nil), "certificate"))
	for _, p := range []string{"ocsp/", "ocsp/!!!", "ocsp/" + base64.StdEncoding.EncodeToString([]byte("not der"))} {
		resp := must(t)(c.Read(p, nil))
		if resp.StatusCode != http.StatusBadRequest || string(resp.Raw.Body) != string(ocsp.MalformedRequestErrorResponse) {
			t.Errorf("%s: status %d body %x", p, resp.StatusCode, resp.Raw.Body)
		}
	}
	must(t)(c.Write("config/crl", map[string]any{"ocsp_disable": true}))
	resp := must(t)(c.Read(ocspGetPath(ocspRequest(t, rootCert, rootCert, crypto.SHA1)), nil))
	if resp.StatusCode != http.StatusUnauthorized || string(resp.Raw.Body) != string(ocsp.UnauthorizedErrorResponse) {
		t.Errorf("disabled responder: status %d", resp.StatusCode)
	}
}

// TestOCSPEd25519Issuer documents that an Ed25519 issuer cannot sign OCSP
// responses (golang.org/x/crypto/ocsp, like Vault): internalError.
func TestOCSPEd25519Issuer(t *testing.T) {
	c := newPKI(t)
	rootCert := parseCert(t, str(t, genRoot(t, c, map[string]any{"key_type": "ed25519"}), "certificate"))
	resp := must(t)(c.Read(ocspGetPath(ocspRequest(t, rootCert, rootCert, crypto.SHA1)), nil))
	if resp.StatusCode != http.StatusInternalServerError || string(resp.Raw.Body) != string(ocsp.InternalErrorErrorResponse) {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func findRoute(t testing.TB, c *enginetest.Client, path string) (*framework.Route, map[string]any) {
	t.Helper()
	routes := c.Routes()
	for i := range routes {
		if caps, ok := routes[i].Match(path); ok {
			return &routes[i], caps
		}
	}
	t.Fatalf("no route for %q", path)
	return nil, nil
}
