package chain

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// segLines is a log as segments of lines (each with its trailing newline).
type segLines [][]string

// buildLog writes a multi-segment log with the given node id and body
// prefix and returns it as segments of lines, plus the final head as a
// trusted checkpoint.
func buildLog(t testing.TB, node, tag string) (segLines, Checkpoint) {
	t.Helper()
	cfg := testConfig(t)
	cfg.NodeID = node
	cfg.maxBytes = 4 << 10
	cfg.CheckpointEvery = 5
	w := MustOpen(t, cfg)
	for i := 0; i < 30; i++ {
		MustAppend(t, w, fmt.Sprintf(`{"type":"request","request":{"id":"%s-%d","path":"secret/data/x"}}`, tag, i))
	}
	cp, err := w.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	segs, err := ListSegments(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	var out segLines
	for _, s := range segs {
		out = append(out, readLines(t, s.Path))
	}
	if len(out) < 3 || len(out[len(out)-1]) < 8 {
		t.Fatalf("want >= 3 segments, the last with >= 8 lines, got %d segments", len(out))
	}
	return out, cp
}

func (s segLines) clone() segLines {
	out := make(segLines, len(s))
	for i := range s {
		out[i] = append([]string(nil), s[i]...)
	}
	return out
}

// verifySegs writes the segments to files and verifies them in order.
func verifySegs(t testing.TB, s segLines, opts VerifyOptions) *Report {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, lines := range s {
		p := filepath.Join(dir, fmt.Sprintf("seg-%03d.log", i))
		if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	rep, err := Verify(context.Background(), FileSources(paths), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// relink recomputes hash and prev_hash of lines[from:] (an attacker who
// rewrites the chain after an edit), starting from the line before.
func relink(t testing.TB, lines []string, from int) {
	t.Helper()
	lh := newLineHasher()
	var h [hashHexLen]byte
	prev := []byte(ZeroHash)
	if from > 0 {
		f, err := parseChain([]byte(strings.TrimSuffix(lines[from-1], "\n")))
		if err != nil {
			t.Fatal(err)
		}
		prev = append([]byte(nil), f.Hash...)
	}
	for i := from; i < len(lines); i++ {
		line := []byte(strings.TrimSuffix(lines[i], "\n"))
		f, err := parseChain(line)
		if err != nil {
			t.Fatal(err)
		}
		body := append(line[:f.BodyEnd:f.BodyEnd], '}')
		lines[i] = string(appendLine(nil, body, f.Seq, string(f.NodeID), prev, lh, h[:]))
		prev = append(prev[:0], h[:]...)
	}
}

// lastCheckpointIndex returns the index of a checkpoint line in lines that
// is not the last line.
func checkpointIndex(t testing.TB, lines []string) int {
	for i := len(lines) - 2; i > 0; i-- {
		if strings.HasPrefix(lines[i], `{"type":"vigil.checkpoint"`) {
			return i
		}
	}
	t.Fatal("no checkpoint line")
	return -1
}

func TestTamperDetected(t *testing.T) {
	base, head := buildLog(t, "node-a", "a")
	otherNode, _ := buildLog(t, "node-b", "a")
	otherChain, _ := buildLog(t, "node-a", "z")
	key := pub(testKey(1))

	if rep := verifySegs(t, base, VerifyOptions{PublicKey: key, Checkpoint: &head, NodeID: "node-a"}); !rep.OK || len(rep.Warnings) != 0 {
		t.Fatalf("untampered log: %v", rep)
	}

	cases := []struct {
		name   string
		tamper func(s segLines) segLines
		opts   VerifyOptions
		want   FailureKind
	}{
		{"edit a byte in a body", func(s segLines) segLines {
			s[1][3] = strings.Replace(s[1][3], "secret/data/x", "secret/data/y", 1)
			return s
		}, VerifyOptions{}, KindEdited},
		{"delete a line", func(s segLines) segLines {
			s[1] = append(s[1][:4], s[1][5:]...)
			return s
		}, VerifyOptions{}, KindDeleted},
		{"swap two lines", func(s segLines) segLines {
			s[1][3], s[1][4] = s[1][4], s[1][3]
			return s
		}, VerifyOptions{}, KindReordered},
		{"insert a copied line", func(s segLines) segLines {
			s[1] = append(s[1][:4], append([]string{s[1][3]}, s[1][4:]...)...)
			return s
		}, VerifyOptions{}, KindReordered},
		{"delete a whole middle segment", func(s segLines) segLines {
			return append(s[:1], s[2:]...)
		}, VerifyOptions{}, KindDeleted},
		{"truncate the tail, checked against a checkpoint", func(s segLines) segLines {
			last := len(s) - 1
			s[last] = s[last][:len(s[last])-6] // past the checkpointed seq
			return s
		}, VerifyOptions{Checkpoint: &head}, KindTruncated},
		{"drop the newest segment, checked against a checkpoint", func(s segLines) segLines {
			return s[:len(s)-1]
		}, VerifyOptions{Checkpoint: &head}, KindTruncated},
		{"forge a checkpoint signature with another key", func(s segLines) segLines {
			last := len(s) - 1
			i := checkpointIndex(t, s[last])
			f, _ := parseChain([]byte(strings.TrimSuffix(s[last][i], "\n")))
			cp, err := parseCheckpointBody(append([]byte(s[last][i][:f.BodyEnd]), '}'))
			if err != nil {
				t.Fatal(err)
			}
			cp.Sign(testKey(9))
			var h [hashHexLen]byte
			s[last][i] = string(appendLine(nil, checkpointBody(cp), f.Seq, "node-a", f.PrevHash, newLineHasher(), h[:]))
			relink(t, s[last], i)
			return s
		}, VerifyOptions{PublicKey: key}, KindForgedCheckpoint},
		{"forge a signature under the trusted key id", func(s segLines) segLines {
			last := len(s) - 1
			i := checkpointIndex(t, s[last])
			s[last][i] = strings.Replace(s[last][i], `"signature":"`, `"signature":"AAAA`, 1)
			s[last][i] = s[last][i][:strings.Index(s[last][i], `"signature":"`)+13] + strings.Repeat("A", 86) + "==" + s[last][i][strings.Index(s[last][i], `","key_id"`):]
			relink(t, s[last], i)
			return s
		}, VerifyOptions{PublicKey: key}, KindForgedCheckpoint},
		{"edit and rewrite the rest of the chain", func(s segLines) segLines {
			last := len(s) - 1
			i := checkpointIndex(t, s[last]) - 1
			s[last][i] = strings.Replace(s[last][i], "secret/data/x", "secret/data/y", 1)
			relink(t, s[last], i)
			return s
		}, VerifyOptions{PublicKey: key}, KindForgedCheckpoint},
		{"splice a segment from another node", func(s segLines) segLines {
			s[1] = otherNode[1]
			return s
		}, VerifyOptions{}, KindSplice},
		{"splice a segment from another chain of the same node", func(s segLines) segLines {
			s[1] = otherChain[1]
			return s
		}, VerifyOptions{}, KindSplice},
		{"concatenate two segments into one file", func(s segLines) segLines {
			s[0] = append(s[0], s[1]...)
			return append(s[:1], s[2:]...)
		}, VerifyOptions{}, KindSplice},
		{"garbage line in the middle", func(s segLines) segLines {
			s[1][2] = "{\"not\":\"a chain line\"}\n"
			return s
		}, VerifyOptions{}, KindMalformed},
		{"drop the genesis segment", func(s segLines) segLines {
			return s[1:]
		}, VerifyOptions{}, KindDeleted},
		{"wrong expected node", func(s segLines) segLines { return s }, VerifyOptions{NodeID: "node-x"}, KindSplice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := verifySegs(t, tc.tamper(base.clone()), tc.opts)
			if rep.OK || rep.Failure == nil || rep.Failure.Kind != tc.want {
				t.Fatalf("want failure %s, got %v", tc.want, rep)
			}
			t.Logf("%v", rep.Failure)
		})
	}
}

// TestTruncationWithoutCheckpointIsUndetectable documents why trusted
// checkpoints matter: a clean cut at a line boundary leaves a valid chain.
func TestTruncationWithoutCheckpointIsUndetectable(t *testing.T) {
	base, _ := buildLog(t, "node-a", "a")
	s := base.clone()
	s[len(s)-1] = s[len(s)-1][:2]
	if rep := verifySegs(t, s, VerifyOptions{}); !rep.OK {
		t.Fatalf("truncated log: %v", rep)
	}
}

// TestTornTailIsAWarning: a partial last line of the last segment is a
// warning, but a partial line anywhere else is malformed.
func TestTornTailIsAWarning(t *testing.T) {
	base, _ := buildLog(t, "node-a", "a")
	s := base.clone()
	last := len(s) - 1
	s[last] = append(s[last], `{"type":"request","req`)
	rep := verifySegs(t, s, VerifyOptions{})
	if !rep.OK || len(rep.Warnings) != 1 || rep.Warnings[0].Kind != WarnTornTail {
		t.Fatalf("torn tail: %v", rep)
	}
	s = base.clone()
	s[0] = append(s[0], `{"type":"request","req`)
	if rep := verifySegs(t, s, VerifyOptions{}); rep.OK || rep.Failure.Kind != KindMalformed {
		t.Fatalf("torn middle segment: %v", rep)
	}
}

// TestVerifyReaderMidChain verifies a stream that starts mid-chain, the way
// lines come back from Kafka or ClickHouse.
func TestVerifyReaderMidChain(t *testing.T) {
	base, head := buildLog(t, "node-a", "a")
	var all []string
	for _, s := range base {
		all = append(all, s...)
	}
	from := 17
	prev, _ := parseChain([]byte(strings.TrimSuffix(all[from-1], "\n")))
	stream := strings.Join(all[from:], "")
	ctx := context.Background()

	rep, err := VerifyReader(ctx, strings.NewReader(stream), VerifyOptions{
		StartAfter: &StartAfter{Seq: prev.Seq, Hash: string(prev.Hash)}, Checkpoint: &head, PublicKey: pub(testKey(1))})
	if err != nil || !rep.OK || rep.FirstSeq != prev.Seq+1 || rep.Anchor != "start_after" {
		t.Fatalf("start-after: %v %v", rep, err)
	}
	rep, _ = VerifyReader(ctx, strings.NewReader(stream), VerifyOptions{StartAfter: &StartAfter{Seq: prev.Seq, Hash: ZeroHash}})
	if rep.OK || rep.Failure.Kind != KindSplice {
		t.Fatalf("wrong anchor hash: %v", rep)
	}
	rep, _ = VerifyReader(ctx, strings.NewReader(stream), VerifyOptions{StartAfter: &StartAfter{Seq: prev.Seq - 2, Hash: ZeroHash}})
	if rep.OK || rep.Failure.Kind != KindDeleted {
		t.Fatalf("stream starting after the anchor: %v", rep)
	}
	if rep, _ = VerifyReader(ctx, strings.NewReader(stream), VerifyOptions{TrustFirst: true}); !rep.OK || rep.Anchor != "trust_first" {
		t.Fatalf("trust first: %v", rep)
	}
	if rep, _ = VerifyReader(ctx, strings.NewReader(stream), VerifyOptions{}); rep.OK {
		t.Fatal("mid-chain stream verified as if from genesis")
	}
	// The whole log as one stream: headers in the middle are fine here.
	if rep, _ = VerifyReader(ctx, strings.NewReader(strings.Join(all, "")), VerifyOptions{Checkpoint: &head}); !rep.OK {
		t.Fatalf("whole stream: %v", rep)
	}
}

// TestVerifyLongLinesAndSmallChunks exercises lines longer than the read
// chunk and chunk boundaries at every position.
func TestVerifyLongLinesAndSmallChunks(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	MustAppend(t, w, `{"big":"`+strings.Repeat("x", 100<<10)+`"}`)
	for i := 0; i < 20; i++ {
		MustAppend(t, w, vaultBody(i))
	}
	w.Close()
	data, _ := os.ReadFile(cfg.Path)
	for _, chunk := range []int{1, 7, 512, 4096, 1 << 20} {
		rep, err := VerifyReader(context.Background(), bytes.NewReader(data), VerifyOptions{ChunkBytes: chunk, Workers: 3})
		if err != nil || !rep.OK || rep.Entries != 21 || rep.Bytes != int64(len(data)) {
			t.Fatalf("chunk %d: %v %v", chunk, rep, err)
		}
	}
}
