package auditsvc

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/config"
)

func TestParseSettings(t *testing.T) {
	s, err := ParseSettings(&config.Block{Options: map[string]config.Value{"allow_api_changes": {Value: "false"},
		"request_headers": {Value: "X-Forwarded-For,User-Agent", List: []string{"X-Forwarded-For", "User-Agent"}}}})
	if err != nil || s.AllowAPIChanges || len(s.RequestHeaders) != 2 {
		t.Fatalf("%+v %v", s, err)
	}
	_, err = ParseSettings(&config.Block{Type: "audit_settings", Options: map[string]config.Value{"nope": {Value: "1", Line: 9, File: "v.hcl"}}})
	if err == nil || !strings.Contains(err.Error(), "v.hcl:9") {
		t.Fatalf("got %v", err)
	}
}
