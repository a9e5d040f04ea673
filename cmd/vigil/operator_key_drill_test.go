package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mustAuditedUninit starts an uninitialised server with a file audit device
// and returns it with the audit log's path.
func mustAuditedUninit(t *testing.T, now func() time.Time) (*servertest.Server, string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	s := servertest.MustStart(t, wire.Options, servertest.Options{NoInit: true, Now: now, Configure: func(cfg *config.Config) {
		cfg.Audit = append(cfg.Audit, config.Block{Type: "file", Name: "file", File: "test.hcl", Line: 1,
			Options: map[string]config.Value{"path": {Value: logPath, File: "test.hcl", Line: 2}}})
	}})
	pointCLI(t, s)
	t.Setenv("VIGIL_TOKEN", "")
	return s, logPath
}

var unsealKeyRE = regexp.MustCompile(`(?m)^Unseal Key (\d): (\S+)$`)

// checkStatus runs the compliance checks and returns the status of one.
func checkStatus(t *testing.T, s *servertest.Server, id string) (string, string) {
	t.Helper()
	sec, err := s.Client.Logical().Read("sys/compliance/checks")
	if err != nil {
		t.Fatalf("compliance checks: %v", err)
	}
	b, _ := json.Marshal(sec.Data["checks"])
	var checks []struct {
		ID       string           `json:"id"`
		Status   string           `json:"status"`
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(b, &checks); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.ID == id {
			msg := ""
			if len(c.Findings) > 0 {
				msg, _ = c.Findings[0]["message"].(string)
			}
			return c.Status, msg
		}
	}
	t.Fatalf("no check %s", id)
	return "", ""
}

// auditLines reads the audit log as JSON objects.
//
// It reads every segment of the log in chain order: a request rejected
// while sealed starts a new segment (its writer has no checkpoint key), so
// earlier entries may be in a rotated file.
func auditLines(t *testing.T, path string) (raw string, lines []map[string]any) {
	t.Helper()
	segs, err := chain.ListSegments(path)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Index < segs[j].Index })
	var b []byte
	for _, si := range segs {
		if si.Compressed {
			t.Fatalf("%s is compressed", si.Path)
		}
		seg, err := os.ReadFile(si.Path)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, seg...)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			lines = append(lines, m)
		}
	}
	return string(b), lines
}

// wantNoShares fails if any share appears in the audit log in hex or base64.
func wantNoShares(t *testing.T, log string, shares ...string) {
	t.Helper()
	for _, sh := range shares {
		b, err := base64.StdEncoding.DecodeString(sh)
		if err != nil {
			if b, err = hex.DecodeString(sh); err != nil {
				t.Fatalf("bad share %q", sh)
			}
		}
		for _, enc := range []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b)} {
			if strings.Contains(log, enc) {
				t.Fatalf("the audit log contains a share (%s...)", enc[:8])
			}
		}
	}
}

// submissions returns the audited responses of sys/key-drill/submit:
// share number and holder, or the error.
func submissions(lines []map[string]any, path string) (ok []string, failed []string) {
	for _, l := range lines {
		req, _ := l["request"].(map[string]any)
		if l["type"] != "response" || req["path"] != path {
			continue
		}
		if e, _ := l["error"].(string); e != "" {
			failed = append(failed, e)
			continue
		}
		resp, _ := l["response"].(map[string]any)
		data, _ := resp["data"].(map[string]any)
		ok = append(ok, strings.TrimSpace(strings.Join([]string{jsonString(data["share_number"]), jsonString(data["share_holder"])}, " ")))
	}
	return ok, failed
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

// TestKeyDrill: holder labels at init, a drill where valid shares pass, a
// share with one byte changed and a share from another server fail, the
// compliance check turning red and green, and an audit log that names the
// shares that proved possession but never holds a share.
func TestKeyDrill(t *testing.T) {
	clock := &testClock{t: time.Now()}
	other := servertest.MustStart(t, wire.Options, servertest.Options{Shares: 3, Thresh: 2})
	s, logPath := mustAuditedUninit(t, clock.Now)

	out := mustOK(t, "operator", "init", "-key-shares=3", "-key-threshold=2", "-key-holders=alice, bob,carol")
	for _, want := range []string{"Unseal Key 1 -> alice", "Unseal Key 2 -> bob", "Unseal Key 3 -> carol", "Where each share went"} {
		if !strings.Contains(out, want) {
			t.Fatalf("init output lacks %q:\n%s", want, out)
		}
	}
	m := unsealKeyRE.FindAllStringSubmatch(out, -1)
	keys := []string{m[0][2], m[1][2], m[2][2]}
	mustOK(t, "operator", "unseal", keys[0])
	mustOK(t, "operator", "unseal", keys[1])
	root := regexp.MustCompile(`(?m)^Initial Root Token: (\S+)$`).FindStringSubmatch(out)[1]
	t.Setenv("VIGIL_TOKEN", root)
	s.Client.SetToken(root)

	if st, msg := checkStatus(t, s, "seal.key-drill"); st != "fail" || !strings.Contains(msg, "only 0 of the 2") {
		t.Fatalf("before any drill: %s %q", st, msg)
	}
	runCLI(t, "operator", "key-drill", "submit", keys[0]).wantCode(t, 2, "no key drill is open")
	t.Setenv("VIGIL_TOKEN", "")
	runCLI(t, "operator", "key-drill", "start").wantCode(t, 2, "permission denied")
	t.Setenv("VIGIL_TOKEN", root)
	if got := mustOK(t, "operator", "key-drill", "start", "-ttl=72h"); !strings.Contains(got, "shares, threshold 2") {
		t.Fatalf("start: %s", got)
	}
	runCLI(t, "operator", "key-drill", "start").wantCode(t, 2, "already open")

	// Holders need no token.
	t.Setenv("VIGIL_TOKEN", "")
	if got := mustOK(t, "operator", "key-drill", "submit", keys[0]); !strings.Contains(got, "share 1 (alice) proved possession") {
		t.Fatalf("submit alice: %s", got)
	}
	raw, _ := base64.StdEncoding.DecodeString(keys[1])
	raw[5] ^= 0x01
	altered := hex.EncodeToString(raw)
	runCLI(t, "operator", "key-drill", "submit", altered).wantCode(t, 2, "does not match")
	runCLI(t, "operator", "key-drill", "submit", other.Keys[0]).wantCode(t, 2, "does not match")
	if st, msg := checkStatus(t, s, "seal.key-drill"); st != "fail" || !strings.Contains(msg, "only 1 of the 2") || !strings.Contains(msg, "1 (alice)") {
		t.Fatalf("after one share: %s %q", st, msg)
	}
	r := runCLIStdin(t, keys[2]+"\n", "operator", "key-drill", "submit")
	r.wantCode(t, 0)
	if !strings.Contains(r.out, "share 3 (carol) proved possession") {
		t.Fatalf("submit from stdin: %+v", r)
	}
	if st, msg := checkStatus(t, s, "seal.key-drill"); st != "pass" {
		t.Fatalf("after two shares: %s %q", st, msg)
	}
	t.Setenv("VIGIL_TOKEN", root)
	mustOK(t, "operator", "key-drill", "finish")
	hist := mustOK(t, "operator", "key-drill", "history", "-format=json")
	if !strings.Contains(hist, `"holder": "carol"`) || !strings.Contains(hist, `"reason": "the share does not match`) {
		t.Fatalf("history: %s", hist)
	}

	clock.Advance(91 * 24 * time.Hour)
	if st, msg := checkStatus(t, s, "seal.key-drill"); st != "fail" || !strings.Contains(msg, "in the last 90 days") {
		t.Fatalf("91 days later: %s %q", st, msg)
	}

	log, lines := auditLines(t, logPath)
	wantNoShares(t, log, append([]string{altered}, append(keys, other.Keys...)...)...)
	ok, failed := submissions(lines, "sys/key-drill/submit")
	if strings.Join(ok, ",") != "1 alice,3 carol" || len(failed) != 3 {
		t.Fatalf("audited submissions: ok %q, failed %q", ok, failed)
	}
}
