package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// bare builds a server with no engines or subsystems: enough for the
// HTTP layer.
func bare(cfg *config.Config) (server.Options, error) { return server.Options{Config: cfg}, nil }

// Every listener block is served, each with its own max_request_size.
func TestEveryListenerServes(t *testing.T) {
	srv := servertest.MustStart(t, bare, servertest.Options{Configure: func(cfg *config.Config) {
		cfg.Listeners = append(cfg.Listeners, config.Listener{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true, MaxRequestSize: 1024})
	}})
	addrs := srv.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want both listener blocks", addrs)
	}
	for _, a := range addrs {
		resp, err := http.Get("http://" + a + "/v1/sys/health")
		if err != nil {
			t.Fatalf("listener %s: %v", a, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("listener %s: sys/health %d", a, resp.StatusCode)
		}
	}
	body := `{"v":"` + strings.Repeat("x", 2048) + `"}`
	status := func(a string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+a+"/v1/secret/data/x", strings.NewReader(body))
		req.Header.Set("X-Vault-Token", srv.RootToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(addrs[1]); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 KiB body on the listener with max_request_size 1024: %d, want 413", got)
	}
	if got := status(addrs[0]); got == http.StatusRequestEntityTooLarge {
		t.Fatal("the first listener took the second's max_request_size")
	}
}

// closedWithin reports whether the server ends the connection (EOF or
// reset, possibly after an error response) before limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) (string, bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	got, err := io.ReadAll(bufio.NewReader(c))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return string(got), false
	}
	return string(got), true
}

// A client cannot hold a connection: not by sending nothing, not by
// trickling headers, not by trickling a body, and not by staying idle.
func TestSlowClientsAreCut(t *testing.T) {
	srv := servertest.MustStart(t, bare, servertest.Options{Configure: func(cfg *config.Config) {
		cfg.Listeners[0].ReadHeaderTimeout = 300 * time.Millisecond
		cfg.Listeners[0].ReadTimeout = 600 * time.Millisecond
		cfg.Listeners[0].IdleTimeout = 600 * time.Millisecond
	}})
	addr := srv.Addr()
	// The wait is far beyond the configured limits: the assertion is that
	// the server ends the connection at all, not how fast.
	const wait = 20 * time.Second
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// trickle writes one line every 50 ms until the connection fails.
	trickle := func(c net.Conn, line string) {
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := c.Write([]byte(line)); err != nil {
					return
				}
			}
		}()
	}
	t.Run("silent", func(t *testing.T) {
		c := dial(t)
		if _, ok := closedWithin(t, c, wait); !ok {
			t.Fatal("a connection that sends nothing is kept open")
		}
	})
	t.Run("headers", func(t *testing.T) {
		c := dial(t)
		fmt.Fprint(c, "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n")
		trickle(c, "X-Slow: y\r\n")
		if _, ok := closedWithin(t, c, wait); !ok {
			t.Fatal("a client trickling headers holds the connection")
		}
	})
	t.Run("body", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "POST /v1/secret/data/x HTTP/1.1\r\nHost: x\r\nX-Vault-Token: %s\r\nContent-Length: 1000000\r\n\r\n{\"a\":\"", srv.RootToken)
		trickle(c, "x")
		got, ok := closedWithin(t, c, wait)
		if !ok {
			t.Fatal("a client trickling a body holds the connection")
		}
		if strings.HasPrefix(got, "HTTP/1.1 5") {
			t.Fatalf("a slow body got a server error:\n%s", got)
		}
	})
	t.Run("idle", func(t *testing.T) {
		c := dial(t)
		fmt.Fprint(c, "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
		got, ok := closedWithin(t, c, wait)
		if !ok {
			t.Fatal("an idle keep-alive connection is kept open")
		}
		if !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Fatalf("the request before going idle was not answered:\n%s", got)
		}
	})
	t.Run("huge header", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", server.MaxHeaderBytes+8192))
		got, _ := closedWithin(t, c, wait)
		if !strings.HasPrefix(got, "HTTP/1.1 431") {
			t.Fatalf("an oversize header: %q, want 431", firstLine(got))
		}
	})
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// The timeout keys of a listener block are Vault's.
func TestListenerTimeoutKeys(t *testing.T) {
	cfg, err := config.Parse("t.hcl", []byte(`
storage "raft" { path = "/tmp/x" }
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
  http_read_header_timeout = "2s"
  http_read_timeout = 45
  http_write_timeout = "0"
  http_idle_timeout = "1m"
}
listener "tcp" {
  address = "127.0.0.1:8202"
  tls_disable = true
}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listeners) != 2 {
		t.Fatalf("%d listeners", len(cfg.Listeners))
	}
	l := cfg.Listeners[0]
	if l.ReadHeaderTimeout != 2*time.Second || l.ReadTimeout != 45*time.Second || l.WriteTimeout >= 0 || l.IdleTimeout != time.Minute {
		t.Fatalf("timeouts %+v", l)
	}
	_, err = config.Parse("t.hcl", []byte(`
listener "tcp" {
  tls_disable = true
  http_read_header_timeout = 0
}`))
	if err == nil || !strings.Contains(err.Error(), "http_read_header_timeout") {
		t.Fatalf("a zero header timeout: %v", err)
	}
}
