package itest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// within runs fn and fails the test if it has not returned after a
// generous watchdog: a hang detector, not a speed target.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s hung", what)
	}
}

// sys/seal is an emergency stop: with the audit disk hung (every fsync
// blocks), the seal still happens — the keys go first, its request entry
// being given up on after the device's write timeout — and seal-status and
// health answer while the device's writer is still stuck. The response of
// sys/seal cannot be recorded, so the client is told the request was
// executed and its response withheld. Once the disk recovers, the device
// reopens for the sealed state, and unsealing brings service back with a
// chain that verifies.
func TestSealWithHungAuditDisk(t *testing.T) {
	dir := t.TempDir()
	var hung atomic.Bool
	var mu sync.Mutex
	release := make(chan struct{})
	faults := &chain.Faults{BeforeSync: func() error {
		if hung.Load() {
			mu.Lock()
			ch := release
			mu.Unlock()
			<-ch
		}
		return nil
	}}
	var sub *auditsvc.Subsystem
	build := func(cfg *config.Config) (server.Options, error) {
		so, err := wire.Options(cfg)
		// The device never gives up on its own; the server's bound on each
		// teardown step is what keeps sys/seal from hanging.
		sub = auditsvc.NewSubsystem(auditsvc.Options{Faults: func(string) *chain.Faults { return faults }, LifecycleTimeout: time.Hour})
		so.Subsystems = withAudit(so.Subsystems, sub)
		so.TeardownTimeout = 300 * time.Millisecond
		return so, err
	}
	s := servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, map[string]string{"write_timeout": "200ms"})}
	}})
	if _, err := s.Client.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"v": "1"}}); err != nil {
		t.Fatal(err)
	}
	pub, _ := sub.PublicKey()

	hung.Store(true)
	var sealErr error
	within(t, "sys/seal", func() { sealErr = s.Client.Sys().Seal() })
	wantStatus(t, sealErr, http.StatusInternalServerError)
	if !strings.Contains(sealErr.Error(), "the request was executed") {
		t.Fatalf("sys/seal: %v", sealErr)
	}
	// The writer is still stuck: seal-status and health answer anyway.
	within(t, "seal-status", func() {
		st, err := s.Client.Sys().SealStatus()
		if err != nil || !st.Sealed {
			t.Errorf("seal-status: %+v %v", st, err)
		}
	})
	within(t, "health", func() {
		resp, err := rawRequest(t, s.Client, http.MethodGet, "/v1/sys/health", nil)
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("health: %v %v", resp, err)
		}
	})
	within(t, "a request while sealed", func() {
		if sec, err := s.Client.Logical().Read("secret/data/app"); err == nil || sec != nil {
			t.Errorf("served while sealed: %v", sec)
		}
	})

	// The disk recovers: the device reopens for the sealed state and records
	// rejections again.
	mu.Lock()
	close(release)
	mu.Unlock()
	hung.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Client.Logical().Read("secret/data/app")
		if statusOf(err) == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sealed rejections still not recorded after the disk recovered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.DevBootstrap(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.Logical().Write("secret/data/app", map[string]any{"data": map[string]any{"v": "2"}}); err != nil {
		t.Fatalf("after unseal: %v", err)
	}
	s.Stop()
	rep, err := chain.VerifyLog(t.Context(), auditLogPath(dir), chain.VerifyOptions{PublicKey: pub, NodeID: "test-node"})
	if err != nil || !rep.OK {
		t.Fatalf("chain after the hang: %v %v", rep, err)
	}
}
