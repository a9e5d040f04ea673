package embedded_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/reports/query/embedded"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIndexBuildVsAuditWrite compares the CPU the embedded index
// spends per audited request with the CPU the audit write path spends on
// it. b.N requests of realistic traffic are written through the real
// broker and file device — Vault formatting, salted HMAC, hash chain,
// signed checkpoints every 1000 lines, group commit from concurrent
// callers (64), with fsync off (the CPU cost alone) and always (the default) —
// then the log
// is indexed from scratch (reading, re-hashing and linking every line,
// verifying checkpoint signatures, building the columns, writing chunk
// files). Goal: index-cpu / write-cpu <= 10%.
//
//	go test ./reports/query/embedded -run XXX -bench IndexBuildVsAuditWrite -benchtime 200000x
func BenchmarkIndexBuildVsAuditWrite(b *testing.B) {
	for _, m := range []struct {
		name string
		mode chain.FsyncMode
	}{{"fsync=none", chain.FsyncNone}, {"fsync=always", chain.FsyncAlways}} {
		b.Run(m.name, func(b *testing.B) { benchIndexVsWrite(b, m.mode) })
	}
}

func benchIndexVsWrite(b *testing.B, mode chain.FsyncMode) {
	var pool []querytest.Request
	for _, r := range querytest.Traffic(5, 4000, querytest.Start, time.Millisecond) {
		if !r.Req.Sealed {
			pool = append(pool, r)
		}
	}
	dir := b.TempDir()
	l := querytest.MustOpenLog(b, dir, querytest.LogOptions{MaxSizeMB: 64, CheckpointEvery: 1000, Fsync: mode})
	ctx := context.Background()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				p := pool[i%len(pool)]
				req := *p.Req.Request
				req.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
				ev := *p.Req
				ev.Request = &req
				if err := l.Broker.LogRequest(ctx, &ev); err != nil {
					b.Error(err)
					return
				}
				if p.Resp != nil {
					rv := *p.Resp
					rv.Request = &req
					if err := l.Broker.LogResponse(ctx, &rv); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	writeCPU, writeWall := cpuTime()-cpu0, time.Since(t0)
	l.Checkpoint(b)
	head, _ := l.Head()
	if err := l.Broker.Close(); err != nil {
		b.Fatal(err)
	}

	cpu1, t1 := cpuTime(), time.Now()
	ix, err := embedded.Open(embedded.Config{Path: l.Path, NodeID: l.NodeID, Poll: 5 * time.Millisecond, PublicKey: func() (ed25519.PublicKey, bool) { return l.PublicKey(), true }})
	if err != nil {
		b.Fatal(err)
	}
	ix.Start()
	wctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	if err := ix.WaitFor(wctx, head); err != nil {
		b.Fatal(err)
	}
	indexCPU, indexWall := cpuTime()-cpu1, time.Since(t1)
	b.StopTimer()
	st := ix.Status()
	_ = ix.Close()
	n := float64(b.N)
	b.ReportMetric(float64(writeCPU.Nanoseconds())/n, "write-cpu-ns/req")
	b.ReportMetric(float64(indexCPU.Nanoseconds())/n, "index-cpu-ns/req")
	b.ReportMetric(100*float64(indexCPU)/float64(writeCPU), "index/write-cpu-%")
	b.ReportMetric(float64(writeWall.Nanoseconds())/n, "write-wall-ns/req")
	b.ReportMetric(float64(indexWall.Nanoseconds())/n, "index-wall-ns/req")
	if st.Chunks > 0 {
		b.ReportMetric(float64(st.Bytes)/float64(st.Rows), "index-bytes/row")
	}
}

// BenchmarkIndexBuild indexes a log of 50k requests from scratch per
// iteration (the log is written once), checking links and checkpoints
// (the default) or also recomputing every line's hash; ns/req is per
// request.
func BenchmarkIndexBuild(b *testing.B) {
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprintf("verify-hashes=%v", verify), func(b *testing.B) { benchIndexBuild(b, verify) })
	}
}

func benchIndexBuild(b *testing.B, verify bool) {
	dir := b.TempDir()
	l := querytest.MustOpenLog(b, dir, querytest.LogOptions{MaxSizeMB: 64, CheckpointEvery: 1000, Fsync: chain.FsyncNone})
	const n = 50000
	reqs := querytest.Traffic(6, n, querytest.Start, time.Millisecond)
	l.Write(b, reqs)
	l.Checkpoint(b)
	head, _ := l.Head()
	_ = l.Broker.Close()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ix, err := embedded.Open(embedded.Config{Path: l.Path, Dir: b.TempDir(), NodeID: l.NodeID, Poll: time.Millisecond, VerifyHashes: verify,
			PublicKey: func() (ed25519.PublicKey, bool) { return l.PublicKey(), true }})
		if err != nil {
			b.Fatal(err)
		}
		ix.Start()
		if err := ix.WaitFor(context.Background(), head); err != nil {
			b.Fatal(err)
		}
		_ = ix.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/req")
	b.ReportMetric(float64((cpuTime()-c0).Nanoseconds())/float64(b.N*n), "cpu-ns/req")
}
