package transit

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/vigilsec/vigil/core/tools"
)

func TestRandom(t *testing.T) {
	b, c := newEngine(t)
	b.rand = seqReader()
	// Default: 32 bytes, base64.
	if got := must(t)(c.Write("random", nil))["random_bytes"]; got != base64.StdEncoding.EncodeToString(seqBytes(0, 32)) {
		t.Errorf("random: %v", got)
	}
	for _, tc := range []struct {
		path   string
		data   map[string]any
		n      int
		format string
	}{
		{"random/16", nil, 16, "base64"},
		{"random", map[string]any{"bytes": 8, "format": "hex"}, 8, "hex"},
		{"random", map[string]any{"source": "", "bytes": 5}, 5, "base64"},
		{"random/platform", map[string]any{"bytes": 4}, 4, "base64"},
		{"random/all/12", map[string]any{"format": "hex"}, 12, "hex"},
		{"random/seal/3", nil, 3, "base64"},
	} {
		s := str(t, must(t)(c.Write(tc.path, tc.data)), "random_bytes")
		var raw []byte
		var err error
		if tc.format == "hex" {
			raw, err = hex.DecodeString(s)
		} else {
			raw, err = base64.StdEncoding.DecodeString(s)
		}
		if err != nil || len(raw) != tc.n {
			t.Errorf("%s %v: %q (%v), want %d %s bytes", tc.path, tc.data, s, err, tc.n, tc.format)
		}
	}
	resp, err := c.Write("random/seal/3", nil)
	if err != nil || !slices.Contains(resp.Warnings, "no seal/entropy augmentation available, using platform entropy source") {
		t.Errorf("seal source: %v %v", resp, err)
	}
	invalid(t, `"bytes" cannot be less than 1`)(c.Write("random/0", nil))
	invalid(t, `"bytes" should be less than 131072`)(c.Write("random", map[string]any{"bytes": tools.MaxRandomBytes + 1}))
	invalid(t, `unsupported encoding format "base32"`)(c.Write("random", map[string]any{"format": "base32"}))
	invalid(t, "unsupported entropy source")(c.Write("random/moon", nil))
	invalid(t, "error parsing url-set byte count")(c.Write("random/platform/many", nil))
}

func TestHashKnownAnswers(t *testing.T) {
	// Digests of "hello world" from Python's hashlib.
	_, c := newEngine(t)
	want := map[string]string{
		"sha2-224": "2f05477fc24bb4faefd86517156dafdecec45b8ad3cf2522a563582b",
		"sha2-256": "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
		"sha2-384": "fdbd8e75a67f29f701a4e040385e2e23986303ea10239211af907fcbb83578b3e417cb71ce646efd0819dd8c088de1bd",
		"sha2-512": "309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f",
		"sha3-224": "dfb7f18c77e928bb56faeb2da27291bd790bc1045cde45f3210bb6c5",
		"sha3-256": "644bcc7e564373040999aac89e7622f3ca71fba1d972fd94a31c3bfbf24e3938",
		"sha3-384": "83bff28dde1b1bf5810071c6643c08e5b05bdb836effd70b403ea8ea0a634dc4997eb1053aa3593f590f9c63630dd90b",
		"sha3-512": "840006653e9ac9e95117a15c915caab81662918e925de9e004f774ff82d7079a40d4d27b1b372657c61d46d470304c88c788b3a4527ad074d1dccbee5dbaa99a",
	}
	in := b64("hello world")
	for alg, sum := range want {
		if got := must(t)(c.Write("hash/"+alg, map[string]any{"input": in}))["sum"]; got != sum {
			t.Errorf("hash/%s = %v, want %s", alg, got, sum)
		}
		if got := must(t)(c.Write("hash", map[string]any{"input": in, "algorithm": alg}))["sum"]; got != sum {
			t.Errorf("hash algorithm=%s = %v, want %s", alg, got, sum)
		}
	}
	// Default sha2-256, hex; base64 on request.
	if got := must(t)(c.Write("hash", map[string]any{"input": in}))["sum"]; got != want["sha2-256"] {
		t.Errorf("default hash: %v", got)
	}
	if got := must(t)(c.Write("hash", map[string]any{"input": in, "format": "base64"}))["sum"]; got != "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=" {
		t.Errorf("base64 hash: %v", got)
	}
	invalid(t, "unsupported algorithm md5")(c.Write("hash/md5", map[string]any{"input": in}))
	invalid(t, "unsupported encoding format binary")(c.Write("hash", map[string]any{"input": in, "format": "binary"}))
	invalid(t, "unable to decode input as base64")(c.Write("hash", map[string]any{"input": "@@"}))
}
