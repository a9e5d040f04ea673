package itest

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIBinary builds the vigil binary, runs `vigil server -dev` as a
// subprocess, and drives it with `vigil kv put/get` subprocesses that get
// the address and token only from VAULT_ADDR/VAULT_TOKEN (the fallback
// variables), then stops the server with SIGTERM.
func TestCLIBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vigilsec/vigil/cmd/vigil").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	addr := freeLoopbackAddr(t)
	const rootToken = "cli-binary-root"
	var srvOut bytes.Buffer
	srv := exec.Command(bin, "server", "-dev", "-dev-listen-address", addr, "-dev-data-dir", filepath.Join(dir, "data"),
		"-dev-root-token-id", rootToken)
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	srv.Env = cliEnv(dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false // set once exited has been received from
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Process.Kill()
			<-exited
		}
	})

	// Poll sys/health until the server answers 200 (initialised, unsealed, active).
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("server exited early: %v\n%s", err, srvOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 60s (last error %v)\n%s", err, srvOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	env := append(cliEnv(dir), "VAULT_ADDR="+url, "VAULT_TOKEN="+rootToken)
	vigil := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		var o, e bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatalf("vigil %v: %v", args, err)
		}
		return code, o.String(), e.String()
	}

	code, out, errOut := vigil("kv", "put", "secret/hello", "foo=bar")
	if code != 0 || !strings.Contains(out, "secret/data/hello") {
		t.Fatalf("kv put: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = vigil("kv", "get", "-field=foo", "secret/hello")
	if code != 0 || out != "bar" {
		t.Fatalf("kv get -field=foo: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, out, _ = vigil("status"); code != 0 || !strings.Contains(out, "Sealed") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	if code, _, errOut = vigil("kv", "get", "secret/missing"); code != 2 || !strings.Contains(errOut, "No value found at secret/data/missing") {
		t.Fatalf("missing secret: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ = vigil("kv", "get", "-nosuchflag", "secret/hello"); code != 1 {
		t.Fatalf("bad flag: exit %d, want 1", code)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v\n%s", err, srvOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server still running 30s after SIGTERM\n%s", srvOut.String())
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cliEnv is the environment without any VIGIL_*/VAULT_* variable, with
// HOME set to dir so no token file is read or written elsewhere.
func cliEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VIGIL_") || strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+dir)
}
