package system_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/system"
)

// sys/rotate/config reads Vault's defaults, accepts an interval of at
// least 24h and max_operations within Vault's bounds.
func TestSysRotateConfig(t *testing.T) {
	s := devServer(t)
	c := s.Client
	sec, err := c.Logical().Read("sys/rotate/config")
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["enabled"] != true || sec.Data["interval"] != json.Number("0") || sec.Data["max_operations"] != json.Number("3865470566") {
		t.Fatalf("defaults: %v", sec.Data)
	}
	if _, err := c.Logical().Write("sys/rotate/config", map[string]any{"interval": "48h", "max_operations": 2000000}); err != nil {
		t.Fatal(err)
	}
	sec, _ = c.Logical().Read("sys/rotate/config")
	if sec.Data["interval"] != json.Number("172800") || sec.Data["max_operations"] != json.Number("2000000") {
		t.Fatalf("after write: %v", sec.Data)
	}
	for _, bad := range []map[string]any{{"interval": "1h"}, {"max_operations": 10}, {"max_operations": int64(5e9)}} {
		if _, err := c.Logical().Write("sys/rotate/config", bad); statusOf(err) != 400 {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestRotationConfigDue(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := system.RotationConfig{Enabled: true, Interval: 24 * time.Hour, MaxOperations: 1_000_000}
	for _, tc := range []struct {
		installed time.Time
		enc       uint64
		cfg       system.RotationConfig
		want      bool
	}{
		{now.Add(-23 * time.Hour), 0, c, false},
		{now.Add(-24 * time.Hour), 0, c, true},
		{now, 1_000_000, c, true},
		{now.Add(-48 * time.Hour), 5_000_000, system.RotationConfig{Enabled: false, Interval: time.Hour, MaxOperations: 1}, false},
		{now.Add(-48 * time.Hour), 0, system.RotationConfig{Enabled: true, MaxOperations: system.MaxOperationsCeiling}, false},
	} {
		if got := tc.cfg.Due(now, tc.installed, tc.enc); got != tc.want {
			t.Errorf("%+v installed %v enc %d: Due = %v", tc.cfg, now.Sub(tc.installed), tc.enc, got)
		}
	}
}
