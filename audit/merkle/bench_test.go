package merkle

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAppend is the Merkle cost the audit writer pays per line: one
// leaf hash and, on average, one interior hash, plus queueing the nodes
// for the store.
func BenchmarkAppend(b *testing.B) {
	var f Frontier
	st := &MemStore{}
	var raw [32]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.LittleEndian.PutUint64(raw[:], uint64(i))
		f.Append(LeafHash(raw[:]), st.Add)
		if i%512 == 511 {
			if err := st.Flush(); err != nil {
				b.Fatal(err)
			}
			st.levels = nil // keep memory flat; only the hashing is measured
			st.pending = st.pending[:0]
			f = Frontier{}
		}
	}
}

// bigStore builds (once per run) a file store of n synthetic leaves in a
// temporary folder kept for the benchmark's lifetime.
func bigStore(b *testing.B, n uint64) *FileStore {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "merkle")
	fs, err := OpenFileStore(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fs.Close(); os.RemoveAll(dir) })
	var f Frontier
	var raw [32]byte
	for i := uint64(0); i < n; i++ {
		binary.LittleEndian.PutUint64(raw[:], i)
		f.Append(LeafHash(raw[:]), fs.Add)
		if i%4096 == 4095 {
			if err := fs.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := fs.Flush(); err != nil {
		b.Fatal(err)
	}
	return fs
}

// BenchmarkProve10M is the latency of an inclusion proof and of a
// consistency proof over a 10-million-entry log (a synthetic tree in a file
// store; building it takes a few seconds and ~640 MB of disk and is not
// timed).
func BenchmarkProve10M(b *testing.B) {
	const n = 10_000_000
	fs := bigStore(b, n)
	b.Run("inclusion", func(b *testing.B) {
		for i := uint64(0); b.Loop(); i++ {
			idx := (i * 7_919_993) % n
			if _, err := InclusionProof(fs, idx, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency", func(b *testing.B) {
		for i := uint64(1); b.Loop(); i++ {
			m := 1 + (i*7_919_993)%(n-1)
			if _, err := ConsistencyProof(fs, m, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("root", func(b *testing.B) {
		for i := uint64(1); b.Loop(); i++ {
			if _, err := RootAt(fs, n-i%1000); err != nil {
				b.Fatal(err)
			}
		}
	})
}
