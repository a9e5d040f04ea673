package merkle

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// MustFileStore opens a file store in a fresh folder.
func MustFileStore(tb testing.TB) (*FileStore, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "merkle")
	s, err := OpenFileStore(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, dir
}

func appendAll(tb testing.TB, s Store, f *Frontier, leaves []Hash) {
	tb.Helper()
	for _, l := range leaves {
		f.Append(l, s.Add)
	}
	if err := s.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// A file store answers exactly what a memory store answers, across
// reopening, truncation and regrowth.
func TestFileStoreMatchesMemStore(t *testing.T) {
	leaves := randomLeaves(300, 9)
	fs, dir := MustFileStore(t)
	var f Frontier
	appendAll(t, fs, &f, leaves[:150])
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	fs, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if fs.Leaves() != 150 {
		t.Fatalf("reopened store has %d leaves, want 150", fs.Leaves())
	}
	appendAll(t, fs, &f, leaves[150:])
	mem, _ := MustTree(t, leaves)
	for _, size := range []uint64{1, 2, 99, 150, 151, 256, 300} {
		a, err1 := RootAt(fs, size)
		b, err2 := RootAt(mem, size)
		if err1 != nil || err2 != nil || a != b {
			t.Fatalf("size %d: file %s %v, mem %s %v", size, a, err1, b, err2)
		}
		p, err := InclusionProof(fs, size-1, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(size-1, size, leaves[size-1], p, b); err != nil {
			t.Fatal(err)
		}
	}
	// Truncate back and regrow: the same tree again.
	if err := fs.Truncate(77); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Node(0, 77); !errors.Is(err, ErrRange) {
		t.Fatalf("leaf 77 after truncating to 77: %v", err)
	}
	g, err := FrontierAt(fs, 77)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, fs, &g, leaves[77:])
	r, _ := RootAt(fs, 300)
	if want, _ := RootAt(mem, 300); r != want || g.Root() != want {
		t.Fatalf("regrown root %s / %s, want %s", r, g.Root(), want)
	}
}

// After a crash the level files can disagree (a partial last node, an
// upper level behind the leaves): opening cuts the store back to the
// largest tree all levels hold, and regrowing from there restores it.
func TestFileStoreRecoversFromTornLevels(t *testing.T) {
	leaves := randomLeaves(64, 2)
	fs, dir := MustFileStore(t)
	var f Frontier
	appendAll(t, fs, &f, leaves)
	fs.Close()
	// Level 0 gets half a node more; level 2 loses its last node (leaves
	// 60..63), so only 59 leaves' worth... of complete level-2 nodes
	// survive: 15 nodes cover leaves 0..59.
	l0 := filepath.Join(dir, "level-00")
	b, _ := os.ReadFile(l0)
	os.WriteFile(l0, append(b, make([]byte, 16)...), 0o600)
	l2 := filepath.Join(dir, "level-02")
	b2, _ := os.ReadFile(l2)
	os.WriteFile(l2, b2[:len(b2)-32], 0o600)
	fs, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if got := fs.Leaves(); got != 63 {
		t.Fatalf("leaves after recovery: %d, want 63 (level 2 holds 15 nodes: sizes up to 63 need no 16th)", got)
	}
	g, err := FrontierAt(fs, fs.Leaves())
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, fs, &g, leaves[fs.Leaves():])
	if r, _ := RootAt(fs, 64); r != f.Root() {
		t.Fatalf("root after recovery %s, want %s", r, f.Root())
	}
}

// Readers run while the appender appends and flushes.
func TestFileStoreConcurrentReaders(t *testing.T) {
	leaves := randomLeaves(2000, 4)
	fs, _ := MustFileStore(t)
	var f Frontier
	appendAll(t, fs, &f, leaves[:1])
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := fs.Leaves()
				if _, err := InclusionProof(fs, n/2, n); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i < len(leaves); i += 10 {
		appendAll(t, fs, &f, leaves[i:min(i+10, len(leaves))])
	}
	close(stop)
	wg.Wait()
}

func TestDepth(t *testing.T) {
	for n, want := range map[uint64]int{0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 8: 4, 9: 5, 1 << 20: 21} {
		if got := Depth(n); got != want {
			t.Errorf("Depth(%d) = %d, want %d", n, got, want)
		}
	}
}
