package itest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// Two different secrets could once share one audit path: secret/data/x%ff
// and secret/data/x%fe both logged as secret/data/x\ufffd. Paths that are
// not valid UTF-8 are refused with 400, and the refusals are audited with
// the bytes shown, so the two stay apart in the log.
func TestNonUTF8PathsRefusedAndAudited(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditOptions())
	for _, p := range []string{"secret/data/x%ff", "secret/data/x%fe", "secret/data/%25%ff"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/"+p, nil)
		req.Header.Set("X-Vault-Token", s.RootToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Errors []string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || len(body.Errors) == 0 || !strings.Contains(body.Errors[0], "not valid UTF-8") {
			t.Fatalf("GET %s: %d %v", p, resp.StatusCode, body.Errors)
		}
	}
	// A valid path with a right-to-left override is a path like any other.
	if _, err := s.Client.Logical().Write("secret/data/ward\u202e7", map[string]any{"data": map[string]any{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	seen := map[string]map[string]bool{}
	for _, l := range entries(readLog(t, auditLogPath(dir))) {
		p, _ := l.Request["path"].(string)
		if seen[p] == nil {
			seen[p] = map[string]bool{}
		}
		seen[p][l.Type] = true
		if strings.ContainsRune(p, '\ufffd') {
			t.Fatalf("an audited path holds U+FFFD: %q", p)
		}
		if strings.HasPrefix(p, "secret/data/x%") && !strings.Contains(l.Error, "not valid UTF-8") {
			t.Fatalf("the refusal of %q is audited without its reason: %q", p, l.Error)
		}
	}
	for _, p := range []string{"secret/data/x%FF", "secret/data/x%FE", "secret/data/%25%FF", "secret/data/ward\u202e7"} {
		if !seen[p]["request"] || !seen[p]["response"] {
			t.Fatalf("%q: audited %v; all paths: %v", p, seen[p], seen)
		}
	}
}
