package system_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// sys/tools/random and sys/tools/hash, in Vault's shapes.
func TestSysTools(t *testing.T) {
	s := devServer(t)
	c := s.Client
	for path, want := range map[string]int{"sys/tools/random": 32, "sys/tools/random/16": 16, "sys/tools/random/platform/8": 8} {
		sec, err := c.Logical().Write(path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := base64.StdEncoding.DecodeString(sec.Data["random_bytes"].(string))
		if err != nil || len(b) != want {
			t.Errorf("%s: %d bytes (%v), want %d", path, len(b), err, want)
		}
	}
	sec, err := c.Logical().Write("sys/tools/random", map[string]any{"bytes": 4, "format": "hex"})
	if err != nil || len(sec.Data["random_bytes"].(string)) != 8 {
		t.Fatalf("hex random: %v %v", sec, err)
	}
	if _, err := c.Logical().Write("sys/tools/random/0", nil); statusOf(err) != 400 {
		t.Errorf("zero bytes: %v", err)
	}

	sum := sha256.Sum256([]byte("hello"))
	sec, err = c.Logical().Write("sys/tools/hash", map[string]any{"input": base64.StdEncoding.EncodeToString([]byte("hello"))})
	if err != nil || sec.Data["sum"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash: %v %v", sec, err)
	}
	sec, err = c.Logical().Write("sys/tools/hash/sha2-512", map[string]any{"input": "aGVsbG8=", "format": "base64"})
	if err != nil || len(sec.Data["sum"].(string)) != 88 {
		t.Fatalf("sha2-512: %v %v", sec, err)
	}
	if _, err := c.Logical().Write("sys/tools/hash/md5", map[string]any{"input": "aGVsbG8="}); statusOf(err) != 400 {
		t.Errorf("unsupported algorithm: %v", err)
	}
	// The default policy allows hashing, as in Vault.
	tc := tokenWith(t, s, "default")
	if _, err := tc.Logical().Write("sys/tools/hash", map[string]any{"input": "aGVsbG8="}); err != nil {
		t.Errorf("hash with the default policy: %v", err)
	}
}
