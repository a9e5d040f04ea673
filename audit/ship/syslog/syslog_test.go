package syslog

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/format/cef"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/testsvc"
)

// received reads what the real rsyslog (.ci/services/rsyslog.sh) parsed
// from the messages of node: one entry per message, with rsyslog's view
// of its RFC 5424 fields.
type received struct {
	severity, hostname, app, msgID, sd, msg string
}

func readReceived(path, node string) ([]received, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []received
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		p := strings.SplitN(sc.Text(), "\t", 6)
		if len(p) != 6 || !strings.Contains(p[4], `node_id="`+node+`"`) {
			continue
		}
		out = append(out, received{p[0], p[1], p[2], p[3], p[4], p[5]})
	}
	return out, sc.Err()
}

// proxy is a TCP relay to the receiver that a test can cut and restore,
// to take the destination away without stopping the shared rsyslog.
type proxy struct {
	addr, to string
	mu       sync.Mutex
	ln       net.Listener
	conns    []net.Conn
}

func startProxy(tb testing.TB, to string) *proxy {
	p := &proxy{to: to}
	p.Start(tb)
	tb.Cleanup(func() { p.Stop(tb) })
	return p
}

func (p *proxy) Start(tb testing.TB) {
	tb.Helper()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port of a stopped proxy may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) Stop(testing.TB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func tlsTo(tb testing.TB) *tls.Config {
	ca := testsvc.Env(tb, "VIGIL_TEST_RSYSLOG_CA")
	pem, err := os.ReadFile(ca)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		tb.Fatal("no CA certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// TestConformanceTLS: the shippers' conformance suite over RFC 5425 (TLS,
// octet-counted frames) to a real rsyslog, reading back what rsyslog
// parsed: every line arrives, in order, the chain verifies from the
// messages alone, resends collapse, an outage only delays.
func TestConformanceTLS(t *testing.T) {
	addr := testsvc.Env(t, "VIGIL_TEST_RSYSLOG_TLS_ADDR")
	dir := testsvc.Env(t, "VIGIL_TEST_RSYSLOG_DIR")
	n := 0
	shiptest.Run(t, func(tb testing.TB) shiptest.Target {
		n++
		node := fmt.Sprintf("sl-tls-%d-%d", time.Now().UnixNano(), n)
		px := startProxy(tb, addr)
		sink := NewSink(Config{Address: px.addr, TLS: tlsTo(tb), Render: ship.Render{Format: ship.FormatVault}, Hostname: node})
		tb.Cleanup(func() { sink.Close() })
		return shiptest.Target{Sink: sink, Read: readLines(filepath.Join(dir, "tls.log"), node), Stop: px.Stop, Start: px.Start}
	})
}

// readLines returns the original lines (format vault) rsyslog received
// from the sink whose hostname is host (unique per target: the receiver's
// file is shared by every test and run).
func readLines(path, host string) func(ctx context.Context) ([][]byte, error) {
	return func(ctx context.Context) ([][]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		var out [][]byte
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			p := strings.SplitN(sc.Text(), "\t", 6)
			if len(p) == 6 && p[1] == host && strings.Contains(p[4], `format="vault"`) {
				out = append(out, []byte(p[5]))
			}
		}
		return out, sc.Err()
	}
}

// TestCEFOverTCP: a CEF stream over plain TCP with one event per
// request: rsyslog parses each message (octet-counted, then LF-framed)
// with the node as hostname, the entry type as msgid and the severity the
// formats rate; request entries answered in the batch are left out.
func TestCEFOverTCP(t *testing.T) {
	addr := testsvc.Env(t, "VIGIL_TEST_RSYSLOG_TCP_ADDR")
	dir := testsvc.Env(t, "VIGIL_TEST_RSYSLOG_DIR")
	for _, framing := range []string{"octet-counting", "lf"} {
		node := fmt.Sprintf("sl-cef-%s-%d", framing, time.Now().UnixNano())
		l := shiptest.MustLog(t, node)
		at := time.Now().UTC().Format(time.RFC3339Nano)
		lines := []string{
			`{"time":"` + at + `","type":"request","auth":{"display_name":"token-oncall","policies":["default"],"policy_results":{"allowed":true,"granting_policies":[{"name":"break_glass","namespace_id":"root","type":"rego"}]}},"request":{"id":"r1","operation":"read","mount_type":"kv","mount_point":"phi/","path":"phi/data/p/1","remote_address":"10.0.0.7"},"vigil":{"flags":{"break_glass":"true"}}}`,
			`{"time":"` + at + `","type":"response","auth":{"display_name":"token-oncall","policies":["default"],"policy_results":{"allowed":true,"granting_policies":[{"name":"break_glass","namespace_id":"root","type":"rego"}]}},"request":{"id":"r1","operation":"read","mount_type":"kv","mount_point":"phi/","path":"phi/data/p/1","remote_address":"10.0.0.7"},"response":{},"vigil":{"flags":{"break_glass":"true"},"status":200}}`,
			`{"time":"` + at + `","type":"request","auth":{"display_name":"userpass-eve","policies":["default"],"policy_results":{"allowed":false}},"request":{"id":"r2","operation":"read","mount_type":"kv","mount_point":"secret/","path":"secret/data/x","remote_address":"10.0.0.8"}}`,
		}
		for _, b := range lines {
			if _, err := l.W.Append(context.Background(), []byte(b)); err != nil {
				t.Fatal(err)
			}
		}
		blk := config.Block{Type: "syslog", Name: "s", File: "t.hcl", Line: 1, Options: map[string]config.Value{
			"address": {Value: addr}, "transport": {Value: "tcp"}, "format": {Value: "cef"}, "events": {Value: "per_request"},
			"framing": {Value: framing}, "include_raw": {Value: "false"}}}
		sink, err := New(blk, ship.Env{NodeID: node, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		sh := shiptest.MustShipper(t, "s-"+framing, l, sink, ship.StorageCursors{S: storage.NewMemory()})
		shiptest.WaitCaughtUp(t, sh, l.Head(), time.Minute)
		var got []received
		shiptest.WaitFor(t, 30*time.Second, "rsyslog to write the messages", func() bool {
			got, err = readReceived(filepath.Join(dir, "tcp.log"), node)
			return err == nil && len(got) >= 2
		})
		var cefs []received
		for _, r := range got {
			if strings.HasPrefix(r.msg, "CEF:0|") && (r.msgID == "request" || r.msgID == "response") {
				cefs = append(cefs, r)
			}
		}
		if len(cefs) != 2 {
			t.Fatalf("%s: %d CEF events for 3 entries of which one request is answered (chain records aside): %+v", framing, len(cefs), got)
		}
		bg, eve := cefs[0], cefs[1]
		if bg.hostname != node || bg.app != "vigil" || bg.msgID != "response" || bg.severity != "3" {
			t.Errorf("%s: break-glass event fields %+v", framing, bg)
		}
		if eve.msgID != "request" || eve.severity != "4" {
			t.Errorf("%s: denied request fields %+v", framing, eve)
		}
		if ext := cef.Extension(bg.msg); ext["cs6"] != "break_glass=true" || ext["cs4"] != "break_glass:rego" {
			t.Errorf("%s: CEF extension %v", framing, ext)
		}
	}
}

func TestParseBlockErrors(t *testing.T) {
	for k, v := range map[string]string{"transport": "udp", "framing": "nul", "format": "leef", "events": "all", "facility": "local9"} {
		blk := config.Block{Type: "syslog", Name: "s", File: "t.hcl", Line: 1, Options: map[string]config.Value{
			"address": {Value: "127.0.0.1:1"}, k: {Value: v, File: "t.hcl", Line: 3}}}
		if _, err := ParseBlock(blk); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s = %q: %v", k, v, err)
		}
	}
	blk := config.Block{Type: "syslog", Name: "s", Options: map[string]config.Value{"address": {Value: "h:1"}, "format": {Value: "vault"}, "events": {Value: "per_request"}}}
	if _, err := ParseBlock(blk); err == nil {
		t.Error("per_request with the vault format accepted")
	}
	if _, err := ParseBlock(config.Block{Type: "syslog", Name: "s", Options: map[string]config.Value{"address": {Value: "nohost"}}}); err == nil {
		t.Error("address without a port accepted")
	}
}
