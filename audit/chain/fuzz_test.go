package chain

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// fuzzLog builds a small valid single-segment log and a second one from
// another chain, plus a trusted checkpoint at the first log's last line.
func fuzzLog(tb testing.TB) (log, other []byte, head Checkpoint) {
	build := func(tag string) ([]byte, Checkpoint) {
		cfg := testConfig(tb)
		cfg.CheckpointEvery = 4
		w, err := Open(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		for i := 0; i < 8; i++ {
			if _, err := w.Append(context.Background(), []byte(`{"type":"request","request":{"id":"`+tag+strings.Repeat("x", i)+`"}}`)); err != nil {
				tb.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
		seq, hash := w.Head()
		return []byte(strings.Join(readLines(tb, cfg.Path), "")), Checkpoint{NodeID: cfg.NodeID, Seq: seq, Hash: hash}
	}
	log, head = build("a")
	other, _ = build("b")
	return log, other, head
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		out = append(out, b[:i:i])
		b = b[i:]
	}
	return out
}

// mutate applies one mutation chosen by op to a copy of log.
func mutate(log, other []byte, op uint8, pos uint32, n uint16, val byte) []byte {
	b := bytes.Clone(log)
	if len(b) == 0 {
		return b
	}
	p := int(pos % uint32(len(b)))
	lines, olines := splitLines(b), splitLines(other)
	li, lj := int(pos%uint32(len(lines))), int(uint32(n)%uint32(len(lines)))
	switch op % 8 {
	case 0: // change a byte
		if b[p] == val {
			val++
		}
		b[p] = val
	case 1: // insert a byte
		b = append(b[:p], append([]byte{val}, b[p:]...)...)
	case 2: // delete a run of bytes
		end := min(len(b), p+1+int(n%256))
		b = append(b[:p], b[end:]...)
	case 3: // swap two lines
		lines[li], lines[lj] = lines[lj], lines[li]
		b = bytes.Join(lines, nil)
	case 4: // delete a line
		b = bytes.Join(append(lines[:li:li], lines[li+1:]...), nil)
	case 5: // duplicate a line elsewhere
		dup := append(append(lines[:lj:lj], lines[li]), lines[lj:]...)
		b = bytes.Join(dup, nil)
	case 6: // truncate
		b = b[:p]
	case 7: // replace a line with one from another chain
		lines[li] = olines[int(uint32(n)%uint32(len(olines)))]
		b = bytes.Join(lines, nil)
	}
	return b
}

// FuzzVerify mutates a valid log and checks that the verifier never panics
// and never calls a changed log clean (OK without warnings), given a
// trusted checkpoint of the original head (without one, cutting whole
// lines off the end is undetectable by design).
func FuzzVerify(f *testing.F) {
	log, other, head := fuzzLog(f)
	key := pub(testKey(1))
	for op := uint8(0); op < 8; op++ {
		f.Add(op, uint32(100+37*uint32(op)), uint16(3), byte('x'))
	}
	f.Add(uint8(0), uint32(len(log)-2), uint16(0), byte('0'))
	f.Add(uint8(1), uint32(len(log)-1), uint16(0), byte('\n'))
	f.Add(uint8(0), uint32(len(log)-1), uint16(0), byte(' '))
	f.Fuzz(func(t *testing.T, op uint8, pos uint32, n uint16, val byte) {
		mutated := mutate(log, other, op, pos, n, val)
		if bytes.Equal(mutated, log) {
			return
		}
		opts := VerifyOptions{Checkpoint: &head, PublicKey: key, ChunkBytes: 64 + int(val)*8, Workers: 1 + int(n%3)}
		for _, mode := range []string{"stream", "file"} {
			var rep *Report
			var err error
			if mode == "stream" {
				rep, err = VerifyReader(context.Background(), bytes.NewReader(mutated), opts)
			} else {
				src := Source{Name: "seg", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(mutated)), nil }}
				rep, err = Verify(context.Background(), []Source{src}, opts)
			}
			if err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
			if rep.OK && len(rep.Warnings) == 0 {
				t.Fatalf("%s: mutated log (op %d pos %d n %d val %q) verified clean: %v", mode, op%8, pos, n, val, rep)
			}
		}
	})
}

// FuzzVerifyRaw feeds arbitrary bytes: no panics, no errors from in-memory
// sources, and anything reported OK from genesis really is a chain.
func FuzzVerifyRaw(f *testing.F) {
	log, _, _ := fuzzLog(f)
	f.Add(log)
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"node_id":"n","prev_hash":"` + ZeroHash + `","hash":"` + ZeroHash + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := VerifyReader(context.Background(), bytes.NewReader(data), VerifyOptions{ChunkBytes: 128})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Lines == 0 {
			return
		}
		// Re-check with the scanner the writer uses for recovery.
		lines := splitLines(data)
		complete := data
		if last := lines[len(lines)-1]; last[len(last)-1] != '\n' || len(rep.Warnings) > 0 {
			complete = data[:len(data)-len(last)]
		}
		res, err := scanIntact(complete, false, rep.NodeID, newLineHasher())
		if err != nil || res.validEnd != len(complete) || int64(res.lines) != rep.Lines {
			t.Fatalf("verifier accepted %d lines, scanner %d (%s)", rep.Lines, res.lines, res.badLine)
		}
	})
}
