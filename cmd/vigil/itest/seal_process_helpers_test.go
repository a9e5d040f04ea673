package itest

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

var (
	sealBinOnce sync.Once
	sealBinPath string
	sealBinErr  error
)

// sealBinary is the vigil binary the seal process tests run: $VIGIL_BIN, or
// one `go build` shared by every test of the package run.
func sealBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("VIGIL_BIN"); b != "" {
		return b
	}
	sealBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-seal-bin-")
		if err != nil {
			sealBinErr = err
			return
		}
		sealBinPath = filepath.Join(dir, "vigil")
		if out, err := exec.Command("go", "build", "-o", sealBinPath, "github.com/vigilsec/vigil/cmd/vigil").CombinedOutput(); err != nil {
			sealBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if sealBinErr != nil {
		t.Fatal(sealBinErr)
	}
	return sealBinPath
}

// vigilProc is a `vigil server -config` child process on a fixed address.
type vigilProc struct {
	t       *testing.T
	bin     string
	dir     string
	addr    string
	URL     string
	cmd     *exec.Cmd
	logPath string
	started time.Time
	Client  *vaultapi.Client
}

// newVigilProc prepares (without starting) a server in dir listening on a
// free loopback port.
func newVigilProc(t *testing.T, dir string) *vigilProc {
	t.Helper()
	addr := freeAddr(t)
	p := &vigilProc{t: t, bin: sealBinary(t), dir: dir, addr: addr, URL: "http://" + addr, logPath: filepath.Join(dir, "server.log")}
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: p.URL, MaxRetries: 0, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p.Client = c
	t.Cleanup(p.Stop)
	return p
}

// Start writes the config with the given seal blocks (HCL) and starts the
// process; it returns once the HTTP API answers.
func (p *vigilProc) Start(sealHCL string) {
	p.t.Helper()
	if p.cmd != nil {
		p.t.Fatal("vigilProc: already running")
	}
	cfg := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "node1"
}
listener "tcp" {
  address     = %q
  tls_disable = true
}
audit "file" "file" {
  path = %q
}
%s
`, filepath.Join(p.dir, "storage"), p.addr, filepath.Join(p.dir, "audit", "audit.log"), sealHCL)
	cfgPath := filepath.Join(p.dir, "vigil.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.startArgs("server", "-config", cfgPath)
}

// StartDev starts `vigil server -dev` with root token "root".
func (p *vigilProc) StartDev() {
	p.t.Helper()
	p.startArgs("server", "-dev", "-dev-data-dir", p.dir, "-dev-listen-address", p.addr, "-dev-root-token-id", "root")
	p.Client.SetToken("root")
}

func (p *vigilProc) startArgs(args ...string) {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	_ = logf.Close()
	p.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/v1/sys/seal-status")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			p.Stop()
			p.t.Fatalf("vigil did not answer on %s: %v\n%s", p.URL, err, p.Log())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits (idempotent).
func (p *vigilProc) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// Kill sends SIGKILL (a crash) and waits.
func (p *vigilProc) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// Log returns the server's output so far.
func (p *vigilProc) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// WaitUnsealed polls sys/seal-status until unsealed and returns the time
// from process start.
func (p *vigilProc) WaitUnsealed(timeout time.Duration) time.Duration {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		st, err := p.Client.Sys().SealStatus()
		if err == nil && !st.Sealed {
			return time.Since(p.started)
		}
		if err == nil && len(st.Warnings) > 0 {
			last = st.Warnings[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("still sealed after %s (last warning %q)\n%s", timeout, last, p.Log())
	return 0
}

// WaitWarning polls sys/seal-status until it carries a warning containing
// every want, and returns it; the server must still be sealed.
func (p *vigilProc) WaitWarning(timeout time.Duration, want ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var st *vaultapi.SealStatusResponse
	var err error
	for time.Now().Before(deadline) {
		st, err = p.Client.Sys().SealStatus()
		if err == nil && len(st.Warnings) > 0 {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(st.Warnings[0], w)
			}
			if ok {
				if !st.Sealed {
					p.t.Fatalf("unsealed although the seal reports %q", st.Warnings[0])
				}
				return st.Warnings[0]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("no seal warning containing %q after %s: status %+v, %v\n%s", want, timeout, st, err, p.Log())
	return ""
}

// initAuto initialises an auto-sealed server with recovery keys and holder
// labels, and returns the response.
func initAuto(t *testing.T, c *vaultapi.Client, shares, threshold int, holders []string) *vaultapi.InitResponse {
	t.Helper()
	r := c.NewRequest("PUT", "/v1/sys/init")
	if err := r.SetJSONBody(map[string]any{"recovery_shares": shares, "recovery_threshold": threshold, "key_holders": holders}); err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 RawRequest: key_holders is Vigil's own field.
	resp, err := c.RawRequest(r)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	defer resp.Body.Close()
	var out vaultapi.InitResponse
	if err := resp.DecodeJSON(&out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// wantSealedRefusal checks that a request is refused with 503 while sealed.
func wantSealedRefusal(t *testing.T, c *vaultapi.Client, path string) {
	t.Helper()
	_, err := c.Logical().Read(path)
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("read %s while sealed: %v; want 503", path, err)
	}
}

var vaultapiMountTransit = vaultapi.MountInput{Type: "transit"}
