package totp

import (
	"testing"
	"time"
)

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
