package chain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenLog writes the deterministic golden scenario and returns the
// segment files in chain order.
func goldenLog(t *testing.T) []string {
	t.Helper()
	clk := newClock()
	dir := t.TempDir()
	cfg := Config{
		Path:               filepath.Join(dir, "audit.log"),
		NodeID:             "node-a",
		Signer:             testKey(1),
		Now:                clk.Now,
		CheckpointEvery:    4,
		CheckpointInterval: -1,
		WatchInterval:      -1,
	}
	w := MustOpen(t, cfg)
	bodies := []string{
		`{"time":"2025-03-14T09:26:53.839793Z","type":"request","auth":{"client_token":"hmac-sha256:7f1c1cbd0b0bb5ad1eaa0e0a5a35b31b58f4b5cf7d0b7a4ef0ca6e4ba0c5e9d1","accessor":"hmac-sha256:2bd1e5a8e3f0cba3fe6d1a8cbb3e0e0d2f9ad3b8ac6e4ba8d6a0c5e1f9b7c3d5","policies":["default","app"]},"request":{"id":"7f9b8c1e-1b7e-4c4f-9d7b-3c3a0e6f2a11","operation":"read","path":"secret/data/app","remote_address":"10.0.0.7"}}`,
		`{"time":"2025-03-14T09:26:54.089793Z","type":"response","auth":{"client_token":"hmac-sha256:7f1c1cbd0b0bb5ad1eaa0e0a5a35b31b58f4b5cf7d0b7a4ef0ca6e4ba0c5e9d1","policies":["default","app"]},"request":{"id":"7f9b8c1e-1b7e-4c4f-9d7b-3c3a0e6f2a11","operation":"read","path":"secret/data/app"},"response":{"data":{"data":{"note":"hmac-sha256:91ac9f5c2d0e3b7a","owner":"caf\u00e9 \"ops\""}}}}`,
		`{}`,
		`{"time":"2025-03-14T09:26:54.339793Z","type":"request","auth":{"client_token":"hmac-sha256:0d0e0a0d"},"request":{"operation":"update","path":"sys/seal"},"error":"permission denied"}`,
	}
	for _, b := range bodies {
		clk.Advance(250 * time.Millisecond)
		MustAppend(t, w, b)
	}
	clk.Advance(time.Second)
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies[:2] {
		clk.Advance(250 * time.Millisecond)
		MustAppend(t, w, b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := ListSegments(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, s := range segs {
		paths = append(paths, s.Path)
	}
	return paths
}

// TestGolden pins the exact bytes of a log written with a fixed clock,
// node id, key and bodies. Run with -update to regenerate.
func TestGolden(t *testing.T) {
	paths := goldenLog(t)
	if len(paths) != 2 {
		t.Fatalf("want 2 segments, got %v", paths)
	}
	if got, want := filepath.Base(paths[0]), "audit-2025-03-14T09-26-55.589.log"; got != want {
		t.Errorf("rotated segment name %q, want %q", got, want)
	}
	for i, p := range paths {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", []string{"segment1.golden", "segment2.golden"}[i])
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s:\n got: %s\nwant: %s", p, golden, got, want)
		}
	}
	rep := MustVerifyLog(t, filepath.Join(filepath.Dir(paths[0]), "audit.log"), VerifyOptions{PublicKey: pub(testKey(1)), NodeID: "node-a"})
	if rep.Entries != 6 || rep.Segments != 2 || rep.LastSeq != 13 || rep.Checkpoints != 3 {
		t.Errorf("report %+v", rep)
	}
}

// TestIndependentVerifier checks the golden files with a verifier written
// only from docs/audit-format.md: no code from this package, only
// crypto/sha256 — the hash chain, the segment headers' trees and every
// checkpoint's Merkle root.
func TestIndependentVerifier(t *testing.T) {
	prev, seq := strings.Repeat("0", 64), 0
	var frontier [][32]byte // perfect subtrees, largest first
	size := 0
	node := func(l, r [32]byte) [32]byte { return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...)) }
	root := func() string {
		if len(frontier) == 0 {
			e := sha256.Sum256(nil)
			return hex.EncodeToString(e[:])
		}
		h := frontier[len(frontier)-1]
		for i := len(frontier) - 2; i >= 0; i-- {
			h = node(frontier[i], h)
		}
		return hex.EncodeToString(h[:])
	}
	hexes := func() []string {
		out := []string{}
		for _, f := range frontier {
			out = append(out, hex.EncodeToString(f[:]))
		}
		return out
	}
	checkpoints := 0
	for _, name := range []string{"segment1.golden", "segment2.golden"} {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			i := strings.LastIndex(line, `,"hash":"`)
			canonical := line[:i] + "}"
			sum := sha256.Sum256([]byte(prev + canonical))
			h := hex.EncodeToString(sum[:])
			seq++
			if line[i+9:] != h+`"}` || !strings.HasSuffix(canonical, `"prev_hash":"`+prev+`"}`) ||
				!strings.Contains(canonical, `"seq":`+itoa(seq)+`,"node_id":"`) {
				t.Fatalf("%s: seq %d does not verify", name, seq)
			}
			var rec struct {
				Type       string
				Checkpoint struct {
					TreeSize int    `json:"tree_size"`
					Root     string `json:"root"`
				}
				Segment struct {
					Tree struct {
						Size     int      `json:"size"`
						Frontier []string `json:"frontier"`
					}
				}
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			switch rec.Type {
			case "vigil.checkpoint":
				if rec.Checkpoint.TreeSize != size || rec.Checkpoint.Root != root() {
					t.Fatalf("%s: checkpoint at seq %d says tree %d/%s, the lines give %d/%s", name, seq, rec.Checkpoint.TreeSize, rec.Checkpoint.Root, size, root())
				}
				checkpoints++
			case "vigil.segment":
				if rec.Segment.Tree.Size != size || strings.Join(rec.Segment.Tree.Frontier, ",") != strings.Join(hexes(), ",") {
					t.Fatalf("%s: header's tree is not the tree before it", name)
				}
			}
			// Append the leaf SHA-256(0x00 || raw hash): merge with the
			// trailing subtrees of equal height (one per trailing 1 bit).
			leaf := sha256.Sum256(append([]byte{0}, sum[:]...))
			for n := size; n&1 == 1; n >>= 1 {
				leaf = node(frontier[len(frontier)-1], leaf)
				frontier = frontier[:len(frontier)-1]
			}
			frontier = append(frontier, leaf)
			size++
			prev = h
		}
		f.Close()
	}
	if seq != 13 || checkpoints != 3 {
		t.Fatalf("verified %d lines and %d checkpoints, want 13 and 3", seq, checkpoints)
	}
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// TestDocExample keeps the worked example in docs/audit-format.md honest:
// it must be the first lines of the golden log, byte for byte, and verify.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "audit-format.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- worked-example:begin -->\n```json\n", "```\n<!-- worked-example:end -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatal("worked example markers not found in docs/audit-format.md")
	}
	example := doc[i+len(begin) : j]
	golden, err := os.ReadFile(filepath.Join("testdata", "segment1.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(golden, example) || len(example) == 0 {
		t.Fatal("the worked example is not a prefix of testdata/segment1.golden; regenerate it")
	}
	rep, err := VerifyReader(context.Background(), bytes.NewReader(example), VerifyOptions{PublicKey: pub(testKey(1))})
	if err != nil || !rep.OK {
		t.Fatalf("worked example does not verify: %v %v", rep, err)
	}
}
