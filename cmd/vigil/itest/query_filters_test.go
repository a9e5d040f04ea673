package itest

import (
	"bufio"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// TestQueryFiltersOverAPI: the filters behind report figures work through
// GET /v1/sys/audit/query; a misspelt parameter is a 400, not a filter
// matching everything; a KV v2 logical path is mapped to its data/ path
// and the answer says so; client preflight requests are marked and can be
// hidden; the auditor's filter is in the query's audit entry in clear.
func TestQueryFiltersOverAPI(t *testing.T) {
	dir := t.TempDir()
	s := mustQueryServer(t, dir, nil, nil, querysvc.Options{Poll: 2 * time.Millisecond})
	_, auditor := queryTraffic(t, s)
	// The Vault CLI's preflight before a kv command.
	if _, err := s.Client.Logical().Read("sys/internal/ui/mounts/secret/app/db"); err != nil {
		t.Logf("preflight read: %v", err) // recorded whatever the answer
	}
	waitQueryCovers(t, s.Server, s.checkpointNow(t), time.Minute)

	code, _, body := rawQuery(t, s.Server, auditor, url.Values{"actorr": {"bob"}})
	if code != http.StatusBadRequest || !strings.Contains(string(body), "actorr") {
		t.Fatalf("misspelt parameter: %d %s", code, body)
	}
	for name, c := range map[string]struct {
		params url.Values
		min    int
		ok     func(rec map[string]any) bool
	}{
		"failed logins": {url.Values{"login": {"failed"}}, 1, nil},
		"root policy":   {url.Values{"policy": {"root"}}, 5, nil},
		"status 403":    {url.Values{"status": {"403"}}, 1, nil},
		"error code":    {url.Values{"error_code": {"permission_denied"}}, 1, nil},
		"source":        {url.Values{"remote_address": {"127.0.0.0/8"}}, 10, nil},
		"auth method":   {url.Values{"auth_method": {"userpass"}}, 6, nil},
		"privileged":    {url.Values{"category": {"privileged:policy"}}, 2, nil},
		"off hours":     {url.Values{"off_hours": {"false"}, "business_hours": {"00-24"}, "tz": {"Asia/Kathmandu"}}, 10, nil},
	} {
		res := apiQueryAll(t, s.Server, auditor, c.params)
		if len(res.Records) < c.min {
			t.Errorf("%s: %d records, want at least %d", name, len(res.Records), c.min)
		}
	}
	// KV v2 logical path: mapped, and said.
	res := apiQueryAll(t, s.Server, auditor, url.Values{"path": {"secret/app/db"}})
	if len(res.Records) < 6 || len(res.Warnings) == 0 || !strings.Contains(strings.Join(res.Warnings, " "), "secret/data/app/db") {
		t.Fatalf("logical path: %d records, warnings %v", len(res.Records), res.Warnings)
	}
	// Preflight: marked; hidden on request.
	all := apiQueryAll(t, s.Server, auditor, url.Values{"path": {"sys/internal/ui/mounts/"}})
	if len(all.Records) == 0 || !all.Records[0].Preflight {
		t.Fatalf("preflight not marked: %+v", all.Records)
	}
	if hidden := apiQueryAll(t, s.Server, auditor, url.Values{"path": {"sys/internal/ui/mounts/"}, "preflight": {"exclude"}}); len(hidden.Records) != 0 {
		t.Fatalf("preflight=exclude kept %d", len(hidden.Records))
	}
	// The auditor's filter, in clear, in the query's response entry.
	s.checkpointNow(t)
	f, err := os.Open(auditLogPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	found := false
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, `"path":"sys/audit/query"`) && strings.Contains(l, `"filter.login":"failed"`) && strings.Contains(l, `"type":"response"`) {
			found = true
		}
	}
	if !found {
		t.Fatal("the query's audit entry does not state its filter in clear")
	}
}
