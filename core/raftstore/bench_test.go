package raftstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigilsec/vigil/core/storage"
)

// BenchmarkPut measures committed, fsynced writes of 128-byte values on a
// single node, with 1 and 32 concurrent writers. writes/batch shows how many
// writes shared one state transaction (and so one fsync of vigil.db).
func BenchmarkPut(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			var batches atomic.Int64
			cfg := testConfig(b.TempDir(), "bench")
			cfg.OnApply = func([]string) { batches.Add(1) }
			s := MustOpen(b, cfg)
			ctx := context.Background()
			val := make([]byte, 128)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			batches.Store(0)
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if err := s.Put(ctx, fmt.Sprintf("bench/%08d", i), val); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			if n := batches.Load(); n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "writes/batch")
			}
		})
	}
}

// BenchmarkGet measures parallel local reads from 10,000 keys.
func BenchmarkGet(b *testing.B) {
	s := MustNode(b)
	ctx := context.Background()
	const n = 10000
	for start := 0; start < n; start += 500 {
		ops := make([]storage.TxnOp, 0, 500)
		for i := start; i < start+500; i++ {
			ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: fmt.Sprintf("bench/%05d", i), Value: make([]byte, 128)})
		}
		if err := s.Txn(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench/%05d", i)
	}
	var ctr atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := ctr.Add(1) * 7919
		for pb.Next() {
			i++
			v, err := s.Get(ctx, keys[i%n])
			if err != nil || len(v) != 128 {
				b.Errorf("Get: %d bytes, %v", len(v), err)
				return
			}
		}
	})
}

// BenchmarkStartup measures Open of a fresh bootstrapping node with the
// default timeouts until WaitLeader returns (the node leads and has applied
// its log). The target is well under 2s.
func BenchmarkStartup(b *testing.B) {
	for b.Loop() {
		s, err := Open(Config{Dir: b.TempDir(), NodeID: "n", BindAddr: "127.0.0.1:0", Bootstrap: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.WaitLeader(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
}
