package totp

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

func TestGenerateKey(t *testing.T) {
	_, c := newEngine(t)
	d := must(t)(c.Write("keys/gen", map[string]any{"generate": true, "issuer": "Vigil", "account_name": "alice@example.com",
		"algorithm": "SHA256", "digits": 8, "period": 60, "key_size": 32}))
	u, err := url.Parse(d["url"].(string))
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("url %v", d["url"])
	}
	q := u.Query()
	if q.Get("issuer") != "Vigil" || q.Get("algorithm") != "SHA256" || q.Get("digits") != "8" || q.Get("period") != "60" ||
		!strings.Contains(u.Path, "alice@example.com") {
		t.Fatalf("url %s", u)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(q.Get("secret"))
	if err != nil || len(secret) != 32 {
		t.Fatalf("secret of %d bytes (%v)", len(secret), err)
	}
	png64, _ := base64.StdEncoding.DecodeString(d["barcode"].(string))
	img, err := png.Decode(bytes.NewReader(png64))
	if err != nil || img.Bounds().Dx() != 200 {
		t.Fatalf("barcode: %v %v", err, img)
	}
	r := must(t)(c.Read("keys/gen", nil))
	if r["issuer"] != "Vigil" || r["account_name"] != "alice@example.com" || r["algorithm"] != "SHA256" || r["digits"] != 8 || r["period"] != uint(60) {
		t.Fatalf("read %v", r)
	}
	if _, leaked := r["key"]; leaked {
		t.Fatal("read returns the secret")
	}
	// The url imports into another key that yields the same codes.
	must(t)(c.Write("keys/copy", map[string]any{"url": d["url"]}))
	if a, b := must(t)(c.Read("code/gen", nil))["code"], must(t)(c.Read("code/copy", nil))["code"]; a != b {
		t.Fatalf("imported url gives %v, generated key %v", b, a)
	}
	// Not exported: nothing returned; no QR code when qr_size is 0.
	if d := must(t)(c.Write("keys/quiet", map[string]any{"generate": true, "issuer": "I", "account_name": "a", "exported": false})); d != nil {
		t.Fatalf("unexported key answered %v", d)
	}
	if d := must(t)(c.Write("keys/noqr", map[string]any{"generate": true, "issuer": "I", "account_name": "a", "qr_size": 0})); d["barcode"] != nil || d["url"] == nil {
		t.Fatalf("qr_size 0 answered %v", d)
	}
	if l := must(t)(c.List("keys")); len(l["keys"].([]string)) != 4 {
		t.Fatalf("list %v", l)
	}
	must(t)(c.Delete("keys/gen", nil))
	_, err = c.Read("code/gen", nil)
	wantInvalid(t, err, "unknown key")
}

func TestImportByURL(t *testing.T) {
	_, c := newEngine(t)
	// Label issuer, no issuer parameter; lower-case unpadded secret.
	must(t)(c.Write("keys/u", map[string]any{"url": "otpauth://totp/ACME:bob?secret=" + strings.ToLower(strings.TrimRight(b32("12345678901234567890"), "=")) + "&digits=8&period=30&algorithm=SHA1"}))
	r := must(t)(c.Read("keys/u", nil))
	if r["issuer"] != "ACME" || r["account_name"] != "bob" || r["digits"] != 8 {
		t.Fatalf("read %v", r)
	}
	c.Clock.Set(time.Unix(1111111109, 0))
	if got := must(t)(c.Read("code/u", nil))["code"]; got != "07081804" {
		t.Fatalf("code %v", got)
	}
}

func TestKeyRefusals(t *testing.T) {
	_, c := newEngine(t)
	for _, tc := range []struct {
		data map[string]any
		msg  string
	}{
		{map[string]any{}, "the key value is required"},
		{map[string]any{"key": "not base32!"}, "invalid key value"},
		{map[string]any{"key": b32("x"), "digits": 7}, "6 or 8"},
		{map[string]any{"key": b32("x"), "algorithm": "MD5"}, "algorithm value is not valid"},
		{map[string]any{"key": b32("x"), "period": 0}, "period value must be greater than zero"},
		{map[string]any{"key": b32("x"), "skew": 2}, "skew value must be 0 or 1"},
		{map[string]any{"generate": true, "key": b32("x")}, "a key should not be passed"},
		{map[string]any{"generate": true, "url": "otpauth://totp/a?secret=AA"}, "a url should not be passed"},
		{map[string]any{"generate": true, "issuer": "I"}, "account_name value is required"},
		{map[string]any{"generate": true, "account_name": "a"}, "issuer value is required"},
		{map[string]any{"generate": true, "issuer": "I", "account_name": "a", "key_size": 0}, "key_size value must be greater than zero"},
		{map[string]any{"generate": true, "issuer": "I", "account_name": "a", "qr_size": -1}, "qr_size"},
		{map[string]any{"url": "https://example.com/?secret=AA"}, "otpauth://totp/"},
		{map[string]any{"url": "otpauth://totp/a?secret=AAAAAAAA&digits=x"}, "digits value in url"},
	} {
		_, err := c.Write("keys/k", tc.data)
		wantInvalid(t, err, tc.msg)
	}
	if _, err := c.Read("keys/k", nil); core.CodeOf(err) != core.CodeNotFound {
		t.Fatalf("a refused write left a key: %v", err)
	}
}
