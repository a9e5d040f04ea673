package itest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// Probes that Vigil cannot parse reach the audit file as rejected
// requests, sent over a raw connection so that nothing cleans them first:
// a request and a response entry each, with the error and the escaped raw
// path, and never the token the probe carried.
func TestMalformedRequestsReachTheAuditFile(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{})
	const token = "hvs.probe-token-in-clear"
	probes := []struct {
		line, body string
		status     int
		path       string
	}{
		{"GET /v1/secret/../sys/raw HTTP/1.1", "", http.StatusBadRequest, "secret/../sys/raw"},
		{"GET /v1/secret%2Fdata%2Fx HTTP/1.1", "", http.StatusBadRequest, "secret%2Fdata%2Fx"},
		{"GET /v1/secret/a%01b HTTP/1.1", "", http.StatusBadRequest, "secret/a%01b"},
		{"POST /v1/secret/data/x HTTP/1.1", `{"data":`, http.StatusBadRequest, "secret/data/x"},
		{"BREW /v1/secret/data/x HTTP/1.1", "", http.StatusMethodNotAllowed, "secret/data/x"},
	}
	addr := strings.TrimPrefix(s.URL, "http://")
	for _, p := range probes {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "%s\r\nHost: vigil\r\nX-Vault-Token: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", p.line, token, len(p.body), p.body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != p.status {
			t.Fatalf("%s: status %d, want %d", p.line, resp.StatusCode, p.status)
		}
	}
	s.Stop()
	lines := readLog(t, auditLogPath(dir))
	for _, p := range probes {
		for _, typ := range []string{"request", "response"} {
			e := entryOn(lines, typ, p.path)
			if e == nil {
				t.Fatalf("no %s entry for %q", typ, p.line)
			}
			if e.Error == "" || e.Request["client_token"] != nil {
				t.Fatalf("%s entry for %q: %s", typ, p.line, e.Raw)
			}
		}
	}
	if hits := fileContains(t, dir, token); len(hits) > 0 {
		t.Fatalf("the probe token is written in %v", hits)
	}
}
