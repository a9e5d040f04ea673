package system_test

import "testing"

// sys/host-info reports the node's CPU, disks, host and memory.
func TestSysHostInfo(t *testing.T) {
	s := devServer(t)
	sec, err := s.Client.Logical().Read("sys/host-info")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cpu", "cpu_times", "disk", "host", "memory", "timestamp"} {
		if sec.Data[k] == nil {
			t.Errorf("host-info has no %s (warnings %v)", k, sec.Warnings)
		}
	}
	host, _ := sec.Data["host"].(map[string]any)
	mem, _ := sec.Data["memory"].(map[string]any)
	if host["hostname"] == "" || host["os"] != "linux" || mem["total"] == nil {
		t.Errorf("host %v memory %v", host, mem)
	}
	if _, err := tokenWith(t, s, "default").Logical().Read("sys/host-info"); statusOf(err) != 403 {
		t.Errorf("host-info without a policy: %v", err)
	}
}
