package itest

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/testsvc"
)

// mustConfig writes a minimal production (non-dev) configuration.
func mustConfig(t *testing.T, addr string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "vigil.hcl")
	cfg := fmt.Sprintf(`storage "raft" {
  path = %q
  node_id = "n1"
}
listener "tcp" {
  address = %q
  tls_disable = true
}
%s
`, filepath.Join(dir, "data"), addr, extra)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lockedKB is VmLck of the process, in kB.
func lockedKB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmLck:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	t.Fatal("no VmLck in /proc/pid/status")
	return 0
}

// startServer runs `vigil server -config` until sys/health answers.
func startServer(t *testing.T, bin, cfg, addr string) *exec.Cmd {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, "server", "-config", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer: %v\n%s", err, &out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A production server locks its memory unless disable_mlock = true.
func TestServerLocksMemory(t *testing.T) {
	testsvc.Root(t) // CAP_IPC_LOCK
	bin := vigilBinary(t)
	addr := freeAddr(t)
	cmd := startServer(t, bin, mustConfig(t, addr, ""), addr)
	if kb := lockedKB(t, cmd.Process.Pid); kb == 0 {
		t.Fatal("disable_mlock is false but no memory is locked (VmLck 0 kB)")
	}
	addr = freeAddr(t)
	cmd = startServer(t, bin, mustConfig(t, addr, "disable_mlock = true"), addr)
	if kb := lockedKB(t, cmd.Process.Pid); kb != 0 {
		t.Fatalf("disable_mlock = true but %d kB are locked", kb)
	}
}

// Without the right to lock memory the server refuses to start and says
// how to fix it.
func TestServerWithoutMlockRightRefusesToStart(t *testing.T) {
	testsvc.Root(t)
	setpriv, prlimit := testsvc.Tool(t, "setpriv"), testsvc.Tool(t, "prlimit")
	bin := vigilBinary(t)
	addr := freeAddr(t)
	cmd := exec.Command(prlimit, "--memlock=65536:65536", setpriv, "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock",
		bin, "server", "-config", mustConfig(t, addr, ""))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the server started without being able to lock memory:\n%s", out)
	}
	for _, want := range []string{"failed to lock memory", "CAP_IPC_LOCK", "disable_mlock"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the error does not mention %s:\n%s", want, out)
		}
	}
}
