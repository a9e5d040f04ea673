package totp

import (
	"encoding/base32"
	"strings"
	"testing"

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

func TestConformance(t *testing.T) {
	enginetest.RunConformance(t, New, testMount, enginetest.WithPersistence(func(tb testing.TB, c *enginetest.Client) {
		c.MustCall(tb, core.OpUpdate, "keys/k", map[string]any{"key": b32("12345678901234567890"), "issuer": "I", "account_name": "a"})
	}, enginetest.Probe{Op: core.OpRead, Path: "keys/k"}, enginetest.Probe{Op: core.OpRead, Path: "code/k"}, enginetest.Probe{Op: core.OpList, Path: "keys"}))
}
