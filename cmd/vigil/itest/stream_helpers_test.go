package itest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/kafka"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// streamServer is a test server with the audit subsystem and the audit
// stream subsystem wired as cmd/vigil/wire wires them.
type streamServer struct {
	*servertest.Server
	mu    sync.Mutex
	audit *auditsvc.Subsystem
	ship  *ship.Subsystem
}

func (s *streamServer) Ship() *ship.Subsystem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ship
}

func (s *streamServer) Audit() *auditsvc.Subsystem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.audit
}

// streamSinks is the list of stream types wire registers.
func streamSinks() map[string]ship.Factory {
	return map[string]ship.Factory{"kafka": kafka.New, "clickhouse": clickhouse.New}
}

// mustStreamServer starts a dev server with a file audit device at
// <dir>/audit/audit.log (deviceOpts added) and the given audit_stream
// blocks, wired as cmd/vigil/wire wires the audit and stream subsystems
// (whose places in wire's list they take, built with ao and so).
func mustStreamServer(t testing.TB, dir string, deviceOpts map[string]string, streams []config.Block, ao auditsvc.Options, so ship.Options) *streamServer {
	t.Helper()
	ss := &streamServer{}
	build := func(cfg *config.Config) (server.Options, error) {
		o, err := wire.Options(cfg)
		// The audit subsystem takes the place of wire's (same start order)
		// so the test's auditsvc.Options apply.
		as := auditsvc.NewSubsystem(ao)
		replaced := false
		var shs *ship.Subsystem
		for i, sub := range o.Subsystems {
			switch x := sub.Subsystem.(type) {
			case *auditsvc.Subsystem:
				o.Subsystems[i], replaced = wire.Plug(as), true
			case *ship.Subsystem:
				shs = x
			}
		}
		if !replaced {
			o.Subsystems = append(o.Subsystems, wire.Plug(as))
		}
		so.Audit = as
		if so.Sinks == nil {
			so.Sinks = streamSinks()
		}
		if so.Poll == 0 {
			so.Poll = 2 * time.Millisecond
		}
		if so.MinBackoff == 0 {
			so.MinBackoff = 50 * time.Millisecond
		}
		// Policy evaluation gets a generous deadline: the outage tests run
		// under heavy CPU load (a broker JVM restarting, -race), where the
		// default 50 ms Rego deadline would fail requests closed (403) for
		// reasons that have nothing to do with streaming.
		for i, sub := range o.Subsystems {
			if _, ok := sub.Subsystem.(*authz.Subsystem); ok {
				o.Subsystems[i] = wire.Plug(authz.NewSubsystem(authz.WithEvalTimeout(10 * time.Second)))
			}
		}
		nshs := ship.NewSubsystem(so)
		if shs != nil { // wire lists it: put ours (on our audit subsystem) in its place
			for i, sub := range o.Subsystems {
				if sub.Subsystem == shs {
					o.Subsystems[i] = wire.Plug(nshs)
				}
			}
		} else {
			o.Subsystems = append(o.Subsystems, wire.Plug(nshs))
		}
		ss.mu.Lock()
		ss.audit, ss.ship = as, nshs
		ss.mu.Unlock()
		return o, err
	}
	ss.Server = servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, deviceOpts)}
		c.AuditStreams = streams
	}})
	return ss
}

// streamBlock declares `audit_stream "<typ>" "<name>" { opts }`; values
// containing commas become lists.
func streamBlock(typ, name string, opts map[string]string) config.Block {
	o := map[string]config.Value{}
	line := 10
	for k, v := range opts {
		val := config.Value{Value: v, Line: line, File: "test.hcl"}
		if strings.Contains(v, ",") || k == "brokers" || k == "addr" {
			val.List = strings.Split(v, ",")
		}
		o[k] = val
		line++
	}
	return config.Block{Type: typ, Name: name, Options: o, Line: 9, File: "test.hcl"}
}

// streamStatus returns the named stream's status, read in process (a read
// through the API would itself add audit lines).
func (s *streamServer) streamStatus(t testing.TB, name string) ship.Status {
	t.Helper()
	sh := s.Ship().Shipper(name)
	if sh == nil {
		t.Fatalf("no stream %q", name)
	}
	return sh.Status()
}

// waitShipped waits until the stream acknowledged every line up to seq.
func (s *streamServer) waitShipped(t testing.TB, name string, seq uint64, timeout time.Duration) ship.Status {
	t.Helper()
	var st ship.Status
	shiptest.WaitFor(t, timeout, fmt.Sprintf("stream %s to ship up to seq %d", name, seq), func() bool {
		st = s.streamStatus(t, name)
		return st.Cursor.Seq >= seq
	})
	return st
}

// head is the file device's durable head.
func (s *streamServer) head(t testing.TB) uint64 {
	t.Helper()
	d := s.Audit().Broker().Device("file")
	if d == nil {
		t.Fatal("no file device")
	}
	fs, ok := d.Sink().(*audit.FileSink)
	if !ok {
		t.Fatal("file device not open")
	}
	seq, _ := fs.W.Head()
	return seq
}

// publicKey is the server's checkpoint verification key.
func (s *streamServer) publicKey(t testing.TB) ed25519.PublicKey {
	t.Helper()
	k, ok := s.Audit().PublicKey()
	if !ok {
		t.Fatal("no checkpoint key (sealed?)")
	}
	return k
}

// load runs concurrent API traffic (KV writes and reads) until stopped,
// counting requests and failures. Every request must succeed, whatever
// happens to the audit streams.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(t testing.TB, s *servertest.Server, workers int) *load {
	t.Helper()
	l := &load{stop: make(chan struct{})}
	for w := 0; w < workers; w++ {
		c := s.NewClient(s.RootToken)
		c.SetClientTimeout(30 * time.Second)
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := fmt.Sprintf("secret/data/load/%d/%d", w, i%20)
				var err error
				if i%2 == 0 {
					_, err = c.Logical().Write(path, map[string]any{"data": map[string]any{"v": i, "password": "p4ss"}})
				} else {
					_, err = c.Logical().Read(path)
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == nil {
						l.firstErr = err
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}(w)
	}
	t.Cleanup(l.halt)
	return l
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// mustHaveNoFailures fails the test if any request failed.
func (l *load) mustHaveNoFailures(t testing.TB, during string) {
	t.Helper()
	if n := l.failed.Load(); n > 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("%d requests failed %s (first: %v); a sink outage must never fail a request", n, during, l.firstErr)
	}
}

// verifyLines runs the stream verifier over lines read back from a sink,
// with the server's key, and requires one complete chain from seq 1 to at
// least head.
func verifyLines(t testing.TB, lines [][]byte, pub ed25519.PublicKey, head uint64) ship.NodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	v := ship.NewVerifier(ctx, ship.VerifyOptions{Chain: chainOpts(pub)})
	for _, l := range lines {
		if err := v.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	res := v.Close()
	if len(res) != 1 {
		t.Fatalf("expected one node's chain, got %d: %v", len(res), res)
	}
	r := res[0]
	if !r.Complete() || r.Report.FirstSeq != 1 || r.Report.LastSeq < head {
		t.Fatalf("chain verification from the sink: %s (want seq 1..>=%d, every seq once)", r, head)
	}
	if !r.Report.SignaturesChecked || r.Report.Checkpoints == 0 {
		t.Fatalf("checkpoint signatures were not checked: %s", r)
	}
	return r
}

// readTopic reads every original line of a Kafka topic.
func readTopic(t testing.TB, brokers, topic string) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out [][]byte
	err := kafka.ReadTopic(ctx, kafka.ReadOptions{Brokers: strings.Split(brokers, ","), Topic: topic}, func(m kafka.Message) error {
		l, err := kafka.OriginalLine(m)
		if err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		t.Fatalf("read topic %s: %v", topic, err)
	}
	return out
}

func chainOpts(pub ed25519.PublicKey) chain.VerifyOptions { return chain.VerifyOptions{PublicKey: pub} }

func auditOptions() auditsvc.Options { return auditsvc.Options{Stdout: io.Discard} }

func shipOptions() ship.Options { return ship.Options{} }

var vaultapiAuth = vaultapi.EnableAuthOptions{Type: "userpass"}

// readTopicValues reads the raw message values of a topic.
func readTopicValues(t testing.TB, brokers, topic string) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out [][]byte
	err := kafka.ReadTopic(ctx, kafka.ReadOptions{Brokers: strings.Split(brokers, ","), Topic: topic}, func(m kafka.Message) error {
		out = append(out, m.Value)
		return nil
	})
	if err != nil {
		t.Fatalf("read topic %s: %v", topic, err)
	}
	return out
}
