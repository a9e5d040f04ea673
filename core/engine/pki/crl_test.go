package pki

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

// crlOf parses the mount's current DER CRL and checks its signature.
func crlOf(t testing.TB, c *enginetest.Client) *x509.RevocationList {
	t.Helper()
	raw := must(t)(c.Read("crl", nil)).Raw
	if raw.ContentType != ctDERCRL {
		t.Fatalf("crl content type %q", raw.ContentType)
	}
	crl, err := x509.ParseRevocationList(raw.Body)
	if err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	ca := parseCert(t, strings.TrimSpace(string(must(t)(c.Read("ca/pem", nil)).Raw.Body)))
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

func crlSerials(crl *x509.RevocationList) []string {
	var out []string
	for _, e := range crl.RevokedCertificateEntries {
		out = append(out, formatSerial(e.SerialNumber))
	}
	return out
}

func TestRevokeAndCRL(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, nil)
	crl := crlOf(t, c)
	if len(crl.RevokedCertificateEntries) != 0 || crl.Number.Int64() != 1 {
		t.Fatalf("fresh CRL: %d entries, number %v", len(crl.RevokedCertificateEntries), crl.Number)
	}
	if got := crl.NextUpdate.Sub(crl.ThisUpdate); got != defaultCRLExpiry {
		t.Errorf("CRL validity %v", got)
	}
	a := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data
	b := must(t)(c.Write("issue/web", map[string]any{"common_name": "b.example.com"})).Data
	serialA := str(t, a, "serial_number")

	c.Clock.Advance(time.Minute)
	d := must(t)(c.Write("revoke", map[string]any{"serial_number": serialA})).Data
	revokedAt := c.Clock.Now()
	if d["revocation_time"] != revokedAt.Unix() || d["state"] != "revoked" || d["revocation_time_rfc3339"] != revokedAt.UTC().Format(time.RFC3339Nano) {
		t.Errorf("revoke response %v", d)
	}
	crl = crlOf(t, c)
	if !reflect.DeepEqual(crlSerials(crl), []string{serialA}) || !crl.RevokedCertificateEntries[0].RevocationTime.Equal(revokedAt.Truncate(time.Second)) {
		t.Errorf("CRL entries %v", crl.RevokedCertificateEntries)
	}
	// Revoking again is idempotent and reports the first revocation.
	c.Clock.Advance(time.Minute)
	again := must(t)(c.Write("revoke", map[string]any{"serial_number": strings.ToUpper(strings.ReplaceAll(serialA, ":", "-"))})).Data
	if again["revocation_time"] != revokedAt.Unix() {
		t.Errorf("second revoke %v", again)
	}
	// Revoke by certificate.
	must(t)(c.Write("revoke", map[string]any{"certificate": str(t, b, "certificate")}))
	crl = crlOf(t, c)
	if got := crlSerials(crl); len(got) != 2 {
		t.Errorf("CRL entries %v", got)
	}
	cert := must(t)(c.Read("cert/"+serialA, nil)).Data
	if cert["revocation_time"] != revokedAt.Unix() {
		t.Errorf("cert/:serial revocation_time %v", cert["revocation_time"])
	}
	if keys := must(t)(c.List("certs/revoked/")).Data["keys"].([]string); len(keys) != 2 || !contains(keys, serialA) {
		t.Errorf("certs/revoked %v", keys)
	}
	// The PEM forms carry the same CRL.
	pemCRL := must(t)(c.Read("crl/pem", nil)).Raw.Body
	block, _ := pem.Decode(pemCRL)
	if block == nil || block.Type != "X509 CRL" || string(block.Bytes) != string(must(t)(c.Read("crl", nil)).Raw.Body) {
		t.Error("crl/pem differs from crl")
	}
	if got := str(t, must(t)(c.Read("cert/crl", nil)).Data, "certificate"); got != strings.TrimSpace(string(pemCRL)) {
		t.Error("cert/crl differs from crl/pem")
	}
}

func TestRevokeBadInput(t *testing.T) {
	c := newPKI(t)
	root := genRoot(t, c, nil)
	for _, tc := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{}, "The serial number or certificate to revoke must be provided."},
		{map[string]any{"serial_number": "01", "certificate": "x"}, "not both"},
		{map[string]any{"serial_number": "zz"}, `invalid serial number "zz"`},
		{map[string]any{"serial_number": "01:02:03"}, "certificate with serial 01:02:03 not found."},
		{map[string]any{"serial_number": root["serial_number"]}, "to its own CRL is not allowed"},
		{map[string]any{"certificate": "nope"}, "certificate could not be parsed"},
	} {
		_, err := c.Write("revoke", tc.body)
		wantErr(t, err, core.CodeInvalid, tc.msg)
	}
	// A certificate from another CA is refused.
	other := newPKIAt(t, "other/")
	genRoot(t, other, nil)
	webRole(t, other, nil)
	foreign := str(t, must(t)(other.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data, "certificate")
	_, err := c.Write("revoke", map[string]any{"certificate": foreign})
	wantErr(t, err, core.CodeInvalid, "was not issued by this mount")
}

func TestRevokeNoStoreByCertificate(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, map[string]any{"no_store": true})
	leaf := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data
	_, err := c.Write("revoke", map[string]any{"serial_number": leaf["serial_number"]})
	wantErr(t, err, core.CodeInvalid, "not found")
	must(t)(c.Write("revoke", map[string]any{"certificate": leaf["certificate"]}))
	if got := crlSerials(crlOf(t, c)); !reflect.DeepEqual(got, []string{str(t, leaf, "serial_number")}) {
		t.Errorf("CRL %v", got)
	}
}

func TestRevokeExpired(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, nil)
	leaf := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "1h"})).Data
	c.Clock.Advance(time.Hour)
	resp := must(t)(c.Write("revoke", map[string]any{"serial_number": leaf["serial_number"]}))
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "already expired; refusing to add to CRL") {
		t.Errorf("warnings %q", resp.Warnings)
	}
	if got := crlSerials(crlOf(t, c)); len(got) != 0 {
		t.Errorf("expired certificate added to the CRL: %v", got)
	}
}

func TestRevokeSecret(t *testing.T) {
	ctx := context.Background()
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, map[string]any{"generate_lease": true})
	resp := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "2h"}))
	b := c.Engine.(*Backend)
	// The lease manager hands the secret back after a JSON round trip.
	internal, _ := enginetest.JSONRoundTrip(resp.Secret.InternalData)
	secret := &core.Secret{InternalData: internal}
	for i := range 2 { // idempotent
		if err := b.RevokeSecret(ctx, nil, secret); err != nil {
			t.Fatalf("RevokeSecret #%d: %v", i+1, err)
		}
	}
	if got := crlSerials(crlOf(t, c)); !reflect.DeepEqual(got, []string{str(t, resp.Data, "serial_number")}) {
		t.Errorf("CRL %v", got)
	}
	// Unknown serials (a tidied certificate) succeed; a secret without a serial does not.
	if err := b.RevokeSecret(ctx, nil, &core.Secret{InternalData: map[string]any{"serial_number": "0a:0b"}}); err != nil {
		t.Errorf("unknown serial: %v", err)
	}
	if err := b.RevokeSecret(ctx, nil, &core.Secret{}); err == nil {
		t.Error("a secret without a serial was accepted")
	}
}

func TestCRLRotateAndConfig(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, nil)
	leaf := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data
	must(t)(c.Write("revoke", map[string]any{"serial_number": leaf["serial_number"]}))
	n := crlOf(t, c).Number.Int64()
	// Rotating at the same instant republishes nothing; later it does.
	must(t)(c.Read("crl/rotate", nil))
	if got := crlOf(t, c).Number.Int64(); got != n {
		t.Errorf("rotate at the same instant: number %d, want %d", got, n)
	}
	c.Clock.Advance(time.Second)
	if d := must(t)(c.Read("crl/rotate", nil)).Data; d["success"] != true {
		t.Errorf("rotate: %v", d)
	}
	if got := crlOf(t, c).Number.Int64(); got != n+1 {
		t.Errorf("rotate: number %d, want %d", got, n+1)
	}
	// config/crl: expiry and disable.
	d := must(t)(c.Write("config/crl", map[string]any{"expiry": "24h", "disable": true})).Data
	if d["expiry"] != "24h0m0s" || d["disable"] != true {
		t.Errorf("config/crl %v", d)
	}
	crl := crlOf(t, c)
	if len(crl.RevokedCertificateEntries) != 0 || crl.NextUpdate.Sub(crl.ThisUpdate) != 24*time.Hour {
		t.Errorf("disabled CRL: %d entries, validity %v", len(crl.RevokedCertificateEntries), crl.NextUpdate.Sub(crl.ThisUpdate))
	}
	_, err := c.Write("config/crl", map[string]any{"expiry": "soon"})
	wantErr(t, err, core.CodeInvalid, "given expiry could not be decoded")
	must(t)(c.Write("config/crl", map[string]any{"disable": false}))
	if got := crlSerials(crlOf(t, c)); len(got) != 1 {
		t.Errorf("re-enabled CRL %v", got)
	}
}

func TestPeriodicRefreshesCRL(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	first := crlOf(t, c)
	c.Clock.Advance(defaultCRLExpiry / 4)
	if err := c.RunScheduled(t, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := crlOf(t, c).Number; got.Cmp(first.Number) != 0 {
		t.Errorf("refreshed a fresh CRL: %v", got)
	}
	c.Clock.Advance(defaultCRLExpiry/4 + time.Second)
	if err := c.RunScheduled(t, context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := crlOf(t, c); got.Number.Int64() != first.Number.Int64()+1 || !got.NextUpdate.After(first.NextUpdate) {
		t.Errorf("stale CRL not refreshed: number %v next %v", got.Number, got.NextUpdate)
	}
}

func TestCRLBeforeAnyCA(t *testing.T) {
	c := newPKI(t)
	for _, p := range []string{"crl", "crl/pem", "ca", "ca/pem", "ca_chain", "cert/ca", "cert/crl"} {
		_, err := c.Read(p, nil)
		wantErr(t, err, core.CodeInvalid, "no default issuer currently configured")
	}
	if _, err := c.Read("cert/01:02", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("unknown serial: %v", err)
	}
	if _, err := c.List("certs/"); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("empty certs list: %v", err)
	}
}
