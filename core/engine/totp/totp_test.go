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
	"github.com/vigilsec/vigil/core/engine/enginetest"
)

var testMount = core.MountInfo{Path: "totp/", Type: "totp"}

func newEngine(t *testing.T) (*Backend, *enginetest.Client) {
	t.Helper()
	e, c := enginetest.MustSetup(t, New, testMount)
	return e.(*Backend), c
}

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

func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil || core.CodeOf(err) != core.CodeInvalid || !strings.Contains(err.Error(), msg) {
		t.Fatalf("want a 400 containing %q, got %v", msg, err)
	}
}

func b32(s string) string { return base32.StdEncoding.EncodeToString([]byte(s)) }

// TestRFC6238Vectors checks every test vector of RFC 6238 Appendix B
// (8 digits, 30 s period) for SHA-1, SHA-256 and SHA-512, both generating
// and validating, with the engine clock set to each vector's time.
func TestRFC6238Vectors(t *testing.T) {
	seeds := map[string]string{
		"SHA1":   "12345678901234567890",
		"SHA256": "12345678901234567890123456789012",
		"SHA512": "1234567890123456789012345678901234567890123456789012345678901234",
	}
	vectors := []struct {
		unix  int64
		codes map[string]string
	}{
		{59, map[string]string{"SHA1": "94287082", "SHA256": "46119246", "SHA512": "90693936"}},
		{1111111109, map[string]string{"SHA1": "07081804", "SHA256": "68084774", "SHA512": "25091201"}},
		{1111111111, map[string]string{"SHA1": "14050471", "SHA256": "67062674", "SHA512": "99943326"}},
		{1234567890, map[string]string{"SHA1": "89005924", "SHA256": "91819424", "SHA512": "93441116"}},
		{2000000000, map[string]string{"SHA1": "69279037", "SHA256": "90698825", "SHA512": "38618901"}},
		{20000000000, map[string]string{"SHA1": "65353130", "SHA256": "77737706", "SHA512": "47863826"}},
	}
	_, c := newEngine(t)
	for alg, seed := range seeds {
		must(t)(c.Write("keys/"+alg, map[string]any{"key": b32(seed), "digits": 8, "algorithm": alg, "skew": 0, "issuer": "RFC", "account_name": "6238"}))
	}
	for _, v := range vectors {
		c.Clock.Set(time.Unix(v.unix, 0))
		for alg, want := range v.codes {
			if got := must(t)(c.Read("code/"+alg, nil))["code"]; got != want {
				t.Errorf("T=%d %s: generated %v, want %s", v.unix, alg, got, want)
			}
			if got := must(t)(c.Write("code/"+alg, map[string]any{"code": want}))["valid"]; got != true {
				t.Errorf("T=%d %s: %s does not validate", v.unix, alg, want)
			}
		}
	}
}

func TestValidateSkewAndReplay(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", map[string]any{"key": b32("12345678901234567890"), "digits": 8}))
	must(t)(c.Write("keys/strict", map[string]any{"key": b32("12345678901234567890"), "digits": 8, "skew": 0}))
	c.Clock.Set(time.Unix(59, 0)) // code 94287082 covers 30..59
	must(t)(c.Write("code/k", map[string]any{"code": "94287082"}))
	_, err := c.Write("code/k", map[string]any{"code": "94287082"})
	wantInvalid(t, err, "code already used")
	// The same code on another key is its own record.
	c.Clock.Advance(30 * time.Second) // one period later
	if must(t)(c.Write("code/strict", map[string]any{"code": "94287082"}))["valid"] != false {
		t.Fatal("skew 0 accepted the previous period's code")
	}
	// Skew 1 still accepts the previous period, but it was used already.
	_, err = c.Write("code/k", map[string]any{"code": "94287082"})
	wantInvalid(t, err, "code already used")
	// After the replay window (skew*2+2 periods) the record is dropped; the
	// code is by then far outside the window and invalid.
	c.Clock.Advance(4 * 30 * time.Second)
	if must(t)(c.Write("code/k", map[string]any{"code": "94287082"}))["valid"] != false {
		t.Fatal("an expired code validated")
	}
	// A wrong code is invalid and not recorded.
	if must(t)(c.Write("code/k", map[string]any{"code": "00000000"}))["valid"] != false {
		t.Fatal("a wrong code validated")
	}
	_, err = c.Write("code/k", map[string]any{"code": "123"})
	wantInvalid(t, err, "invalid number of digits")
	_, err = c.Write("code/k", map[string]any{})
	wantInvalid(t, err, "the code value is required")
	_, err = c.Read("code/nosuch", nil)
	wantInvalid(t, err, "unknown key: nosuch")
}

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

func TestConformance(t *testing.T) {
	enginetest.RunConformance(t, New, testMount, enginetest.WithPersistence(func(tb testing.TB, c *enginetest.Client) {
		c.MustCall(tb, core.OpUpdate, "keys/k", map[string]any{"key": b32("12345678901234567890"), "issuer": "I", "account_name": "a"})
	}, enginetest.Probe{Op: core.OpRead, Path: "keys/k"}, enginetest.Probe{Op: core.OpRead, Path: "code/k"}, enginetest.Probe{Op: core.OpList, Path: "keys"}))
}
