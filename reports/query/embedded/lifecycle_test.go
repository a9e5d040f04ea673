package embedded_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/embedded"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

func traffic(seed int64, n int, from int) []querytest.Request {
	return querytest.Traffic(seed, n, querytest.Start.Add(time.Duration(from)*querytest.Step), querytest.Step)
}

func chunkFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "chunk-*"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// The index survives a restart: chunk files and the cursor are kept, the
// tail since the last chunk is rebuilt from the log, and lines written
// while it was stopped are indexed when it starts again.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustLog(t, dir, traffic(11, 300, 0), querytest.LogOptions{})
	ix := mustIndex(t, l, nil)
	before := ix.Status()
	if before.Chunks < 2 {
		t.Fatalf("expected several chunks, got %+v", before)
	}
	mustMatchReference(t, ix, l, query.Filter{})
	ix.Stop()

	l.Write(t, traffic(12, 150, 300)) // while the index is down
	l.Checkpoint(t)
	ix2 := mustIndex(t, l, nil)
	st := ix2.Status()
	if st.Resets != 0 || st.Chunks < before.Chunks || st.Anchor != "genesis" {
		t.Fatalf("restart lost the index: before %+v after %+v", before, st)
	}
	mustMatchReference(t, ix2, l, query.Filter{})
	mustMatchReference(t, ix2, l, query.Filter{Path: "secret/data/prod/", Since: querytest.Start.Add(250 * querytest.Step)})
}

// Rotation (size-based, gzip'd segments) while the index follows the log,
// and a fresh index over rotated + compressed segments.
func TestRotationAndCompression(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustOpenLog(t, dir, querytest.LogOptions{MaxSizeMB: 1, Compress: true})
	l.Write(t, traffic(21, 200, 0))
	l.Checkpoint(t)
	ix := mustIndex(t, l, nil)
	for i := 1; i <= 6; i++ {
		l.Write(t, traffic(int64(21+i), 400, 200+400*(i-1)))
		l.Checkpoint(t)
	}
	mustCatchUp(t, ix, l)
	var segs []chain.SegmentInfo
	gz := 0
	waitFor(t, "compressed segments", func() bool {
		segs, _ = chain.ListSegments(l.Path)
		gz = 0
		for _, s := range segs {
			if s.Compressed {
				gz++
			}
		}
		return gz >= 2
	})
	got := mustMatchReference(t, ix, l, query.Filter{})
	if len(got) < 2500 {
		t.Fatalf("only %d records", len(got))
	}
	fresh := mustIndex(t, l, func(c *embedded.Config) { c.Dir = filepath.Join(t.TempDir(), "fresh") })
	mustMatchReference(t, fresh, l, query.Filter{Operation: "read", Allowed: ptr(true)})
	t.Logf("%d segments (%d gzip'd), %d records", len(segs), gz, len(got))
}

// A torn last line (a crash in the middle of a write) is not indexed; when
// the writer reopens the log it truncates it, and the index follows.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustLog(t, dir, traffic(31, 120, 0), querytest.LogOptions{})
	if err := l.Broker.Close(); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	torn := []byte(`{"time":"2025-03-14T10:00:00Z","type":"request","auth":{"display_name":"torn-writer"`)
	appendFile(t, l.Path, torn)
	noWriter := *l
	ix := mustIndexNoHead(t, &noWriter, bytes.Count(whole, []byte("\n")))
	got := mustMatchReference(t, ix, &noWriter, query.Filter{})
	for _, r := range got {
		if strings.Contains(r.DisplayName, "torn") {
			t.Fatal("a torn line was indexed")
		}
	}
	// The writer starts again: it saves and removes the torn bytes, and
	// appends after the last complete line.
	l2 := querytest.MustOpenLog(t, dir, querytest.LogOptions{})
	l2.Write(t, traffic(32, 80, 120))
	l2.Checkpoint(t)
	mustCatchUp(t, ix, l2)
	mustMatchReference(t, ix, l2, query.Filter{})
	if st := ix.Status(); st.Failure != "" || st.Resets != 0 {
		t.Fatalf("status after the torn tail: %+v", st)
	}
}

func mustIndexNoHead(tb testing.TB, l *querytest.Log, lines int) *embedded.Index {
	tb.Helper()
	ix := mustIndexOpts(tb, l, func(c *embedded.Config) { c.Head = nil })
	waitFor(tb, "the index to read the complete lines", func() bool { return ix.Status().IndexedSeq >= uint64(lines) })
	return ix
}

func mustIndexOpts(tb testing.TB, l *querytest.Log, tune func(*embedded.Config)) *embedded.Index {
	tb.Helper()
	cfg := baseConfig(l)
	tune(&cfg)
	ix, err := embedded.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ix.Start()
	tb.Cleanup(func() { _ = ix.Close() })
	return ix
}

func appendFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		tb.Fatal(err)
	}
}

// A log replaced by another one (same node, restarted from seq 1) makes
// the index start over instead of serving the old chain.
func TestLogReplaced(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustLog(t, filepath.Join(dir, "a"), traffic(41, 300, 0), querytest.LogOptions{})
	idx := filepath.Join(dir, "index")
	ix := mustIndex(t, l, func(c *embedded.Config) { c.Dir = idx })
	ix.Stop()
	_ = l.Broker.Close()
	// A new, shorter chain at the same path.
	if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	l2 := querytest.MustLog(t, filepath.Join(dir, "a"), traffic(42, 50, 0), querytest.LogOptions{})
	ix2 := mustIndex(t, l2, func(c *embedded.Config) { c.Dir = idx })
	mustMatchReference(t, ix2, l2, query.Filter{})
}

// A corrupt chunk file fails the query that reads it and makes the index
// rebuild itself from the log.
func TestCorruptChunk(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustLog(t, dir, traffic(51, 300, 0), querytest.LogOptions{})
	ix := mustIndex(t, l, func(c *embedded.Config) { c.CacheBytes = 1 })
	files := chunkFiles(t, ix.Dir())
	if len(files) < 2 {
		t.Fatalf("chunks: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	ix.Stop()
	ix2 := mustIndexOpts(t, l, func(c *embedded.Config) { c.Dir = ix.Dir(); c.CacheBytes = 1 })
	if _, err := ix2.Query(ctx, query.Filter{}); err == nil {
		t.Fatal("query over a corrupt chunk succeeded")
	}
	waitFor(t, "the index to rebuild", func() bool { return ix2.Status().Resets > 0 })
	mustCatchUp(t, ix2, l)
	mustMatchReference(t, ix2, l, query.Filter{})
}

// Segments deleted by retention take their records out of the index.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustOpenLog(t, dir, querytest.LogOptions{MaxSizeMB: 1})
	l.Write(t, traffic(61, 2000, 0))
	l.Checkpoint(t)
	ix := mustIndex(t, l, func(c *embedded.Config) { c.RetentionEvery = 5 * time.Millisecond })
	segs, err := chain.ListSegments(l.Path)
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	for _, s := range segs[:2] {
		if err := os.Remove(s.Path); err != nil {
			t.Fatal(err)
		}
	}
	first := segs[2].FirstSeq
	waitFor(t, "retention to be noticed", func() bool { return ix.Status().LowSeq == first })
	got := mustMatchReference(t, ix, l, query.Filter{})
	if len(got) == 0 || got[0].Seq < first {
		t.Fatalf("records from deleted segments: first seq %d", got[0].Seq)
	}
	res, err := ix.Query(ctx, query.Filter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Verification, "retention") {
		t.Fatalf("verification does not mention retention: %s", res.Verification)
	}
	// Restart: the state file remembers.
	ix.Stop()
	ix2 := mustIndex(t, l, func(c *embedded.Config) { c.Dir = ix.Dir() })
	mustMatchReference(t, ix2, l, query.Filter{})
}

// Tampering stops the index at the last checkpoint before it, and results
// say so: a deleted line breaks the seq/prev_hash links (always checked);
// an edited line breaks its own hash (checked with VerifyHashes; otherwise
// the server's full verification catches it, and results say which covers
// what).
func TestTamperStopsIndex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		verify bool
		edit   func(b []byte) []byte
	}{
		{"deleted line", false, func(b []byte) []byte {
			i := len(b)/2 + bytes.IndexByte(b[len(b)/2:], '\n') + 1
			j := i + bytes.IndexByte(b[i:], '\n') + 1
			return append(b[:i:i], b[j:]...)
		}},
		{"edited line, hashes verified", true, func(b []byte) []byte {
			i := bytes.Index(b[len(b)/2:], []byte(`"path":"secret/data/prod/db/password"`)) + len(b)/2
			copy(b[i:], `"path":"secret/data/prod/db/passw0rd"`)
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := querytest.MustOpenLog(t, dir, querytest.LogOptions{MaxSizeMB: 1})
			l.Write(t, traffic(71, 1500, 0))
			l.Checkpoint(t)
			segs, _ := chain.ListSegments(l.Path)
			if len(segs) < 2 || segs[0].Compressed {
				t.Fatalf("segments: %+v", segs)
			}
			b, err := os.ReadFile(segs[0].Path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(segs[0].Path, tc.edit(b), 0o600); err != nil {
				t.Fatal(err)
			}
			ix := mustIndexOpts(t, l, func(c *embedded.Config) { c.VerifyHashes = tc.verify })
			waitFor(t, "the index to stop", func() bool { return ix.Status().Failure != "" })
			st := ix.Status()
			res, err := ix.Query(ctx, query.Filter{Limit: query.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if res.Checkpoint == nil || res.Checkpoint.Seq >= st.IndexedSeq+1 || len(res.Warnings) == 0 {
				t.Fatalf("after tampering: status %+v, checkpoint %+v, warnings %v", st, res.Checkpoint, res.Warnings)
			}
			for _, r := range res.Records {
				if r.Seq > res.Checkpoint.Seq || strings.Contains(r.Path, "passw0rd") {
					t.Fatalf("record beyond the verified checkpoint: %+v", r)
				}
			}
			t.Logf("stopped: %s; results end at checkpoint %d", st.Failure, res.Checkpoint.Seq)
		})
	}
}

// Without VerifyHashes the result says the lines' hashes rely on the
// server's full verification, and warns when there is none.
func TestVerificationStatement(t *testing.T) {
	l := querytest.MustLog(t, t.TempDir(), traffic(75, 100, 0), querytest.LogOptions{})
	var sv *embedded.ServerVerification
	ix := mustIndex(t, l, func(c *embedded.Config) { c.LastVerified = func() *embedded.ServerVerification { return sv } })
	res, err := ix.Query(ctx, query.Filter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Verification, "has not run") || len(res.Warnings) == 0 {
		t.Fatalf("no server verification: %q %v", res.Verification, res.Warnings)
	}
	sv = &embedded.ServerVerification{Time: time.Now(), OK: true, LastSeq: res.Checkpoint.Seq}
	res, _ = ix.Query(ctx, query.Filter{Limit: 1})
	if !strings.Contains(res.Verification, "verified by the server's full verification") || len(res.Warnings) != 0 {
		t.Fatalf("with a server verification: %q %v", res.Verification, res.Warnings)
	}
	hashed := mustIndex(t, l, func(c *embedded.Config) { c.Dir = t.TempDir(); c.VerifyHashes = true })
	res, _ = hashed.Query(ctx, query.Filter{Limit: 1})
	if !strings.Contains(res.Verification, "every line's hash") || len(res.Warnings) != 0 {
		t.Fatalf("hashes verified by the index: %q %v", res.Verification, res.Warnings)
	}
}

// Writing files is paused while the audit disk is under pressure; the
// index keeps answering from memory.
func TestDiskPressure(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustLog(t, dir, traffic(81, 400, 0), querytest.LogOptions{})
	ix := mustIndex(t, l, func(c *embedded.Config) { c.DiskOK = func() bool { return false } })
	if n := len(chunkFiles(t, ix.Dir())); n != 0 {
		t.Fatalf("%d chunk files written under disk pressure", n)
	}
	st := ix.Status()
	if st.PersistError == "" {
		t.Fatalf("status: %+v", st)
	}
	res, err := ix.Query(ctx, query.Filter{Limit: 1})
	if err != nil || len(res.Warnings) == 0 {
		t.Fatalf("%v %+v", err, res)
	}
	mustMatchReference(t, ix, l, query.Filter{})
}

// Queries run while the log is written and indexed (go test -race).
func TestConcurrentQueries(t *testing.T) {
	dir := t.TempDir()
	l := querytest.MustLog(t, dir, traffic(91, 50, 0), querytest.LogOptions{})
	ix := mustIndex(t, l, func(c *embedded.Config) { c.ChunkRows = 64 })
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Complete records only: a request still pending at the
				// checkpoint is listed as Incomplete until its response is
				// indexed, then not at all until a checkpoint covers the
				// response (query.go: Incomplete means no response in the
				// log as indexed), so the Incomplete ones may come and go.
				n := 0
				if _, err := ix.Scan(ctx, query.Filter{}, func(r query.Record) error {
					if !r.Incomplete {
						n++
					}
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
				if n < last {
					t.Errorf("complete results shrank from %d to %d", last, n)
					return
				}
				last = n
			}
		}()
	}
	for i := 0; i < 10; i++ {
		l.Write(t, traffic(int64(92+i), 40, 50+40*i))
		l.Checkpoint(t)
	}
	mustCatchUp(t, ix, l)
	close(stop)
	wg.Wait()
	mustMatchReference(t, ix, l, query.Filter{})
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
