package itest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// fillDisk writes a junk file until the filesystem is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte("x"), 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	for _, n := range []int{4096, 512, 1} { // the last bytes too
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
}

type answer struct {
	id     string
	status int
	body   string
}

// kvPut writes through plain HTTP and returns the status and request id.
func kvPut(c *http.Client, url, token, key string, data map[string]any) answer {
	b, _ := json.Marshal(map[string]any{"data": data})
	req, _ := http.NewRequest(http.MethodPut, url+"/v1/secret/data/"+key, bytes.NewReader(b))
	req.Header.Set("X-Vault-Token", token)
	resp, err := c.Do(req)
	if err != nil {
		return answer{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		RequestID string `json:"request_id"`
	}
	_ = json.Unmarshal(body, &env)
	return answer{id: env.RequestID, status: resp.StatusCode, body: string(body)}
}

// On a real, full filesystem: the emergency reserve is released, then
// requests fail closed with a clear ENOSPC message; no request is answered
// 2xx without its entries in the log; freeing space resumes service
// without a restart, and the chain verifies.
func TestAuditDiskFullTmpfs(t *testing.T) {
	fsDir := testsvc.Tmpfs(t, "16m")
	logDir := filepath.Join(fsDir, "audit")
	logPath := filepath.Join(logDir, "audit.log")
	tick := make(chan time.Time)
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{{Type: "file", Name: "file", Options: map[string]config.Value{
			"path": {Value: logPath}, "reserve_bytes": {Value: "1MiB"}, "write_timeout": {Value: "5s"}}}}
	}}, audit.Options{Ticker: func() (<-chan time.Time, func()) { return tick, func() {} }})
	if st, ok := s.Sub().Watcher().State("file"); !ok || st.ReserveHeld != 1<<20 {
		t.Fatalf("reserve not created at unseal: %+v", st)
	}
	junk := filepath.Join(fsDir, "junk")
	fillDisk(t, junk)

	hc := &http.Client{Timeout: time.Minute}
	fields := map[string]any{}
	for i := 0; i < 40; i++ {
		fields[fmt.Sprintf("field-%02d", i)] = strings.Repeat("v", 32)
	}
	var mu sync.Mutex
	var answers []answer
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails := 0
			for i := 0; i < 2000 && fails < 5; i++ {
				a := kvPut(hc, s.URL, s.RootToken, fmt.Sprintf("g%d-%d", g, i), fields)
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				if a.status >= 300 {
					fails++
				}
			}
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, a := range answers {
		switch {
		case a.status >= 200 && a.status < 300:
			ok++
		case a.status == http.StatusInternalServerError && strings.Contains(a.body, "disk full (ENOSPC)"):
			refused++
		default:
			t.Fatalf("unexpected answer %d: %s", a.status, a.body)
		}
	}
	if refused == 0 || ok == 0 {
		t.Fatalf("ok=%d refused=%d: the disk never filled or nothing succeeded after the reserve was released", ok, refused)
	}
	st, _ := s.Sub().Watcher().State("file")
	if st.Released == 0 {
		t.Fatalf("reserve never released: %+v", st)
	}
	// Health (unaudited) reports the pressure.
	tick <- time.Now()
	resp, err := hc.Get(s.URL + "/v1/sys/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(audit.HeaderStatus); got != audit.StatusCritical {
		t.Fatalf("audit status while full: %q", got)
	}

	// Free space: service resumes without a restart.
	if err := os.Remove(junk); err != nil {
		t.Fatal(err)
	}
	a := kvPut(hc, s.URL, s.RootToken, "after", fields)
	if a.status != http.StatusOK {
		t.Fatalf("after freeing space: %d %s", a.status, a.body)
	}
	answers = append(answers, a)
	tick <- time.Now() // the watcher re-creates the reserve
	tick <- time.Now()
	if st, _ := s.Sub().Watcher().State("file"); st.ReserveHeld != 1<<20 {
		t.Fatalf("reserve not re-created: %+v", st)
	}
	s.Stop()
	ids := byRequestID(readLog(t, logPath))
	for _, a := range answers {
		if a.status >= 200 && a.status < 300 && (!ids[a.id]["request"] || !ids[a.id]["response"]) {
			t.Fatalf("request %s answered %d without its entries: %v", a.id, a.status, ids[a.id])
		}
	}
	rep, err := chain.VerifyLog(t.Context(), logPath, chain.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify: %v %v", rep, err)
	}
	t.Logf("ok=%d refused=%d; %s", ok, refused, rep)
}
