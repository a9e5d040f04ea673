package shiptest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/testsvc"
)

// ServiceLock is a test's hold on a shared service (see Use).
type ServiceLock struct {
	f       *os.File
	service string
}

// Use marks the test as a user of the named shared service for the rest of
// the test: it takes a shared lock, so a test in another package that stops
// the service (Outage) waits until this one is done, and vice versa. The
// lock is a flock(2) on a file in $VIGIL_SERVICES_DIR (or the temp folder),
// so it holds across the test binaries `go test ./...` runs in parallel.
// Released at cleanup.
func Use(tb testing.TB, service string) *ServiceLock {
	tb.Helper()
	dir := os.Getenv("VIGIL_SERVICES_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(dir, "vigil-test-"+service+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		tb.Fatalf("service lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		tb.Fatalf("service lock: %v", err)
	}
	tb.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
	return &ServiceLock{f: f, service: service}
}

// exclusive turns the hold into an exclusive one (released, then taken
// again exclusively, so two tests upgrading at once cannot deadlock).
func (l *ServiceLock) exclusive(tb testing.TB) {
	tb.Helper()
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX); err != nil {
		tb.Fatalf("service lock: %v", err)
	}
}

// Control runs a service control script (VIGIL_TEST_*_CTL) with start,
// stop or status.
func Control(tb testing.TB, script, action string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, action).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", script, action, err, out)
	}
	tb.Logf("%s %s: %s", filepath.Base(script), action, strings.TrimSpace(string(out)))
}

// Outage returns Stop and Start functions driving the service's control
// script (named by ctlEnv, e.g. VIGIL_TEST_KAFKA_CTL). The script is looked
// up at the first Stop (testsvc.Env: a missing one skips, or fails under
// VIGIL_REQUIRE_SERVICES=1, the outage test only). The first Stop makes
// the test's hold exclusive (waiting for other users to finish), and a
// cleanup starts the service again if the test ends while it is down, so
// the shared service is always running when the test is over.
func (l *ServiceLock) Outage(tb testing.TB, ctlEnv string) (stop, start func(testing.TB)) {
	tb.Helper()
	var script string
	down, excl := false, false
	tb.Cleanup(func() {
		if down {
			Control(tb, script, "start")
		}
	})
	return func(tb testing.TB) {
			tb.Helper()
			if script == "" {
				script = testsvc.Env(tb, ctlEnv)
			}
			if !excl {
				l.exclusive(tb)
				excl = true
			}
			down = true
			Control(tb, script, "stop")
		}, func(tb testing.TB) {
			tb.Helper()
			Control(tb, script, "start")
			down = false
		}
}
