package itest

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// formClusterTB is formCluster for benchmarks.
func formClusterTB(tb testing.TB) *testCluster {
	tb.Helper()
	c := startCluster(tb, 3)
	c.init()
	if _, err := c.client(c.nodes[0]).Logical().Write("sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "1s"}); err != nil {
		tb.Fatal(err)
	}
	for _, nd := range c.nodes[1:] {
		c.unseal(nd)
	}
	c.eventually(90*time.Second, func() error {
		if v := c.voters(); len(v) != 3 || !v["node1"] || !v["node2"] || !v["node3"] {
			return fmt.Errorf("voters %v", v)
		}
		return nil
	})
	if err := c.client(c.nodes[0]).Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkClusterFailover kills the active node (SIGKILL) ten times and
// reports how long the cluster took to have a new active node, from the
// kill to the first sys/health 200 of another node: p50 and max.
func BenchmarkClusterFailover(b *testing.B) {
	c := formClusterTB(b)
	var took []time.Duration
	for range 10 {
		victim := c.active()
		var others []*clusterNode
		for _, nd := range c.nodes {
			if nd != victim {
				others = append(others, nd)
			}
		}
		start := time.Now()
		c.kill(victim)
		hc := c.httpClient()
		hc.Timeout = 2 * time.Second
		for done := false; !done; {
			for _, nd := range others {
				resp, err := hc.Get(nd.url() + "/v1/sys/health")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						done = true
						break
					}
				}
			}
			if !done {
				time.Sleep(10 * time.Millisecond)
			}
		}
		took = append(took, time.Since(start))
		c.start(victim)
		c.unseal(victim)
		c.eventually(60*time.Second, func() error {
			if v := c.voters(); len(v) != 3 || !v[victim.id] {
				return fmt.Errorf("voters %v", v)
			}
			return nil
		})
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
	b.Logf("failover over %d kills: p50 %v, max %v, all %v", len(took), took[len(took)/2], took[len(took)-1], took)
}

// BenchmarkClusterKV measures audited KV v2 GET and PUT through the active
// node and through a standby (which records the forward, then forwards
// over the cluster port) with 16 concurrent clients.
func BenchmarkClusterKV(b *testing.B) {
	c := formClusterTB(b)
	leader := c.active()
	var standby *clusterNode
	for _, nd := range c.nodes {
		if nd != leader {
			standby = nd
			break
		}
	}
	if _, err := c.client(leader).KVv2("secret").Put(context.Background(), "bench", map[string]any{"v": strings.Repeat("x", 64)}); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		nd   *clusterNode
	}{{"leader", leader}, {"standby", standby}} {
		kv := c.client(tc.nd).KVv2("secret")
		b.Run("GET/"+tc.name, func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := kv.Get(context.Background(), "bench"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("PUT/"+tc.name, func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if _, err := kv.Put(context.Background(), fmt.Sprintf("bench-%d", i%100), map[string]any{"v": i}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
