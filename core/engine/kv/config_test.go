package kv

import (
	"testing"

	"github.com/vigilsec/vigil/core"
)

func TestConfig(t *testing.T) {
	c := newV2(t)
	equalJSON(t, "defaults", must(t)(c.Read("config", nil)).Data,
		map[string]any{"max_versions": 0, "cas_required": false, "delete_version_after": "0s"})

	if resp := must(t)(c.Write("config", map[string]any{"max_versions": 5, "delete_version_after": "1d2h"})); resp != nil {
		t.Errorf("config write answered %+v", resp)
	}
	// Fields left out keep their values.
	must(t)(c.Write("config", map[string]any{"cas_required": true}))
	equalJSON(t, "after writes", must(t)(c.Read("config", nil)).Data,
		map[string]any{"max_versions": 5, "cas_required": true, "delete_version_after": "26h0m0s"})

	// Zero clears delete_version_after; a negative value disables it.
	must(t)(c.Write("config", map[string]any{"delete_version_after": 0}))
	if got := must(t)(c.Read("config", nil)).Data["delete_version_after"]; got != "0s" {
		t.Errorf("cleared delete_version_after = %v", got)
	}
	must(t)(c.Write("config", map[string]any{"delete_version_after": "-5m"}))
	if got := must(t)(c.Read("config", nil)).Data["delete_version_after"]; got != "-1s" {
		t.Errorf("disabled delete_version_after = %v, want -1s", got)
	}

	_, err := c.Write("config", map[string]any{"max_versions": -2})
	wantErr(t, err, core.CodeInvalid, "max_versions must not be negative")
	// An empty write changes nothing.
	must(t)(c.Write("config", map[string]any{}))
	if got := must(t)(c.Read("config", nil)).Data["max_versions"]; got != 5 {
		t.Errorf("max_versions = %v after an empty write", got)
	}
}
