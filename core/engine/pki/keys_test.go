package pki

import (
	"math/big"
	"strings"
	"testing"
)

// TestSerialFormat pins Vault's serial number form (known answers).
func TestSerialFormat(t *testing.T) {
	for in, want := range map[string]string{
		"1":                                "01",
		"ff":                               "ff",
		"100":                              "01:00",
		"7cf1fb2c6e4d990e821b080a81ed613e": "7c:f1:fb:2c:6e:4d:99:0e:82:1b:08:0a:81:ed:61:3e",
	} {
		n, _ := new(big.Int).SetString(in, 16)
		if got := formatSerial(n); got != want {
			t.Errorf("formatSerial(%s) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"7C-F1-FB":  "7c:f1:fb",
		"7c:f1:fb":  "7c:f1:fb",
		"7cf1fb":    "7c:f1:fb",
		" 0a:0b ":   "0a:0b",
		"00:0a:0b":  "0a:0b",
		"01:00":     "01:00",
		"abcdef123": "0a:bc:de:f1:23",
	} {
		got, err := normalizeSerial(in)
		if err != nil || got != want {
			t.Errorf("normalizeSerial(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "zz:11", "1:2", "-", strings.Repeat("a", 129), "../x"} {
		if _, err := normalizeSerial(bad); err == nil {
			t.Errorf("normalizeSerial(%q) accepted", bad)
		}
	}
	if storageSerial("0a:0b") != "0a-0b" || colonSerial("0a-0b") != "0a:0b" {
		t.Error("storage serial form")
	}
}

func TestNewSerial(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		n, err := newSerial()
		if err != nil {
			t.Fatal(err)
		}
		if n.Sign() <= 0 || n.BitLen() > 128 {
			t.Fatalf("serial %x out of range", n)
		}
		s := formatSerial(n)
		if seen[s] {
			t.Fatalf("serial %s repeated", s)
		}
		seen[s] = true
	}
}

func TestCheckKeyParams(t *testing.T) {
	for _, tc := range []struct {
		typ        string
		bits       int
		any        bool
		wantTyp    string
		wantBits   int
		wantErrSub string
	}{
		{"", 0, false, "rsa", 2048, ""},
		{"rsa", 4096, false, "rsa", 4096, ""},
		{"ec", 0, false, "ec", 256, ""},
		{"ec", 521, false, "ec", 521, ""},
		{"ed25519", 999, false, "ed25519", 0, ""},
		{"any", 0, true, "any", 0, ""},
		{"any", 0, false, "", 0, "must be rsa, ec or ed25519"},
		{"rsa", 1024, false, "", 0, "unsupported bit length for RSA key: 1024"},
		{"ec", 512, false, "", 0, "unsupported bit length for EC key: 512"},
	} {
		typ, bits, err := checkKeyParams(tc.typ, tc.bits, tc.any)
		if tc.wantErrSub != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
				t.Errorf("checkKeyParams(%q, %d): err %v, want %q", tc.typ, tc.bits, err, tc.wantErrSub)
			}
			continue
		}
		if err != nil || typ != tc.wantTyp || bits != tc.wantBits {
			t.Errorf("checkKeyParams(%q, %d) = %q, %d, %v", tc.typ, tc.bits, typ, bits, err)
		}
	}
}

func TestMarshalPrivateKeyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		bits int
	}{{"rsa", 2048}, {"ec", 256}, {"ed25519", 0}} {
		k, err := generateKey(tc.typ, tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"der", "pkcs8"} {
			p, der, typ, err := marshalPrivateKey(k, format)
			if err != nil || typ != tc.typ || len(der) == 0 {
				t.Fatalf("%s/%s: %v %q", tc.typ, format, err, typ)
			}
			back, err := parsePrivateKeyPEM(p)
			if err != nil || !samePublicKey(back.Public(), k.Public()) {
				t.Errorf("%s/%s: round trip failed: %v", tc.typ, format, err)
			}
		}
	}
}
