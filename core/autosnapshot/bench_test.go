package autosnapshot_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

var benchSecrets = flag.Int("autosnapshot.secrets", 100_000, "KV secrets written before BenchmarkSnapshot takes and drills snapshots")

// BenchmarkSnapshot measures an automated snapshot (take: archive, SHA-256,
// store in a local target, record, prune) and a restore drill of it, on a
// dev server holding -autosnapshot.secrets KV v2 secrets. It reports the
// snapshot's size (snapshot-MB, bytes/secret) besides the time per
// operation. The secrets are written through the API by 32 clients at
// once, so that raft batches them; that setup is not timed.
//
//	go test ./core/autosnapshot -run '^$' -bench Snapshot -benchtime 3x
func BenchmarkSnapshot(b *testing.B) {
	clk := &clock{t: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	s := servertest.MustStart(b, wire.Options, servertest.Options{Dev: true, Now: clk.Now})
	c := s.Client
	n := *benchSecrets
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				p := fmt.Sprintf("secret/data/bench/%03d/s%06d", i%1000, i)
				if _, err := c.Logical().Write(p, map[string]any{"data": map[string]any{"user": "app", "password": fmt.Sprintf("p-%020d", i)}}); err != nil {
					errs <- fmt.Errorf("%s: %w", p, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d secrets in %s", n, time.Since(start).Round(time.Millisecond))

	dir := filepath.Join(b.TempDir(), "snapshots")
	if _, err := c.Logical().Write("sys/storage/raft/snapshot-auto/config/bench", map[string]any{
		"interval": "1h", "retain": 1, "storage_type": "local", "path_prefix": dir, "local_max_space": 0,
	}); err != nil {
		b.Fatal(err)
	}
	var size int64
	b.Run("take", func(b *testing.B) {
		for b.Loop() {
			clk.Add(time.Hour + time.Second)
			if err := s.RunScheduledJobs(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		objs, err := filepath.Glob(filepath.Join(dir, "*.snap"))
		if err != nil || len(objs) != 1 {
			b.Fatalf("retain=1 left %v (%v)", objs, err)
		}
		fi, err := os.Stat(objs[0])
		if err != nil {
			b.Fatal(err)
		}
		size = fi.Size()
		b.ReportMetric(float64(size)/1e6, "snapshot-MB")
		b.ReportMetric(float64(size)/float64(max(n, 1)), "bytes/secret")
	})
	b.Run("drill", func(b *testing.B) {
		for b.Loop() {
			sec, err := c.Logical().Write("sys/storage/raft/snapshot-auto/drill/bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			if sec.Data["passed"] != true || fmt.Sprint(sec.Data["restored"].(map[string]any)["secrets"]) != fmt.Sprint(n) {
				b.Fatalf("drill: %v", sec.Data)
			}
		}
		b.ReportMetric(float64(size)/1e6, "snapshot-MB")
	})
}
