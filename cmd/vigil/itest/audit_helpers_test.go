package itest

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// auditServer is a test server with the audit subsystem wired as
// cmd/vigil/wire wires it, plus the test's auditsvc.Options. Sub returns
// the subsystem of the current incarnation (a Restart builds a new one).
type auditServer struct {
	*servertest.Server
	mu  sync.Mutex
	sub *auditsvc.Subsystem
}

func (a *auditServer) Sub() *auditsvc.Subsystem {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sub
}

// auditLogPath is where fileDevice puts the log.
func auditLogPath(dir string) string { return filepath.Join(dir, "audit", "audit.log") }

// fileDevice declares `audit "file" "file" { path = <dir>/audit/audit.log, opts... }`.
func fileDevice(dir string, opts map[string]string) config.Block {
	o := map[string]config.Value{"path": {Value: auditLogPath(dir), Line: 1, File: "test.hcl"}}
	for k, v := range opts {
		o[k] = config.Value{Value: v, Line: 2, File: "test.hcl"}
	}
	return config.Block{Type: "file", Name: "file", Options: o, Line: 1, File: "test.hcl"}
}

// mustAuditServer starts a server whose audit subsystem is built with ao.
// o.Configure may declare devices (see fileDevice).
func mustAuditServer(t testing.TB, o servertest.Options, ao auditsvc.Options) *auditServer {
	t.Helper()
	as := &auditServer{}
	build := func(cfg *config.Config) (server.Options, error) {
		so, err := wire.Options(cfg)
		sub := auditsvc.NewSubsystem(ao)
		as.mu.Lock()
		as.sub = sub
		as.mu.Unlock()
		so.Subsystems = withAudit(so.Subsystems, sub)
		return so, err
	}
	as.Server = servertest.MustStart(t, build, o)
	return as
}

// logLine is a parsed audit line: the Vault entry and the chain members.
type logLine struct {
	Type     string         `json:"type"`
	Time     string         `json:"time"`
	Auth     map[string]any `json:"auth"`
	Request  map[string]any `json:"request"`
	Response map[string]any `json:"response"`
	Error    string         `json:"error"`
	Vigil    map[string]any `json:"vigil"`
	Seq      uint64         `json:"seq"`
	Raw      string         `json:"-"`
}

func (l logLine) requestID() string {
	id, _ := l.Request["id"].(string)
	return id
}

// readLog reads every segment of the log at path (rotated and gzip'd
// included) in chain order; a torn final line is skipped.
func readLog(t testing.TB, path string) []logLine {
	t.Helper()
	infos, err := chain.ListSegments(path)
	if err != nil {
		t.Fatalf("list segments: %v", err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Index < infos[j].Index })
	var out []logLine
	for _, si := range infos {
		rc, err := chain.FileSource(si.Path).Open()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var l logLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				continue // torn tail
			}
			l.Raw = sc.Text()
			out = append(out, l)
		}
		rc.Close()
	}
	return out
}

// entries returns the Vault entries (not chain records) of a log.
func entries(lines []logLine) []logLine {
	var out []logLine
	for _, l := range lines {
		if l.Type == "request" || l.Type == "response" {
			out = append(out, l)
		}
	}
	return out
}

// byRequestID indexes entries: id → types seen.
func byRequestID(lines []logLine) map[string]map[string]bool {
	m := map[string]map[string]bool{}
	for _, l := range entries(lines) {
		id := l.requestID()
		if m[id] == nil {
			m[id] = map[string]bool{}
		}
		m[id][l.Type] = true
	}
	return m
}

func fileContains(t testing.TB, dir, needle string) []string {
	t.Helper()
	var hits []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), needle) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// withAudit puts sub in subs: in place of an audit subsystem the wiring
// already has (one audit subsystem per server), else at the front so it
// opens its devices before, and closes them after, the other subsystems.
func withAudit(subs []server.Plug, sub *auditsvc.Subsystem) []server.Plug {
	for i, x := range subs {
		if _, ok := x.Subsystem.(*auditsvc.Subsystem); ok {
			subs[i] = wire.Plug(sub)
			return subs
		}
	}
	return append([]server.Plug{wire.Plug(sub)}, subs...)
}
