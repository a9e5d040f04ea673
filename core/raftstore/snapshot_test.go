package raftstore

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"go.etcd.io/bbolt"
)

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func mustSave(t *testing.T, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.SaveSnapshot(context.Background(), &buf); err != nil {
		t.Fatalf("SaveSnapshot: %v", err)
	}
	return buf.Bytes()
}

func TestSnapshotSaveRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rec := &keyRecorder{}
	cfg := testConfig(dir, "node1")
	cfg.Now = func() time.Time { return fixedNow }
	cfg.OnApply = rec.record
	s := MustOpen(t, cfg)
	mustPut(t, s, "a", "1", "b/c", "2", "b/d/e", "3", "keep", "k")
	saved := dump(t, s)
	savedIndex := s.AppliedIndex()
	archive := mustSave(t, s)

	files := untar(t, archive)
	var meta archiveMeta
	if err := json.Unmarshal(files[entryMeta], &meta); err != nil {
		t.Fatal(err)
	}
	if meta.FormatVersion != archiveFormat || meta.NodeID != "node1" || meta.Index != savedIndex ||
		!meta.Created.Equal(fixedNow) || meta.StateSHA256 != fmt.Sprintf("%x", sha256.Sum256(files[entryState])) {
		t.Errorf("meta.json = %+v", meta)
	}

	mustPut(t, s, "a", "changed", "new/x", "y")
	if err := s.Delete(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreSnapshot(ctx, bytes.NewReader(archive)); err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	if err := diff(dump(t, s), saved); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	if _, _, nils := rec.snapshot(); nils != 1 {
		t.Errorf("OnApply(nil) called %d times on restore, want 1", nils)
	}
	// raft placed the restore above its log; the state records that index.
	if s.AppliedIndex() <= savedIndex {
		t.Errorf("AppliedIndex %d after restore, want above %d", s.AppliedIndex(), savedIndex)
	}
	mustPut(t, s, "post", "restore")
	saved["post"] = "restore"
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := MustOpen(t, cfg)
	if err := diff(dump(t, s2), saved); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// untar returns the archive's files by name.
func untar(t *testing.T, archive []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
		order = append(order, h.Name)
	}
	if strings.Join(order, ",") != "state.db,meta.json,SHA256SUMS,SHA256SUMS.sealed" {
		t.Fatalf("archive entries %q", order)
	}
	return files
}

// retar builds an archive from files, in the standard order plus extras.
func retar(t *testing.T, files map[string][]byte, extra ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range append([]string{entryState, entryMeta, entrySums, entrySealed}, extra...) {
		b, ok := files[name]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// editBolt applies fn to a copy of a bbolt file and returns the result.
func editBolt(t *testing.T, file []byte, fn func(*bbolt.Tx) error) []byte {
	t.Helper()
	path := writeTempFile(t, file)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resum recomputes SHA256SUMS (and meta's state fields) so that only the
// deeper checks can catch the tampering.
func resum(t *testing.T, files map[string][]byte, metaEdit func(*archiveMeta)) {
	t.Helper()
	var meta archiveMeta
	if err := json.Unmarshal(files[entryMeta], &meta); err != nil {
		t.Fatal(err)
	}
	meta.StateSHA256 = fmt.Sprintf("%x", sha256.Sum256(files[entryState]))
	meta.StateSize = int64(len(files[entryState]))
	if metaEdit != nil {
		metaEdit(&meta)
	}
	mj, _ := json.Marshal(meta)
	files[entryMeta] = mj
	files[entrySums] = fmt.Appendf(nil, "%x  state.db\n%x  meta.json\n", sha256.Sum256(files[entryState]), sha256.Sum256(mj))
	files[entrySealed] = fmt.Appendf(nil, "%s%x\n", unkeyedPrefix, sha256.Sum256(files[entrySums]))
}

func TestSnapshotRejectsCorruptInput(t *testing.T) {
	ctx := context.Background()
	s := MustNode(t)
	mustPut(t, s, "a", "1", "b/c", "2")
	for i := range 200 { // make state.db span several pages
		mustPut(t, s, fmt.Sprintf("bulk/%03d", i), strings.Repeat("v", 100))
	}
	archive := mustSave(t, s)
	mustPut(t, s, "after", "save") // current state differs from the archive
	before := dump(t, s)

	// Sanity: the untouched archive restores fine into another node.
	other := MustNode(t)
	if err := other.RestoreSnapshot(ctx, bytes.NewReader(archive)); err != nil {
		t.Fatalf("valid archive rejected: %v", err)
	}

	rng := rand.NewChaCha8([32]byte{42})
	cases := map[string]func() []byte{
		"empty":     func() []byte { return nil },
		"random":    func() []byte { b := make([]byte, 4096); _, _ = rng.Read(b); return b },
		"truncated": func() []byte { return archive[:len(archive)/2] },
		"no trailer": func() []byte {
			return archive[:len(archive)-4]
		},
		"flipped byte": func() []byte {
			b := bytes.Clone(archive)
			b[len(b)/2] ^= 0x40
			return b
		},
		"tampered state.db": func() []byte {
			f := untar(t, archive)
			f[entryState][len(f[entryState])/2] ^= 1
			return retar(t, f)
		},
		"tampered state.db with matching sums": func() []byte {
			f := untar(t, archive)
			for i := 4096; i < len(f[entryState]); i += 97 { // scribble over pages, keep meta pages
				f[entryState][i] ^= 0xff
			}
			resum(t, f, nil)
			return retar(t, f)
		},
		"not bolt with matching sums": func() []byte {
			f := untar(t, archive)
			f[entryState] = []byte(strings.Repeat("not a database", 500))
			resum(t, f, nil)
			return retar(t, f)
		},
		"nested bucket in data": func() []byte {
			f := untar(t, archive)
			f[entryState] = editBolt(t, f[entryState], func(tx *bbolt.Tx) error {
				_, err := tx.Bucket(bucketData).CreateBucket([]byte("a/nested"))
				return err
			})
			resum(t, f, nil)
			return retar(t, f)
		},
		"future format": func() []byte {
			f := untar(t, archive)
			resum(t, f, func(m *archiveMeta) { m.FormatVersion = 2 })
			return retar(t, f)
		},
		"meta index mismatch": func() []byte {
			f := untar(t, archive)
			resum(t, f, func(m *archiveMeta) { m.Index += 7 })
			return retar(t, f)
		},
		"missing sums": func() []byte {
			f := untar(t, archive)
			delete(f, entrySums)
			return retar(t, f)
		},
		"extra entry": func() []byte {
			f := untar(t, archive)
			f["evil.sh"] = []byte("rm -rf /")
			return retar(t, f, "evil.sh")
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.RestoreSnapshot(ctx, bytes.NewReader(mk()))
			wantCode(t, err, core.CodeInvalid)
			if !strings.Contains(err.Error(), "snapshot rejected") {
				t.Errorf("unclear error: %v", err)
			}
			if err := diff(dump(t, s), before); err != nil {
				t.Fatalf("state changed by a rejected restore: %v", err)
			}
		})
	}
	mustPut(t, s, "still", "writable")
}

func TestSaveSnapshotHonoursContext(t *testing.T) {
	s := MustNode(t)
	mustPut(t, s, "a", "1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.SaveSnapshot(ctx, io.Discard); err != context.Canceled {
		t.Errorf("SaveSnapshot with a cancelled context = %v", err)
	}
	if err := s.RestoreSnapshot(ctx, bytes.NewReader(mustSave(t, s))); err != context.Canceled {
		t.Errorf("RestoreSnapshot with a cancelled context = %v", err)
	}
}

// FuzzReadArchive feeds arbitrary bytes to the archive reader: it must never
// panic, and everything it rejects is CodeInvalid.
func FuzzReadArchive(f *testing.F) {
	s := MustNode(f)
	mustPut(f, s, "a", "1")
	var buf bytes.Buffer
	if err := s.SaveSnapshot(context.Background(), &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path, _, _, err := readArchive(context.Background(), bytes.NewReader(data), dir)
		if err == nil {
			if _, _, err := validateState(path); err != nil {
				t.Fatalf("accepted archive has an invalid state: %v", err)
			}
			return
		}
		if core.CodeOf(err) != core.CodeInvalid {
			t.Fatalf("rejection with code %q: %v", core.CodeOf(err), err)
		}
	})
}
