package totp_test

// Integration test: a real in-process Vigil server driven with the vault/api
// client. Codes are checked against an independent RFC 6238 computation.

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238's default HMAC
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// rfcCode is RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30 s), written from the
// RFC, for comparison with the server's codes.
func rfcCode(secret []byte, t time.Time) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(t.Unix()/30))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1000000)
}

func TestAPIGenerateAndValidate(t *testing.T) {
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	c := s.Client
	if err := c.Sys().Mount("totp", &vaultapi.MountInput{Type: "totp"}); err != nil {
		t.Fatalf("mount totp: %v", err)
	}
	sec, err := c.Logical().Write("totp/keys/alice", map[string]any{"generate": true, "issuer": "Vigil", "account_name": "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["barcode"] == "" || sec.Data["barcode"] == nil {
		t.Fatal("no barcode")
	}
	u, err := url.Parse(sec.Data["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(u.Query().Get("secret"))
	if err != nil || len(secret) != 20 {
		t.Fatalf("secret: %v", err)
	}

	// The server's code is the RFC code of now (or of a neighbouring period
	// if a boundary passed between the two computations).
	before := time.Now()
	got, err := c.Logical().Read("totp/code/alice")
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if code := got.Data["code"]; code != rfcCode(secret, before) && code != rfcCode(secret, after) {
		t.Fatalf("server code %v, RFC code %s/%s", code, rfcCode(secret, before), rfcCode(secret, after))
	}

	// A code computed by the user validates once; its replay is refused.
	code := rfcCode(secret, time.Now())
	v, err := c.Logical().Write("totp/code/alice", map[string]any{"code": code})
	if err != nil || v.Data["valid"] != true {
		t.Fatalf("validate: %v %v", v, err)
	}
	_, err = c.Logical().Write("totp/code/alice", map[string]any{"code": code})
	if err == nil || !strings.Contains(err.Error(), "code already used") {
		t.Fatalf("replay: %v", err)
	}
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	if v, err := c.Logical().Write("totp/code/alice", map[string]any{"code": wrong}); err != nil || v.Data["valid"] != false {
		t.Fatalf("wrong code: %v %v", v, err)
	}

	// Import by key; read shows the parameters, never the secret.
	if _, err := c.Logical().Write("totp/keys/imported", map[string]any{"key": base32.StdEncoding.EncodeToString([]byte("12345678901234567890")), "issuer": "X", "account_name": "y"}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Logical().Read("totp/keys/imported")
	if err != nil || r.Data["algorithm"] != "SHA1" || r.Data["key"] != nil {
		t.Fatalf("read: %v %v", r, err)
	}
	l, err := c.Logical().List("totp/keys")
	if err != nil || len(l.Data["keys"].([]any)) != 2 {
		t.Fatalf("list: %v %v", l, err)
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}
