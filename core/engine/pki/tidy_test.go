package pki

import (
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

func TestTidy(t *testing.T) {
	c := newPKI(t)
	root := genRoot(t, c, nil)
	webRole(t, c, nil)
	short := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "1h"})).Data
	revokedShort := must(t)(c.Write("issue/web", map[string]any{"common_name": "b.example.com", "ttl": "1h"})).Data
	long := must(t)(c.Write("issue/web", map[string]any{"common_name": "c.example.com", "ttl": "500h"})).Data
	must(t)(c.Write("revoke", map[string]any{"serial_number": revokedShort["serial_number"]}))

	if s := must(t)(c.Read("tidy-status", nil)).Data; s["state"] != "Inactive" {
		t.Errorf("tidy-status before any run: %v", s)
	}
	// Expired, but still inside the safety buffer: nothing goes.
	c.Clock.Advance(2 * time.Hour)
	resp := must(t)(c.Write("tidy", map[string]any{"tidy_cert_store": true, "tidy_revoked_certs": true, "safety_buffer": "2h"}))
	if resp.StatusCode != 202 || len(resp.Warnings) != 1 {
		t.Errorf("tidy answer: status %d warnings %q", resp.StatusCode, resp.Warnings)
	}
	if s := must(t)(c.Read("tidy-status", nil)).Data; s["cert_store_deleted_count"] != 0 || s["state"] != "Finished" {
		t.Errorf("inside the buffer: %v", s)
	}
	// Past the buffer: the expired certificates and the revocation go.
	c.Clock.Advance(2 * time.Hour)
	must(t)(c.Write("tidy", map[string]any{"tidy_cert_store": true, "tidy_revoked_certs": true, "safety_buffer": "2h"}))
	s := must(t)(c.Read("tidy-status", nil)).Data
	if s["cert_store_deleted_count"] != 2 || s["revoked_cert_deleted_count"] != 1 || s["safety_buffer"] != int64(7200) {
		t.Errorf("tidy-status %v", s)
	}
	keys := must(t)(c.List("certs/")).Data["keys"].([]string)
	if len(keys) != 2 || !contains(keys, str(t, long, "serial_number")) || !contains(keys, str(t, root, "serial_number")) {
		t.Errorf("certs after tidy %v", keys)
	}
	for _, gone := range []map[string]any{short, revokedShort} {
		if _, err := c.Read("cert/"+str(t, gone, "serial_number"), nil); core.CodeOf(err) != core.CodeNotFound {
			t.Errorf("tidied certificate still readable: %v", err)
		}
	}
	if _, err := c.List("certs/revoked/"); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("revoked list after tidy: %v", err)
	}
	if got := crlSerials(crlOf(t, c)); len(got) != 0 {
		t.Errorf("CRL after tidy %v", got)
	}
}

func TestTidyOnlyCertStoreKeepsRevocations(t *testing.T) {
	c := newPKI(t)
	genRoot(t, c, nil)
	webRole(t, c, nil)
	leaf := must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com", "ttl": "1h"})).Data
	must(t)(c.Write("revoke", map[string]any{"serial_number": leaf["serial_number"]}))
	c.Clock.Advance(100 * time.Hour)
	must(t)(c.Write("tidy", map[string]any{"tidy_cert_store": true}))
	// The revocation record keeps the certificate readable and on the CRL.
	if d := must(t)(c.Read("cert/"+str(t, leaf, "serial_number"), nil)).Data; d["revocation_time"] == int64(0) {
		t.Errorf("cert after tidy_cert_store: %v", d)
	}
}

func TestTidyBadInput(t *testing.T) {
	c := newPKI(t)
	_, err := c.Write("tidy", map[string]any{})
	wantErr(t, err, core.CodeInvalid, "no tidy operation was requested")
	_, err = c.Write("tidy", map[string]any{"tidy_cert_store": true, "safety_buffer": 0})
	wantErr(t, err, core.CodeInvalid, "safety_buffer must be greater than zero")
}
