package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

func TestParseDeviceOptions(t *testing.T) {
	dc, err := ParseDeviceOptions("main", TypeFile, map[string]string{"file_path": "/var/log/v/audit.log"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dc.Fsync != chain.FsyncAlways || !dc.HMACAccessor || dc.ReserveBytes != DefaultReserveBytes || dc.WriteTimeout != DefaultWriteTimeout ||
		dc.Thresholds.WarnUsedPercent != 80 || dc.Thresholds.CriticalUsedPercent != 90 {
		t.Fatalf("defaults: %+v", dc)
	}
	dc, err = ParseDeviceOptions("main", TypeFile, map[string]string{"path": "/a/b.log", "fsync": "interval", "fsync_interval": "20ms",
		"hmac_accessor": "false", "log_raw": "true", "max_size_mb": "5", "max_age_days": "1", "max_backups": "3", "retain_days": "90",
		"compress": "true", "checkpoint_every": "-1", "checkpoint_interval": "5s", "disk_warn_percent": "70", "disk_critical_percent": "85%",
		"disk_critical_free_bytes": "2GiB", "reserve_bytes": "0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dc.Fsync != chain.FsyncInterval || dc.FsyncInterval != 20*time.Millisecond || dc.HMACAccessor || !dc.LogRaw || dc.MaxSizeMB != 5 ||
		dc.MaxBackups != 3 || dc.RetainDays != 90 || !dc.Compress || dc.CheckpointEvery != -1 || dc.CheckpointInterval != 5*time.Second ||
		dc.Thresholds.CriticalUsedPercent != 85 || dc.Thresholds.CriticalFreeBytes != 2<<30 || dc.ReserveBytes != 0 {
		t.Fatalf("parsed: %+v", dc)
	}
	for _, c := range []struct {
		typ  string
		opts map[string]string
		want string
	}{
		{TypeFile, map[string]string{}, "file_path (or path) is required"},
		{TypeFile, map[string]string{"path": "rel/audit.log"}, "must be absolute"},
		{TypeFile, map[string]string{"path": "/a", "fsync": "often"}, "always, interval or none"},
		{TypeFile, map[string]string{"path": "/a", "max_size_mb": "0"}, "integer ≥ 1"},
		{TypeFile, map[string]string{"path": "/a", "fsync_interval": "1s"}, "only meaningful"},
		{TypeFile, map[string]string{"path": "/a", "disk_warn_percent": "95"}, "below disk_critical_percent"},
		{TypeFile, map[string]string{"path": "/a", "prefix": "x"}, "not supported"},
		{TypeFile, map[string]string{"path": "/a", "bogus": "1"}, `unknown option "bogus"`},
		{TypeStdout, map[string]string{"path": "/a"}, `unknown option "path"`},
		{"socket", nil, "unknown audit device type"},
	} {
		_, err := ParseDeviceOptions("d", c.typ, c.opts, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: got %v, want %q", c.typ, c.opts, err, c.want)
		}
	}
	if _, err := ParseDeviceOptions("verify", TypeStdout, nil, nil); err == nil {
		t.Error("reserved name accepted")
	}
	if _, err := ParseDeviceOptions("a/b", TypeStdout, nil, nil); err == nil {
		t.Error("slash in name accepted")
	}
}
