package chain

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// t0 is the fixed time used by deterministic tests.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

// testClock is a settable clock, safe for concurrent use.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testKey is a deterministic Ed25519 key.
func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	return ed25519.NewKeyFromSeed(s)
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

// testConfig returns a deterministic config for a log in a fresh temp dir.
func testConfig(tb testing.TB) Config {
	tb.Helper()
	clk := newClock()
	return Config{
		Path:               filepath.Join(tb.TempDir(), "audit.log"),
		NodeID:             "node-a",
		Signer:             testKey(1),
		Now:                clk.Now,
		CheckpointInterval: -1,
		WatchInterval:      -1,
	}
}

// MustOpen opens a writer and closes it at the end of the test.
func MustOpen(tb testing.TB, cfg Config) *Writer {
	tb.Helper()
	w, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { w.Close() })
	return w
}

// MustAppend appends body and fails the test on error.
func MustAppend(tb testing.TB, w *Writer, body string) Appended {
	tb.Helper()
	a, err := w.Append(context.Background(), []byte(body))
	if err != nil {
		tb.Fatalf("Append(%s): %v", body, err)
	}
	return a
}

// MustVerifyLog verifies the whole log at path and fails unless it is OK.
func MustVerifyLog(tb testing.TB, path string, opts VerifyOptions) *Report {
	tb.Helper()
	rep, err := VerifyLog(context.Background(), path, opts)
	if err != nil {
		tb.Fatalf("VerifyLog: %v", err)
	}
	if !rep.OK {
		tb.Fatalf("VerifyLog: %v", rep)
	}
	return rep
}

// vaultBody returns a Vault-like audit entry body.
func vaultBody(i int) string {
	return fmt.Sprintf(`{"time":"2025-03-14T09:26:53.589793Z","type":"request","auth":{"client_token":"hmac-sha256:%064x","policies":["default"]},"request":{"id":"req-%d","operation":"read","path":"secret/data/app%d"}}`, i, i, i%7)
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func readLines(tb testing.TB, path string) []string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, string(b[:min(i+1, len(b))]))
		b = b[min(i+1, len(b)):]
	}
	return out
}
