package auditsvc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestHealthDetailHasNoFilesystemPaths(t *testing.T) {
	in := map[string]any{
		"devices": map[string]any{"file": map[string]any{"path": "/var/log/vigil/audit.log", "status": "ok"}},
		"disk":    map[string]any{"file": map[string]any{"dir": "/var/log/vigil", "held_segment": "/var/log/vigil/audit-2026.log.gz", "level": "critical"}},
	}
	out := redactPaths(in).(map[string]any)
	b, _ := json.Marshal(out)
	if strings.Contains(string(b), "/var/log") {
		t.Fatalf("paths leaked into health: %s", b)
	}
	if !strings.Contains(string(b), `"held_segment":"audit-2026.log.gz"`) || !strings.Contains(string(b), `"status":"ok"`) {
		t.Fatalf("redaction removed too much: %s", b)
	}
}
