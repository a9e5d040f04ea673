package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/clustertls"
	"github.com/vigilsec/vigil/core/storage"
)

// testLogger logs to stderr when RAFTSTORE_LOG is set, and nowhere otherwise.
func testLogger() *slog.Logger {
	if os.Getenv("RAFTSTORE_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testCA is the cluster CA of the nodes the tests open (one for the test
// binary: every test cluster trusts it).
var testCA = sync.OnceValue(func() *clustertls.CA {
	ca, err := clustertls.NewCA("raftstore-test", clustertls.Options{})
	if err != nil {
		panic(err)
	}
	return ca
})

// mustIdentity issues id a certificate from ca and returns its transport
// identity.
func mustIdentity(tb testing.TB, ca *clustertls.CA, id string) *TLSIdentity {
	tb.Helper()
	n, err := ca.Issue(id, clustertls.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	cert, pool, err := n.TLS()
	if err != nil {
		tb.Fatal(err)
	}
	return &TLSIdentity{Certificate: cert, CAs: pool, ServerName: clustertls.ServerName}
}

// testIdentity is id's identity under testCA.
func testIdentity(id string) *TLSIdentity {
	n, err := testCA().Issue(id, clustertls.Options{})
	if err != nil {
		panic(err)
	}
	cert, pool, err := n.TLS()
	if err != nil {
		panic(err)
	}
	return &TLSIdentity{Certificate: cert, CAs: pool, ServerName: clustertls.ServerName}
}

// testConfig is a bootstrapping single node in dir on a random loopback
// port, with a certificate of the test CA and timeouts short enough for
// tests.
func testConfig(dir, id string) Config {
	return Config{
		TLS:                testIdentity(id),
		Dir:                dir,
		NodeID:             id,
		BindAddr:           "127.0.0.1:0",
		Bootstrap:          true,
		Logger:             testLogger(),
		HeartbeatTimeout:   150 * time.Millisecond,
		ElectionTimeout:    150 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
	}
}

// memberConfig is testConfig for a node of a multi-node cluster: failure
// detection tolerant of a loaded machine (a leader starved of CPU for a
// few hundred milliseconds keeps its lease), so that leadership moves only
// when a test stops the leader. Failover still takes a few seconds at most.
func memberConfig(dir, id string, bootstrap bool) Config {
	c := testConfig(dir, id)
	c.Bootstrap = bootstrap
	c.HeartbeatTimeout = time.Second
	c.ElectionTimeout = time.Second
	c.LeaderLeaseTimeout = 500 * time.Millisecond
	return c
}

// MustOpen opens a Store, closes it at cleanup and, when it bootstraps,
// waits until it leads.
func MustOpen(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	s, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if cfg.Bootstrap {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.WaitLeader(ctx); err != nil {
			tb.Fatalf("WaitLeader: %v", err)
		}
	}
	return s
}

// MustNode opens a bootstrapped single node in a fresh temp dir.
func MustNode(tb testing.TB) *Store {
	tb.Helper()
	return MustOpen(tb, testConfig(tb.TempDir(), "node1"))
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met after %v: %v", timeout, err)
		}
		<-tick.C
	}
}

// dump returns every key and value in s.
func dump(tb testing.TB, s storage.Storage) map[string]string {
	tb.Helper()
	ctx := context.Background()
	keys, err := storage.ListAll(ctx, s, "")
	if err != nil {
		tb.Fatalf("ListAll: %v", err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := s.Get(ctx, k)
		if err != nil {
			tb.Fatalf("Get %q: %v", k, err)
		}
		out[k] = string(v)
	}
	return out
}

// diff describes how got differs from want, or returns nil.
func diff(got, want map[string]string) error {
	var d []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			d = append(d, "missing "+k)
		} else if g != v {
			d = append(d, fmt.Sprintf("%s=%q want %q", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "extra "+k)
		}
	}
	if len(d) == 0 {
		return nil
	}
	if len(d) > 5 {
		d = append(d[:5], fmt.Sprintf("... %d differences", len(d)))
	}
	return errors.New(strings.Join(d, "; "))
}

func mustPut(tb testing.TB, s *Store, kv ...string) {
	tb.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := s.Put(context.Background(), kv[i], []byte(kv[i+1])); err != nil {
			tb.Fatalf("Put %q: %v", kv[i], err)
		}
	}
}

func wantCode(tb testing.TB, err error, code core.Code) {
	tb.Helper()
	if got := core.CodeOf(err); got != code {
		tb.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

// keyRecorder is an OnApply callback that records keys.
type keyRecorder struct {
	mu    sync.Mutex
	calls int
	keys  []string
	nils  int
}

func (r *keyRecorder) record(keys []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if keys == nil {
		r.nils++
	}
	r.keys = append(r.keys, keys...)
}

func (r *keyRecorder) snapshot() (calls int, keys []string, nils int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, append([]string(nil), r.keys...), r.nils
}
