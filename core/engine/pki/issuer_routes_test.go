package pki

import (
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestIssuers(t *testing.T) {
	c := newPKI(t)
	if _, err := c.List("issuers/"); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("empty issuers: %v", err)
	}
	first := genRoot(t, c, map[string]any{"issuer_name": "first"})
	second := genRoot(t, c, map[string]any{"issuer_name": "second", "common_name": "Second Root"})
	_, err := c.Write("root/generate/internal", map[string]any{"common_name": "x", "issuer_name": "first"})
	wantErr(t, err, core.CodeInvalid, `issuer name "first" is already in use`)

	l := must(t)(c.List("issuers/")).Data
	if len(l["keys"].([]string)) != 2 {
		t.Fatalf("issuers %v", l)
	}
	info := l["key_info"].(map[string]any)[str(t, first, "issuer_id")].(map[string]any)
	if info["is_default"] != true || info["issuer_name"] != "first" {
		t.Errorf("first issuer info %v", info)
	}
	// The first root stays the default; config/issuers switches it.
	if got := must(t)(c.Read("config/issuers", nil)).Data["default"]; got != first["issuer_id"] {
		t.Errorf("default %v", got)
	}
	must(t)(c.Write("config/issuers", map[string]any{"default": "second"}))
	if got := str(t, must(t)(c.Read("cert/ca", nil)).Data, "certificate"); got != second["certificate"] {
		t.Error("cert/ca does not follow the default issuer")
	}
	webRole(t, c, nil)
	leaf := parseCert(t, str(t, must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data, "certificate"))
	if leaf.Issuer.CommonName != "Second Root" {
		t.Errorf("issued by %v", leaf.Issuer)
	}
	// A role can pin an issuer by name.
	webRole(t, c, map[string]any{"issuer_ref": "first"})
	leaf = parseCert(t, str(t, must(t)(c.Write("issue/web", map[string]any{"common_name": "a.example.com"})).Data, "certificate"))
	if leaf.Issuer.CommonName != "Vigil Test Root" {
		t.Errorf("pinned issuer: issued by %v", leaf.Issuer)
	}
	d := must(t)(c.Read("issuer/first", nil)).Data
	if d["issuer_id"] != first["issuer_id"] || d["certificate"] != first["certificate"] || d["leaf_not_after_behavior"] != "err" {
		t.Errorf("issuer/first %v", d)
	}
	must(t)(c.Write("issuer/first", map[string]any{"issuer_name": "renamed"}))
	if _, err := c.Read("issuer/first", nil); err == nil {
		t.Error("old name still resolves")
	}
	if pem := string(must(t)(c.Read("issuer/renamed/pem", nil)).Raw.Body); pem != str(t, first, "certificate")+"\n" {
		t.Errorf("issuer/renamed/pem = %q", pem)
	}
	_, err = c.Read("issuer/nope", nil)
	wantErr(t, err, core.CodeInvalid, "unable to find PKI issuer for reference: nope")
	_, err = c.Write("config/issuers", map[string]any{"default": "nope"})
	wantErr(t, err, core.CodeInvalid, "unable to find PKI issuer")

	// Deleting the default issuer leaves no default; DELETE root clears all.
	resp := must(t)(c.Delete("issuer/second", nil))
	if resp == nil || len(resp.Warnings) != 1 {
		t.Errorf("delete default issuer: %+v", resp)
	}
	_, err = c.Read("ca/pem", nil)
	wantErr(t, err, core.CodeInvalid, "no default issuer currently configured")
	must(t)(c.Delete("root", nil))
	if _, err := c.List("issuers/"); core.CodeOf(err) != core.CodeNotFound {
		t.Errorf("issuers after DELETE root: %v", err)
	}
	if keys, _ := c.Storage.List(t.Context(), c.View.Prefix()+keysPrefix); len(keys) != 0 {
		t.Errorf("keys after DELETE root: %v", keys)
	}
}
