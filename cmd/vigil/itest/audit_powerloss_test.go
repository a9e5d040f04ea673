package itest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// powerCut is a file layer injected under the chain writer (through its
// fault hooks) that knows which bytes of the audit log have been fsync'd:
// the bytes written before a sync started are durable once it succeeds. A
// simulated power cut keeps exactly those and drops every other byte, as
// losing the page cache does (which a SIGKILL does not: it keeps it). The
// kernel here has no device-mapper (dm-flakey, dm-log-writes), so this is
// the power-loss test.
type powerCut struct {
	path string
	slow time.Duration // added fsync latency

	mu        sync.Mutex
	candidate int64 // size when the current sync started
	synced    int64 // bytes known durable
}

func (p *powerCut) faults() *chain.Faults {
	return &chain.Faults{
		BeforeSync: func() error {
			fi, err := os.Stat(p.path)
			if err != nil {
				return err
			}
			p.mu.Lock()
			p.candidate = fi.Size()
			p.mu.Unlock()
			time.Sleep(p.slow) // a slow disk: fsync latency, not synchronisation
			return nil
		},
		AfterSync: func() {
			p.mu.Lock()
			p.synced = p.candidate
			p.mu.Unlock()
		},
	}
}

// image writes, under dir, what a power cut now would leave of the log:
// the rotated segments whole (a segment is synced before the next one
// starts: a key-less one written while sealed, for instance) and the
// synced bytes of the active one.
func (p *powerCut) image(t *testing.T, dir string) string {
	t.Helper()
	p.mu.Lock()
	n := p.synced
	p.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	segs, err := chain.ListSegments(p.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range segs {
		if si.Active {
			continue
		}
		b, err := os.ReadFile(si.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(si.Path)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(p.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := filepath.Join(dir, "audit.log")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := io.CopyN(w, f, n); err != nil {
		t.Fatalf("copy %d synced bytes: %v", n, err)
	}
	return out
}

// cutResult is what one simulated power cut found.
type cutResult struct {
	answered, missing int
	verifyErr         error
}

// runPowerCuts drives concurrent KV writes through the vault/api client,
// keeping the request id of every write answered 2xx, and makes cuts
// simulated power cuts while the load runs. At each cut it takes the
// answered ids first, then the log's durable bytes, and checks that every
// answered request has its request and response entries in what survives,
// and that the survivor verifies against the checkpoint key.
func runPowerCuts(t *testing.T, fsync string, withStdout bool, cuts int) []cutResult {
	dir := t.TempDir()
	pc := &powerCut{path: auditLogPath(dir), slow: 2 * time.Millisecond}
	var sub *auditsvc.Subsystem
	build := func(cfg *config.Config) (server.Options, error) {
		so, err := wire.Options(cfg)
		sub = auditsvc.NewSubsystem(auditsvc.Options{Stdout: io.Discard, Faults: func(string) *chain.Faults { return pc.faults() }})
		so.Subsystems = withAudit(so.Subsystems, sub)
		return so, err
	}
	s := servertest.MustStart(t, build, servertest.Options{Dev: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, map[string]string{"fsync": fsync, "checkpoint_every": "50"})}
		if withStdout {
			c.Audit = append(c.Audit, config.Block{Type: "stdout", Name: "out", File: "test.hcl", Line: 9, Options: map[string]config.Value{}})
		}
	}})
	pub, ok := sub.PublicKey()
	if !ok {
		t.Fatal("no checkpoint key")
	}

	var mu sync.Mutex
	var answered []string
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.NewClient(s.RootToken)
			for i := 0; ctx.Err() == nil; i++ {
				sec, err := c.Logical().WriteWithContext(ctx, fmt.Sprintf("secret/data/g%d/k%d", g, i), map[string]any{"data": map[string]any{"i": i}})
				if err != nil || sec == nil || sec.RequestID == "" {
					continue
				}
				mu.Lock()
				answered = append(answered, sec.RequestID)
				mu.Unlock()
			}
		}()
	}
	var results []cutResult
	for cut := range cuts {
		for { // wait until 40 more writes were answered
			mu.Lock()
			n := len(answered)
			mu.Unlock()
			if n >= 40*(cut+1) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		ids := append([]string(nil), answered...)
		mu.Unlock()
		img := pc.image(t, filepath.Join(dir, fmt.Sprintf("cut%d", cut)))
		results = append(results, checkImage(t, img, pub, ids))
	}
	stop()
	wg.Wait()
	return results
}

// checkImage verifies a post-cut log and counts the answered requests
// missing an entry.
func checkImage(t *testing.T, img string, pub ed25519.PublicKey, ids []string) cutResult {
	t.Helper()
	res := cutResult{answered: len(ids)}
	rep, err := chain.VerifyLog(t.Context(), img, chain.VerifyOptions{PublicKey: pub, NodeID: "test-node"})
	switch {
	case err != nil:
		res.verifyErr = err
	case !rep.OK:
		res.verifyErr = fmt.Errorf("verify: %s", rep)
	}
	segs, err := chain.ListSegments(img)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, si := range segs {
		seg, err := os.ReadFile(si.Path)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, seg...)
	}
	seen := map[string]map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		id := l.requestID()
		if seen[id] == nil {
			seen[id] = map[string]bool{}
		}
		seen[id][l.Type] = true
	}
	for _, id := range ids {
		if !seen[id]["request"] || !seen[id]["response"] {
			res.missing++
		}
	}
	return res
}

// After a power cut, every request that was answered 2xx has its request
// and response entries in what is left of the log, and that log verifies.
// A stdout device records beside the file device: it must never answer a
// request before the file has its entries on disk.
func TestPowerLossKeepsEveryAnsweredRequest(t *testing.T) {
	for i, r := range runPowerCuts(t, "always", true, 5) {
		if r.verifyErr != nil {
			t.Errorf("cut %d: the surviving log does not verify: %v", i, r.verifyErr)
		}
		if r.missing > 0 {
			t.Errorf("cut %d: %d of %d answered requests lost an entry", i, r.missing, r.answered)
		}
	}
}

// The same cuts on a device that never fsyncs lose answered requests: the
// check above can fail.
func TestPowerLossCheckDetectsUnsyncedAcks(t *testing.T) {
	lost := 0
	for _, r := range runPowerCuts(t, "none", false, 3) {
		lost += r.missing
	}
	if lost == 0 {
		t.Fatal("no answered request was lost by a device that never fsyncs: the power-cut check cannot fail")
	}
}
