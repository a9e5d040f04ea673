package raftstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// mustStateFile returns the bytes of a small but multi-page state file with
// a nested bucket and a synced free list, written by bbolt itself.
func mustStateFile(tb testing.TB) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "state.db")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{PageSize: 4096})
	if err != nil {
		tb.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketData)
		if err != nil {
			return err
		}
		for i := range 300 {
			if err := b.Put([]byte{byte(i >> 8), byte(i), 'k'}, bytes.Repeat([]byte{byte(i)}, 40)); err != nil {
				return err
			}
		}
		if err := b.Put([]byte("big"), make([]byte, 9000)); err != nil { // overflow pages
			return err
		}
		nested, err := b.CreateBucket([]byte("nested"))
		if err != nil {
			return err
		}
		return nested.Put([]byte("inline"), []byte("v")) // small: stays inline
	})
	if err == nil {
		err = db.Update(func(tx *bbolt.Tx) error { // free some pages
			return tx.Bucket(bucketData).Delete([]byte("big"))
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// openAndWalk opens a file that passed checkBoltFile the way the FSM does
// (read-write, free list rebuilt) and reads everything. A panic here means
// the checker let through a file bbolt cannot handle.
func openAndWalk(tb testing.TB, path string) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, boltOptions(false))
	if err != nil {
		return // a clean error is fine
	}
	defer db.Close()
	var walk func(b *bbolt.Bucket) error
	walk = func(b *bbolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					return walk(nb)
				}
			}
			return nil
		})
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error {
			if b == nil {
				tb.Fatal("checked file has a top-level non-bucket")
			}
			return walk(b)
		})
	})
}

func writeTempFile(tb testing.TB, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "in.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestCheckBoltFile(t *testing.T) {
	good := mustStateFile(t)
	if err := checkBoltFile(writeTempFile(t, good)); err != nil {
		t.Fatalf("valid file rejected: %v", err)
	}
	ps := 4096
	mutate := map[string]func(b []byte) []byte{
		"empty":           func([]byte) []byte { return nil },
		"truncated":       func(b []byte) []byte { return b[:len(b)/2] },
		"meta magic":      func(b []byte) []byte { b[16] ^= 1; return b },
		"meta 1 checksum": func(b []byte) []byte { b[ps+16+60] ^= 1; return b },
		"page id":         func(b []byte) []byte { b[3*ps] ^= 0x7f; return b },
		"page type":       func(b []byte) []byte { b[3*ps+8] = 0x08; return b },
		"element count":   func(b []byte) []byte { b[3*ps+10], b[3*ps+11] = 0xff, 0x7f; return b },
		"every page scribbled": func(b []byte) []byte {
			for i := 2 * ps; i < len(b); i += 7 {
				b[i] ^= 0xa5
			}
			return b
		},
	}
	for name, m := range mutate {
		t.Run(name, func(t *testing.T) {
			if err := checkBoltFile(writeTempFile(t, m(bytes.Clone(good)))); err == nil {
				t.Errorf("corrupt file accepted")
			}
		})
	}
	// Single-byte damage over the data pages: whatever the checker accepts,
	// bbolt must open (rebuilding its free list) and read without panicking.
	hwm := int(max(ne.Uint64(good[pageHeaderSize+40:]), ne.Uint64(good[ps+pageHeaderSize+40:])))
	accepted, tried := 0, 0
	for off := 2 * ps; off < hwm*ps; off++ {
		// Every byte of page headers and element arrays; a sample of the rest.
		if (off%ps >= 256 || off%2 != 0) && off%97 != 0 {
			continue
		}
		tried++
		b := bytes.Clone(good)
		b[off] ^= 0xff
		if checkBolt(bytes.NewReader(b), int64(len(b))) == nil {
			accepted++
			openAndWalk(t, writeTempFile(t, b))
		}
	}
	t.Logf("%d of %d damaged files (%d pages) passed the structural check (value bytes, slack)", accepted, tried, hwm)
}

// FuzzCheckBoltFile damages a real state file with a fuzzed patch (4 bytes
// per edit: 3-byte offset, xor mask). Whatever checkBolt accepts, bbolt must
// open and read without panicking.
func FuzzCheckBoltFile(f *testing.F) {
	good := mustStateFile(f)
	f.Add([]byte{0, 0x30, 0x00, 0xff})                      // page 3 header
	f.Add([]byte{0, 0x10, 0x28, 0x01, 0, 0x30, 0x0a, 0x7f}) // meta 1, page 3 count
	f.Fuzz(func(t *testing.T, patch []byte) {
		b := bytes.Clone(good)
		for ; len(patch) >= 4; patch = patch[4:] {
			off := (int(patch[0])<<16 | int(patch[1])<<8 | int(patch[2])) % len(b)
			b[off] ^= patch[3]
		}
		if checkBolt(bytes.NewReader(b), int64(len(b))) == nil {
			openAndWalk(t, writeTempFile(t, b))
		}
	})
}
