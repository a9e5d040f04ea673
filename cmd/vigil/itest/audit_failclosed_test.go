package itest

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// With a device whose writes fail, requests are refused before they run:
// KV writes are not applied and reads return no data. With the fault
// cleared, service resumes without a restart.
func TestAuditFailClosedWithFaultyDevice(t *testing.T) {
	dir := t.TempDir()
	var failAll, failResponses atomic.Bool
	faults := &chain.Faults{BeforeWrite: func(batch []byte) (int, error) {
		if failAll.Load() || failResponses.Load() && bytes.Contains(batch, []byte(`"type":"response"`)) {
			return 0, syscall.EIO
		}
		return 0, nil
	}}
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{Faults: func(string) *chain.Faults { return faults }})
	c := s.Client
	if _, err := c.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"v": "one"}}); err != nil {
		t.Fatal(err)
	}

	failAll.Store(true)
	_, err := c.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"v": "two"}})
	wantStatus(t, err, http.StatusInternalServerError)
	if !strings.Contains(err.Error(), "audit: the request entry could not be recorded, so the request was not executed") || !strings.Contains(err.Error(), `device "file"`) {
		t.Fatalf("error does not say the audit failed: %v", err)
	}
	sec, err := c.Logical().Read("secret/data/app")
	wantStatus(t, err, http.StatusInternalServerError)
	if sec != nil {
		t.Fatalf("a read returned data while audit was failing: %v", sec.Data)
	}
	// Health (unaudited) reports it.
	h, err := rawRequest(t, c, http.MethodGet, "/v1/sys/health", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Header.Get(auditsvc.HeaderStatus); got != auditsvc.StatusCritical {
		t.Fatalf("health header while failing: %q", got)
	}
	h.Body.Close()

	failAll.Store(false)
	sec, err = c.Logical().Read("secret/data/app")
	if err != nil {
		t.Fatalf("service did not resume after the fault cleared: %v", err)
	}
	if v := sec.Data["data"].(map[string]any)["v"]; v != "one" {
		t.Fatalf("the refused write was applied: v=%v", v)
	}

	// Response entry failure: the handler ran, but its answer is withheld.
	failResponses.Store(true)
	_, err = c.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"v": "three"}})
	wantStatus(t, err, http.StatusInternalServerError)
	if !strings.Contains(err.Error(), "the request was executed, but its response entry could not be recorded") {
		t.Fatalf("got %v", err)
	}
	failResponses.Store(false)
	if _, err := c.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"v": "four"}}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	rep, err := chain.VerifyLog(t.Context(), auditLogPath(dir), chain.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("log after faults does not verify: %v %v", rep, err)
	}
}

// A declared device that cannot be opened at unseal does not stop the
// server: requests fail closed naming it, health says critical, and once
// the cause is fixed the device opens by itself (retried on maintenance
// ticks) and service resumes.
func TestAuditDeviceOpenRetried(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	tick := make(chan time.Time)
	s := mustAuditServer(t, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{{Type: "file", Name: "file", Options: map[string]config.Value{"path": {Value: filepath.Join(blocker, "audit.log")}}}}
	}}, auditsvc.Options{Ticker: func() (<-chan time.Time, func()) { return tick, func() {} }})
	_, err := s.Client.Logical().Read("secret/data/x")
	wantStatus(t, err, http.StatusInternalServerError)
	if !strings.Contains(err.Error(), `device "file": cannot open`) {
		t.Fatalf("%v", err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		tick <- time.Now()
	}
	if _, err := s.Client.Logical().Write("secret/data/x", map[string]any{"data": map[string]any{"a": "b"}}); err != nil {
		t.Fatalf("device did not reopen: %v", err)
	}
}
