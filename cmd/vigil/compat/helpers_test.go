//go:build compat

package compat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigilsec/vigil/core/testsvc"
)

// compatBin is the Vault-compatible CLI under test.
func compatBin(t *testing.T) string {
	t.Helper()
	b := os.Getenv("VIGIL_COMPAT_BIN")
	if b == "" {
		t.Fatal("VIGIL_COMPAT_BIN is not set: name a vault or bao binary (make compat says how)")
	}
	return b
}

// vigilBin is the server under test: $VIGIL_BIN or a fresh build.
func vigilBin(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("VIGIL_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "vigil")
	if b, err := exec.Command("go", "build", "-o", out, "github.com/vigilsec/vigil/cmd/vigil").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or timeout passes (a condition wait,
// not a timed assertion: the timeout only bounds a broken run).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// proc is a background process whose output is kept for failure messages.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func startProc(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &bytes.Buffer{}}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// cli runs the compatibility CLI against a server.
type cli struct {
	t     *testing.T
	bin   string
	addr  string
	token string
}

func (c *cli) env() []string {
	return []string{"VAULT_ADDR=" + c.addr, "BAO_ADDR=" + c.addr, "VAULT_TOKEN=" + c.token, "BAO_TOKEN=" + c.token,
		"VAULT_FORMAT=", "BAO_FORMAT=", "HOME=" + c.t.TempDir()}
}

// run runs the CLI and returns stdout, stderr and the exit code.
func (c *cli) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), c.env()...)
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return so.String(), se.String(), code
}

// ok runs the CLI, fails the test unless it exits 0, and checks that stdout
// contains each of want.
func (c *cli) ok(args []string, want ...string) string {
	c.t.Helper()
	out, errOut, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", filepath.Base(c.bin), strings.Join(args, " "), code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			c.t.Fatalf("%s %s: stdout lacks %q:\n%s", filepath.Base(c.bin), strings.Join(args, " "), w, out)
		}
	}
	return out
}

// jsonOut runs the CLI (args include -format=json) and decodes stdout.
func (c *cli) jsonOut(args ...string) map[string]any {
	c.t.Helper()
	out := c.ok(args)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		c.t.Fatalf("%v: not JSON: %v\n%s", args, err, out)
	}
	return m
}

// startVigil starts the Vigil binary with args and waits until it answers
// sys/seal-status.
func startVigil(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	p := startProc(t, nil, vigilBin(t), args...)
	waitFor(t, 60*time.Second, "the Vigil server at "+addr, func() bool {
		resp, err := http.Get("http://" + addr + "/v1/sys/seal-status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// pgURL is the PostgreSQL the database engine is pointed at.
func pgURL(t *testing.T) string {
	t.Helper()
	return testsvc.Env(t, "VIGIL_TEST_PG_URL")
}

func str(v any) string { return fmt.Sprint(v) }

// scratchAdmin creates a PostgreSQL role that may create roles, for a
// database engine mount whose root credentials the test rotates; it is
// dropped when the test ends (after revokeAllCreds has dropped the users
// the engine created).
func scratchAdmin(t *testing.T, admin *url.URL) (user, password string) {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	user, password = "compat_root_"+hex.EncodeToString(b[:4]), hex.EncodeToString(b[:])
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin.String())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(fmt.Sprintf(`CREATE ROLE %s LOGIN CREATEROLE PASSWORD '%s'`, user, password)); err != nil {
		t.Fatalf("create scratch role: %v", err)
	}
	t.Cleanup(func() { _ = exec("DROP ROLE IF EXISTS " + user) })
	return user, password
}

// revokeAllCreds revokes, when the test ends, every database lease the
// server still holds, so the users they created are dropped before the
// server stops. Register it before starting anything that requests
// credentials, so that those stop first.
func (c *cli) revokeAllCreds() {
	c.t.Cleanup(func() {
		if _, errOut, code := c.run("", "lease", "revoke", "-prefix", "database/creds/"); code != 0 {
			c.t.Errorf("revoke the remaining database leases: %s", errOut)
		}
		if out, _, code := c.run("", "list", "sys/leases/lookup/database/creds/"); code == 0 {
			c.t.Errorf("database leases remain after revoke -prefix:\n%s", out)
		}
	})
}
