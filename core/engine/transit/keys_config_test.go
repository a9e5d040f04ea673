package transit

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
)

func TestConfigRules(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	for range 3 {
		must(t)(c.Write("keys/k/rotate", nil)) // versions 1..4
	}
	for _, tc := range []struct {
		data map[string]any
		msg  string
	}{
		{map[string]any{"min_decryption_version": 5}, "cannot set min decryption version of 5, latest key version is 4"},
		{map[string]any{"min_decryption_version": -1}, "min decryption version cannot be negative"},
		{map[string]any{"min_encryption_version": 5}, "cannot set min encryption version of 5, latest key version is 4"},
		{map[string]any{"min_encryption_version": -2}, "min encryption version cannot be negative"},
		{map[string]any{"min_decryption_version": 3, "min_encryption_version": 2}, "min encryption version of 2 must be greater than or equal to min decryption version of 3"},
		{map[string]any{"auto_rotate_period": 60}, "auto rotate period must be 0 to disable or at least an hour"},
		{map[string]any{"min_decryption_version": "two"}, "min_decryption_version"},
	} {
		invalid(t, tc.msg)(c.Write("keys/k/config", tc.data))
	}
	// Rejected changes leave the key as it was.
	d := must(t)(c.Read("keys/k", nil))
	if d["min_decryption_version"] != 1 || d["min_encryption_version"] != 0 {
		t.Fatalf("rejected config changed the key: %v", d)
	}
	d = must(t)(c.Write("keys/k/config", map[string]any{"min_decryption_version": 2, "min_encryption_version": 3, "auto_rotate_period": "48h", "deletion_allowed": true}))
	if d["min_decryption_version"] != 2 || d["min_encryption_version"] != 3 || d["auto_rotate_period"] != int64(172800) || d["deletion_allowed"] != true {
		t.Errorf("config: %v", d)
	}
	resp, err := c.Write("keys/k/config", map[string]any{"min_decryption_version": 0, "min_encryption_version": 0})
	if err != nil || resp.Data["min_decryption_version"] != 1 || !slices.Contains(resp.Warnings, "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1") {
		t.Errorf("min_decryption_version 0: %v %v", resp, err)
	}
	invalid(t, "no existing key named nope could be found")(c.Write("keys/nope/config", map[string]any{"deletion_allowed": true}))
	invalid(t, "key not found")(c.Write("keys/nope/rotate", nil))
}

func TestTrim(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/k", nil))
	cts := []string{str(t, must(t)(c.Write("encrypt/k", map[string]any{"plaintext": b64("v1")})), "ciphertext")}
	for range 2 {
		must(t)(c.Write("keys/k/rotate", nil))
	}
	invalid(t, "missing min_available_version")(c.Write("keys/k/trim", nil))
	invalid(t, "minimum available version cannot be set when minimum encryption version is not set")(c.Write("keys/k/trim", map[string]any{"min_available_version": 2}))
	must(t)(c.Write("keys/k/config", map[string]any{"min_encryption_version": 3, "min_decryption_version": 2}))
	invalid(t, "minimum available version cannot be greater than minimum decryption version")(c.Write("keys/k/trim", map[string]any{"min_available_version": 3}))
	invalid(t, "minimum available version should be positive")(c.Write("keys/k/trim", map[string]any{"min_available_version": 0}))
	d := must(t)(c.Write("keys/k/trim", map[string]any{"min_available_version": 2}))
	if d["min_available_version"] != 2 {
		t.Fatalf("trim: %v", d)
	}
	invalid(t, "minimum available version cannot be decremented")(c.Write("keys/k/trim", map[string]any{"min_available_version": 1}))
	invalid(t, "min decryption version should not be less than min available version")(c.Write("keys/k/config", map[string]any{"min_decryption_version": 1}))
	// Version 1 is gone from storage for good.
	invalid(t, "too old")(c.Write("decrypt/k", map[string]any{"ciphertext": cts[0]}))
	b := c.Engine.(*Backend)
	p, err := b.load(t.Context(), b.st.Load(), "k")
	if err != nil || p.Keys[1] != nil || p.Keys[2] == nil || p.Keys[3] == nil {
		t.Errorf("stored versions after trim: %v %v", p, err)
	}
	invalid(t, "invalid key name")(c.Write("keys/nope/trim", map[string]any{"min_available_version": 1}))
}

func TestAutoRotate(t *testing.T) {
	_, c := newEngine(t)
	must(t)(c.Write("keys/auto", map[string]any{"auto_rotate_period": "1h"}))
	must(t)(c.Write("keys/manual", nil))
	must(t)(c.Write("keys/daily", map[string]any{"type": "ed25519"}))
	must(t)(c.Write("keys/daily/config", map[string]any{"auto_rotate_period": "24h"}))
	latest := func(name string) any { return must(t)(c.Read("keys/"+name, nil))["latest_version"] }

	if err := c.RunScheduled(t, t.Context()); err != nil {
		t.Fatal(err)
	}
	if latest("auto") != 1 {
		t.Fatal("rotated before the period elapsed")
	}
	c.Clock.Advance(time.Hour - time.Second)
	must(t)(nil, c.RunScheduled(t, t.Context()))
	if latest("auto") != 1 {
		t.Fatal("rotated a second early")
	}
	c.Clock.Advance(time.Second)
	must(t)(nil, c.RunScheduled(t, t.Context()))
	if latest("auto") != 2 || latest("manual") != 1 || latest("daily") != 1 {
		t.Fatalf("after 1h: auto=%v manual=%v daily=%v", latest("auto"), latest("manual"), latest("daily"))
	}
	// The period counts from the latest version's creation.
	must(t)(nil, c.RunScheduled(t, t.Context()))
	if latest("auto") != 2 {
		t.Fatal("rotated twice for one period")
	}
	keys := must(t)(c.Read("keys/auto", nil))["keys"].(map[string]int64)
	if keys["2"] != c.Clock.Now().Unix() {
		t.Errorf("new version created at %d, want the engine clock %d", keys["2"], c.Clock.Now().Unix())
	}
	c.Clock.Advance(23 * time.Hour)
	must(t)(nil, c.RunScheduled(t, t.Context()))
	if latest("auto") != 3 || latest("daily") != 2 {
		t.Fatalf("after 24h: auto=%v daily=%v", latest("auto"), latest("daily"))
	}
	// Turning the period off stops rotation.
	must(t)(c.Write("keys/auto/config", map[string]any{"auto_rotate_period": 0}))
	c.Clock.Advance(100 * time.Hour)
	must(t)(nil, c.RunScheduled(t, t.Context()))
	if latest("auto") != 3 {
		t.Error("rotated with auto_rotate_period 0")
	}
	// The job's routes are internal: a client cannot reach them.
	for _, p := range []string{"scheduled/auto-rotate", "scheduled/auto-rotate/daily"} {
		if _, err := c.Call(t.Context(), core.OpUpdate, p, nil); !errors.Is(err, core.ErrUnsupportedPath) {
			t.Errorf("client call to %s: %v, want unsupported path", p, err)
		}
	}
	// A key rotated by a client after the scan is not rotated again.
	c.Clock.Advance(24 * time.Hour)
	must(t)(c.Write("keys/daily/rotate", nil))
	want := latest("daily")
	resp, err := c.CallInternal(t.Context(), JobAutoRotate, core.OpUpdate, "scheduled/auto-rotate/daily", nil)
	if err != nil || resp.Data["rotated"] != false || latest("daily") != want {
		t.Errorf("stale due entry: %v %v, latest %v", resp, err, latest("daily"))
	}
}
