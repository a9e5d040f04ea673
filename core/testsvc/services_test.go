package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The drivers in .ci/services (up.sh, down.sh, run.sh and lib.sh) are
// tested here with harmless fake services in a private folder, so the
// shared services of the machine are never touched.

// fakeService is a service script: start appends "<name> starting" to the
// events file, waits until $FAKE_PARALLEL services are starting (so the
// starts must run in parallel), then fails if its name is in $FAKE_FAIL,
// reports itself unavailable if it is in $FAKE_UNAVAILABLE, and otherwise
// creates its state file; stop removes it.
const fakeService = `#!/usr/bin/env bash
set -euo pipefail
SVC_NAME=%[1]s
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
state="$VIGIL_SERVICES_DIR/%[1]s.running"
events="$VIGIL_SERVICES_DIR/events"
case "${1:-}" in
  start)
    echo "%[1]s starting" >>"$events"
    end=$(( $(date +%%s) + 30 ))
    until (( $(grep -c ' starting$' "$events") >= ${FAKE_PARALLEL:-1} )); do
      (( $(date +%%s) < end )) || { echo "%[1]s: the other starts never came"; exit 1; }
      sleep 0.05
    done
    case " ${FAKE_FAIL:-} " in *" %[1]s "*) echo "%[1]s: cannot bind 127.0.0.1:1 (fake log line)"; exit 1 ;; esac
    case " ${FAKE_UNAVAILABLE:-} " in *" %[1]s "*) echo "%[1]s: SKIP: no network here"; exit 3 ;; esac
    touch "$state"
    echo "%[1]s ready" ;;
  stop) rm -f "$state"; echo "%[1]s stopped" >>"$events" ;;
  env) echo "export VIGIL_TEST_%[2]s_ADDR=fake-%[1]s" ;;
  packages) ;;
  *) exit 2 ;;
esac
`

// mustFakeServices copies the drivers into a temporary folder with fake
// services named names, and returns that folder and a state folder.
func mustFakeServices(tb testing.TB, names ...string) (scripts, state string) {
	tb.Helper()
	Tool(tb, "bash")
	Tool(tb, "flock")
	src := filepath.Join(moduleRoot(tb), ".ci", "services")
	scripts, state = tb.TempDir(), tb.TempDir()
	for _, f := range []string{"lib.sh", "up.sh", "down.sh", "run.sh"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(scripts, f), b, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, n := range names {
		body := fmt.Sprintf(fakeService, n, strings.ToUpper(n))
		if err := os.WriteFile(filepath.Join(scripts, n+".sh"), []byte(body), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return scripts, state
}

// driver is a command running one of the drivers.
func driver(scripts, state string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command("bash", append([]string{filepath.Join(scripts, args[0])}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "VIGIL_SERVICES_DIR="+state, "VIGIL_CACHE_DIR="+filepath.Join(state, "cache"), "VIGIL_SERVICES=")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func running(tb testing.TB, state string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(state, "*.running"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// run.sh starts every service in parallel, gives the command their
// settings, passes its exit status through and stops the services after.
func TestRunStartsInParallelAndStops(t *testing.T) {
	scripts, state := mustFakeServices(t, "alpha", "beta", "gamma")
	var out bytes.Buffer
	cmd := driver(scripts, state, []string{"FAKE_PARALLEL=3"}, "run.sh", "sh", "-c",
		`test "$VIGIL_TEST_BETA_ADDR" = fake-beta && test "$VIGIL_REQUIRE_SERVICES" = 1 && ls "$VIGIL_SERVICES_DIR"/*.running | wc -l >"$VIGIL_SERVICES_DIR/seen" && exit 7`)
	cmd.Stdout, cmd.Stderr = &out, &out
	if code := exitCode(cmd.Run()); code != 7 {
		t.Fatalf("run.sh exit %d, want the command's 7\n%s", code, &out)
	}
	if b, _ := os.ReadFile(filepath.Join(state, "seen")); strings.TrimSpace(string(b)) != "3" {
		t.Fatalf("the command saw %q services running, want 3\n%s", b, &out)
	}
	if r := running(t, state); len(r) != 0 {
		t.Fatalf("still running after run.sh: %v\n%s", r, &out)
	}
}

// A service that fails to start half-way stops the setup at once, prints
// its log, never runs the command, and the services that did start are
// stopped.
func TestRunStopsServicesWhenSetupFails(t *testing.T) {
	scripts, state := mustFakeServices(t, "alpha", "beta", "gamma")
	marker := filepath.Join(state, "ran")
	var out bytes.Buffer
	cmd := driver(scripts, state, []string{"FAKE_PARALLEL=3", "FAKE_FAIL=beta"}, "run.sh", "touch", marker)
	cmd.Stdout, cmd.Stderr = &out, &out
	if code := exitCode(cmd.Run()); code == 0 {
		t.Fatalf("run.sh succeeded although beta failed\n%s", &out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran although the services did not start")
	}
	if !strings.Contains(out.String(), "beta: cannot bind 127.0.0.1:1 (fake log line)") {
		t.Fatalf("the failing service's log is not printed:\n%s", &out)
	}
	if r := running(t, state); len(r) != 0 {
		t.Fatalf("services left running after a failed setup: %v\n%s", r, &out)
	}
}

// An interrupt of run.sh while the command runs ends the command (all its
// processes) and stops the services.
func TestRunStopsServicesOnInterrupt(t *testing.T) {
	Tool(t, "setsid")
	scripts, state := mustFakeServices(t, "alpha", "beta")
	pidFile := filepath.Join(state, "sleeper.pid")
	var out bytes.Buffer
	cmd := driver(scripts, state, []string{"FAKE_PARALLEL=2"}, "run.sh", "sh", "-c",
		`sleep 300 & echo $! >"`+pidFile+`.tmp"; mv "`+pidFile+`.tmp" "`+pidFile+`"; wait`)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var sleeper int
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for sleeper == 0 {
		if b, err := os.ReadFile(pidFile); err == nil {
			sleeper, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run.sh ended before the command started: %v\n%s", err, &out)
		case <-ctx.Done():
			t.Fatalf("the command never started\n%s", &out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if exitCode(err) == 0 {
			t.Fatalf("run.sh exited 0 after an interrupt\n%s", &out)
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		t.Fatalf("run.sh did not end after SIGTERM\n%s", &out)
	}
	if r := running(t, state); len(r) != 0 {
		t.Fatalf("services left running after an interrupt: %v\n%s", r, &out)
	}
	// The command's own child is gone too (kill -0 fails), not orphaned.
	for syscall.Kill(sleeper, 0) == nil {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(sleeper, syscall.SIGKILL)
			t.Fatalf("the command's process %d outlived run.sh", sleeper)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A service that is unavailable here (start exit 3) does not stop the
// others: env.sh names the reason, which testsvc.Env reports.
func TestUpRecordsUnavailableService(t *testing.T) {
	scripts, state := mustFakeServices(t, "alpha", "kafka")
	var out bytes.Buffer
	cmd := driver(scripts, state, []string{"FAKE_UNAVAILABLE=kafka"}, "up.sh")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("up.sh: %v\n%s", err, &out)
	}
	env, err := os.ReadFile(filepath.Join(state, "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VIGIL_TEST_ALPHA_ADDR=fake-alpha", "VIGIL_TEST_KAFKA_SKIP_REASON='no network here'", "VIGIL_REQUIRE_SERVICES=1"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("env.sh lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(string(env), "VIGIL_TEST_KAFKA_ADDR") {
		t.Errorf("env.sh names the unavailable service's address:\n%s", env)
	}
	if err := driver(scripts, state, nil, "down.sh").Run(); err != nil {
		t.Fatal(err)
	}
	if r := running(t, state); len(r) != 0 {
		t.Fatalf("down.sh left %v running", r)
	}
}

// apt_install waits for the dpkg lock held by another apt instead of
// failing at once: every apt-get call carries DPkg::Lock::Timeout.
func TestAptWaitsForTheDpkgLock(t *testing.T) {
	scripts, state := mustFakeServices(t)
	bin := t.TempDir()
	calls := filepath.Join(state, "apt-calls")
	fakes := map[string]string{
		"apt-get": "#!/bin/sh\necho \"$*\" >>" + calls + "\n",
		"dpkg":    "#!/bin/sh\nexit 1\n", // nothing is installed
		"id":      "#!/bin/sh\necho 0\n", // root
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-c", `source "$1/lib.sh"; apt_install fake-package-one fake-package-two`, "sh", scripts)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "VIGIL_SERVICES_DIR="+state,
		"VIGIL_CACHE_DIR="+filepath.Join(state, "cache"), "VIGIL_POLICY_RC_D="+filepath.Join(state, "policy-rc.d"), "VIGIL_APT_UPDATED=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt_install: %v\n%s", err, out)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "update") || !strings.Contains(lines[1], "install") {
		t.Fatalf("apt-get calls = %q, want update then install", lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, "DPkg::Lock::Timeout=600") {
			t.Errorf("apt-get %s: no DPkg::Lock::Timeout", l)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "policy-rc.d")); err == nil {
		t.Error("the policy-rc.d guard was left behind")
	}
}

// aptCall matches a line that runs apt-get (as a command, not in a message).
var aptCall = regexp.MustCompile(`(^|[;&|(]|\bthen|\bdo)\s*apt-get\s`)

// Every apt-get call in the service scripts waits for the dpkg lock.
func TestServiceScriptsUseAptInstall(t *testing.T) {
	dir := filepath.Join(moduleRoot(t), ".ci", "services")
	files, err := filepath.Glob(filepath.Join(dir, "*.sh"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in %s: %v", dir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "#")
			if aptCall.MatchString(code) && !strings.Contains(code, "Lock::Timeout") && !strings.Contains(code, "lockopt") {
				t.Errorf("%s:%d: apt-get without DPkg::Lock::Timeout (use apt_install from lib.sh): %s", filepath.Base(f), i+1, strings.TrimSpace(line))
			}
		}
	}
}
