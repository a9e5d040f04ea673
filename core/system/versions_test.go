package system_test

import (
	"testing"

	"github.com/vigilsec/vigil/core/server"
)

// LIST sys/version-history names the version running, with when it was
// first seen; a restart does not add an entry.
func TestSysVersionHistory(t *testing.T) {
	s := devServer(t)
	read := func() map[string]any {
		t.Helper()
		sec, err := s.Client.Logical().List("sys/version-history")
		if err != nil || sec == nil {
			t.Fatalf("version-history: %v %v", sec, err)
		}
		return sec.Data
	}
	d := read()
	keys, _ := d["keys"].([]any)
	info, _ := d["key_info"].(map[string]any)
	if len(keys) != 1 || keys[0] != server.Version {
		t.Fatalf("keys %v, want [%s]", keys, server.Version)
	}
	v, _ := info[server.Version].(map[string]any)
	if v["timestamp_installed"] == "" || v["previous_version"] != nil {
		t.Fatalf("key_info %v", info)
	}
	s.Restart()
	if k, _ := read()["keys"].([]any); len(k) != 1 {
		t.Fatalf("after restart: %v", k)
	}
}
