package chain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var benchLog struct {
	once sync.Once
	dir  string
	path string
	size int64
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchLog.dir != "" {
		os.RemoveAll(benchLog.dir)
	}
	os.Exit(code)
}

// body1K is a ~1 KiB Vault-like entry body.
func body1K(i int) []byte {
	b := fmt.Sprintf(`{"time":"2025-03-14T09:26:53.589793Z","type":"request","auth":{"client_token":"hmac-sha256:%064x","accessor":"hmac-sha256:%064x","policies":["default","app"]},"request":{"id":"req-%d","operation":"update","path":"secret/data/app","data":{"pad":"%s"}}}`, i, i, i, "")
	return []byte(strings.Replace(b, `"pad":""`, `"pad":"`+strings.Repeat("p", 1024-len(b))+`"`, 1))
}

func benchConfig(b *testing.B, mode FsyncMode) Config {
	return Config{
		Path:               filepath.Join(b.TempDir(), "audit.log"),
		NodeID:             "bench-node",
		Signer:             testKey(1),
		Fsync:              mode,
		CheckpointInterval: -1,
		WatchInterval:      -1,
		WriteTimeout:       time.Minute,
	}
}

// appendParallel spreads b.N appends over the given number of goroutines.
func appendParallel(b *testing.B, w *Writer, writers int) {
	appendParallelWith(b, w, writers, w.Append)
}

// appendParallelWith is appendParallel with the given append method.
func appendParallelWith(b *testing.B, w *Writer, writers int, appendFn func(context.Context, []byte) (Appended, error)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	bodies := make([][]byte, 256)
	for i := range bodies {
		bodies[i] = body1K(i)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := appendFn(context.Background(), bodies[i%256]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	st := w.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "entries/s")
	// Process CPU per entry is steadier than ns/op on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if st.Fsyncs > 0 {
		b.ReportMetric(float64(st.FsyncTotal.Microseconds())/float64(st.Fsyncs), "fsync-µs")
		b.ReportMetric(float64(st.Entries)/float64(st.Fsyncs), "entries/fsync")
	}
}

// BenchmarkAppendGroupCommit32: 32 concurrent writers, 1 KiB bodies,
// FsyncAlways. Compare entries/s with BenchmarkAppendSerialFsync.
func BenchmarkAppendGroupCommit32(b *testing.B) {
	w, err := Open(benchConfig(b, FsyncAlways))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	appendParallel(b, w, 32)
}

// BenchmarkAppendTrustedGroupCommit32 is BenchmarkAppendGroupCommit32
// through AppendTrusted, the audit broker's path.
func BenchmarkAppendTrustedGroupCommit32(b *testing.B) {
	w, err := Open(benchConfig(b, FsyncAlways))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	appendParallelWith(b, w, 32, w.AppendTrusted)
}

// BenchmarkAppendSerialFsync is the no-batching baseline: one writer, so
// every entry pays its own write and fsync.
func BenchmarkAppendSerialFsync(b *testing.B) {
	w, err := Open(benchConfig(b, FsyncAlways))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	appendParallel(b, w, 1)
}

// BenchmarkAppendNoFsync32 measures the CPU ceiling of the write path
// (hashing, batching, copying) with the disk out of the picture.
func BenchmarkAppendNoFsync32(b *testing.B) {
	w, err := Open(benchConfig(b, FsyncNone))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	appendParallel(b, w, 32)
}

// BenchmarkAppendTrustedNoFsync32 is BenchmarkAppendNoFsync32 through
// AppendTrusted.
func BenchmarkAppendTrustedNoFsync32(b *testing.B) {
	w, err := Open(benchConfig(b, FsyncNone))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	appendParallelWith(b, w, 32, w.AppendTrusted)
}

// BenchmarkAppendMerkleCost measures what the Merkle tree costs the write
// path: the same no-fsync append with the tree and its file store, with
// the tree but no store, and with no tree at all (cpu-ns/op is the figure
// to compare; fsync, absent here, dominates a real write).
func BenchmarkAppendMerkleCost(b *testing.B) {
	for _, c := range []struct {
		name            string
		noStore, noTree bool
	}{{"tree+store", false, false}, {"tree", true, false}, {"none", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := benchConfig(b, FsyncNone)
			cfg.NoMerkleStore, cfg.skipTree = c.noStore, c.noTree
			w, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			appendParallelWith(b, w, 32, w.AppendTrusted)
		})
	}
}

// buildBenchLog writes a ~256 MiB log once per process.
func buildBenchLog(b *testing.B) {
	benchLog.once.Do(func() {
		dir, err := os.MkdirTemp("", "chain-bench-")
		if err != nil {
			benchLog.err = err
			return
		}
		benchLog.dir = dir
		benchLog.path = filepath.Join(dir, "audit.log")
		w, err := Open(Config{Path: benchLog.path, NodeID: "bench-node", Signer: testKey(1), Fsync: FsyncNone,
			CheckpointInterval: -1, WatchInterval: -1, WriteTimeout: time.Minute})
		if err != nil {
			benchLog.err = err
			return
		}
		const entries = 200_000
		var next atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 32; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= entries; i = next.Add(1) {
					if _, err := w.Append(context.Background(), body1K(int(i))); err != nil {
						benchLog.err = err
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			benchLog.err = err
		}
		segs, _ := ListSegments(benchLog.path)
		for _, s := range segs {
			benchLog.size += s.Size
		}
	})
	if benchLog.err != nil {
		b.Fatal(benchLog.err)
	}
}

func benchVerify(b *testing.B, workers int) {
	buildBenchLog(b)
	b.SetBytes(benchLog.size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := VerifyLog(context.Background(), benchLog.path, VerifyOptions{PublicKey: pub(testKey(1)), Workers: workers})
		if err != nil || !rep.OK {
			b.Fatalf("%v %v", rep, err)
		}
	}
}

// BenchmarkVerify reports MB/s over a ~256 MiB log of 1 KiB entries with
// checkpoint signatures checked, hashing on GOMAXPROCS workers.
func BenchmarkVerify(b *testing.B) { benchVerify(b, runtime.GOMAXPROCS(0)) }

// BenchmarkVerify1Worker is the same with a single hashing goroutine.
func BenchmarkVerify1Worker(b *testing.B) { benchVerify(b, 1) }

// BenchmarkVerifyStrict is BenchmarkVerify in strict mode, what `vigil
// audit verify` runs by default: cadence and start/close rules, the key
// from the segment headers, and every checkpoint's Merkle root recomputed
// (a leaf hash per line on the workers, the tree on the checking
// goroutine).
func BenchmarkVerifyStrict(b *testing.B) {
	buildBenchLog(b)
	b.SetBytes(benchLog.size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := VerifyLog(context.Background(), benchLog.path, VerifyOptions{Strict: true})
		if err != nil || !rep.OK || !rep.TreeChecked || rep.KeySource != "segment headers" {
			b.Fatalf("%v %v", rep, err)
		}
	}
}

// BenchmarkRotate: one writer, FsyncAlways, segments of 64 KiB (about 60
// entries of 1 KiB), default clock: the cost a rotation adds, reported as
// µs per rotation next to the append throughput.
func BenchmarkRotate(b *testing.B) {
	cfg := benchConfig(b, FsyncAlways)
	cfg.maxBytes = 64 << 10
	w, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	body := body1K(0)
	b.ResetTimer()
	start, g0 := time.Now(), runtime.NumGoroutine()
	for i := 0; i < b.N; i++ {
		if _, err := w.Append(context.Background(), body); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	st := w.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "entries/s")
	if st.Rotations > 0 {
		b.ReportMetric(float64(st.Rotations), "rotations")
		b.ReportMetric(float64(st.Fsyncs)/float64(st.Rotations+1), "fsyncs/segment")
	}
	b.ReportMetric(float64(runtime.NumGoroutine()-g0), "goroutines-added")
}

// BenchmarkOpenClose: opening and closing a writer on a fresh log; with a
// lumberjack.Logger per writer this cost included its mill goroutine.
func BenchmarkOpenClose(b *testing.B) {
	dir := b.TempDir()
	g0 := runtime.NumGoroutine()
	for i := 0; i < b.N; i++ {
		cfg := benchConfig(b, FsyncAlways)
		cfg.Path = filepath.Join(dir, fmt.Sprint(i), "audit.log")
		w, err := Open(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Append(context.Background(), body1K(i)); err != nil {
			b.Fatal(err)
		}
		w.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(runtime.NumGoroutine()-g0), "goroutines-left")
}

// BenchmarkRotateOnly: the latency of one rotation (Rotate after a single
// entry: fsync, rename, directory fsync, create, directory fsync, header
// written and fsynced), default clock.
func BenchmarkRotateOnly(b *testing.B) {
	w, err := Open(benchConfig(b, FsyncAlways))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	body := body1K(0)
	var rot, cpu time.Duration
	f0 := w.Stats().Fsyncs
	for i := 0; i < b.N; i++ {
		if _, err := w.Append(context.Background(), body); err != nil {
			b.Fatal(err)
		}
		t0, c0 := time.Now(), processCPU()
		if err := w.Rotate(); err != nil {
			b.Fatal(err)
		}
		rot += time.Since(t0)
		cpu += processCPU() - c0
	}
	b.ReportMetric(float64(rot.Microseconds())/float64(b.N), "rotate-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "rotate-cpu-µs")
	b.ReportMetric(float64(w.Stats().Fsyncs-f0)/float64(b.N), "file-fsyncs/op")
}
