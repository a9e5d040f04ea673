package itest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/shiptest"
	"github.com/vigilsec/vigil/core/testsvc"
)

// Every node of a 3-node cluster streams its own chain to the REAL
// ClickHouse server, one table for all: with writes through all three
// nodes and the active node killed with SIGKILL and brought back, the table
// ends up holding every node's chain exactly once per (node_id, seq) —
// rows a restarted node sends again are kept once by FINAL — and each
// node's chain verifies from the table alone.
func TestClusterStreamsFromEveryNodeAcrossFailover(t *testing.T) {
	addr := testsvc.Env(t, "VIGIL_TEST_CLICKHOUSE_ADDR")
	shiptest.Use(t, "clickhouse")
	table := fmt.Sprintf("vigil_cluster_%d", time.Now().UnixNano()%1e12)
	c := formClusterWith(t, fmt.Sprintf(`audit_stream "clickhouse" "warehouse" {
  addr        = [%q]
  database    = "vigil_itest"
  table       = %q
  max_backoff = "1s"
}`, addr, table))
	hc := c.httpClient()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked atomic.Int64
	for w, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := kvPut(hc, nd.url(), c.root, fmt.Sprintf("w%d-%d", w, i), map[string]any{"i": i})
				switch {
				case a.status >= 200 && a.status < 300:
					acked.Add(1)
				case a.status == -1:
					time.Sleep(50 * time.Millisecond) // the node is down
				}
			}
		}()
	}
	c.eventually(60*time.Second, func() error {
		if n := acked.Load(); n < 150 {
			return fmt.Errorf("%d writes so far", n)
		}
		return nil
	})
	victim := c.active()
	c.kill(victim)
	c.active()
	c.start(victim)
	c.unseal(victim)
	before := acked.Load()
	c.eventually(60*time.Second, func() error {
		if n := acked.Load(); n < before+150 {
			return fmt.Errorf("%d writes since the restart", n-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()

	cfg := clickhouse.Config{Addr: []string{addr}, Database: "vigil_itest", Table: table}
	ctx := context.Background()
	for _, nd := range c.nodes {
		pub := fetchKeyTLS(t, hc, nd.url(), c.root)
		rep, err := chain.VerifyLog(ctx, nd.auditLog, chain.VerifyOptions{PublicKey: pub, NodeID: nd.id, Strict: true})
		if err != nil || !rep.OK {
			t.Fatalf("%s's chain: %v %v", nd.id, rep, err)
		}
		head := rep.LastSeq
		c.eventually(3*time.Minute, func() error {
			_, keys, err := clickhouse.Counts(ctx, cfg, nd.id)
			if err != nil || keys < head {
				return fmt.Errorf("%s: %d of %d entries in ClickHouse (%v)", nd.id, keys, head, err)
			}
			return nil
		})
		// The node keeps writing (checkpoints) and shipping: count the
		// keys first, then read; FINAL must return at least those.
		rows, keys, err := clickhouse.Counts(ctx, cfg, nd.id)
		if err != nil {
			t.Fatal(err)
		}
		var lines [][]byte
		if err := clickhouse.ReadLines(ctx, cfg, nd.id, func(b []byte) error { lines = append(lines, b); return nil }); err != nil {
			t.Fatal(err)
		}
		r := verifyLines(t, lines, pub, head)
		if r.Duplicates != 0 {
			t.Fatalf("%s: SELECT ... FINAL returned %d repeated keys", nd.id, r.Duplicates)
		}
		if r.Unique < keys {
			t.Fatalf("%s: %d distinct seqs in the table, FINAL read %d", nd.id, keys, r.Unique)
		}
		t.Logf("%s (killed: %v): chain to seq %d; table %d rows, %d distinct (node_id, seq); %s", nd.id, nd == victim, head, rows, keys, r)
	}
	t.Logf("%d writes acknowledged through the three nodes", acked.Load())
}
