package chain

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestAppendLineMatchesLineLenAndParses(t *testing.T) {
	w := &Writer{cfg: Config{NodeID: "node-a.b_c:1"}}
	lh := newLineHasher()
	var h [hashHexLen]byte
	prev := []byte(ZeroHash)
	for _, body := range []string{`{}`, `{ }`, `{"a":1}`, `{"x":"y","z":[1,2,{"q":null}]}`} {
		for _, seq := range []uint64{1, 9, 10, 12345678901234567890} {
			line := appendLine(nil, []byte(body), seq, w.cfg.NodeID, prev, lh, h[:])
			if got, want := len(line), w.lineLen(len(body), emptyObject([]byte(body)), seq); got != want {
				t.Errorf("%s seq %d: len %d, lineLen %d", body, seq, got, want)
			}
			f, err := parseChain(line[:len(line)-1])
			if err != nil {
				t.Fatalf("%s: parseChain(%s): %v", body, line, err)
			}
			if f.Seq != seq || string(f.NodeID) != w.cfg.NodeID || string(f.PrevHash) != ZeroHash || string(f.Hash) != string(h[:]) {
				t.Errorf("parse mismatch: %+v", f)
			}
			if got := string(line[:f.BodyEnd]) + "}"; body != `{ }` && got != body {
				t.Errorf("body %q, want %q", got, body)
			}
		}
	}
}

func TestParseChainRejects(t *testing.T) {
	good := `{"a":1,"seq":7,"node_id":"n","prev_hash":"` + ZeroHash + `","hash":"` + ZeroHash + `"}`
	if _, err := parseChain([]byte(good)); err != nil {
		t.Fatalf("good line rejected: %v", err)
	}
	for name, line := range map[string]string{
		"leading zero":    strings.Replace(good, `"seq":7`, `"seq":07`, 1),
		"seq zero":        strings.Replace(good, `"seq":7`, `"seq":0`, 1),
		"space":           strings.Replace(good, `"seq":7`, `"seq": 7`, 1),
		"no node":         strings.Replace(good, `"node_id":"n"`, `"node_id":""`, 1),
		"quote in node":   strings.Replace(good, `"node_id":"n"`, `"node_id":"n\""`, 1),
		"trailing space":  good + " ",
		"missing brace":   good[:len(good)-1],
		"short prev":      strings.Replace(good, `"prev_hash":"0`, `"prev_hash":"`, 1),
		"reordered":       `{"a":1,"node_id":"n","seq":7,"prev_hash":"` + ZeroHash + `","hash":"` + ZeroHash + `"}`,
		"not an object":   `["seq":7,"node_id":"n","prev_hash":"` + ZeroHash + `","hash":"` + ZeroHash + `"}`,
		"seq overflow":    strings.Replace(good, `"seq":7`, `"seq":99999999999999999999`, 1),
		"no comma before": strings.Replace(good, `1,"seq"`, `1"seq"`, 1),
	} {
		if _, err := parseChain([]byte(line)); err == nil {
			t.Errorf("%s: accepted %s", name, line)
		}
	}
}

func TestValidateBody(t *testing.T) {
	for _, ok := range []string{`{}`, `{"type":"request"}`, `{"request":{"data":{"hash":"x","seq":1}}}`, `{"type":"vigilant"}`} {
		if err := validateBody([]byte(ok), 1<<20); err != nil {
			t.Errorf("%s rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{``, `{`, ` {}`, `{} `, `[]`, `{"a":1}{}`, "{\"a\":\n1}", `{"a":}`,
		`{"seq":1}`, `{"x":1,"hash":"h"}`, `{"node_id":"n"}`, `{"prev_hash":""}`, `{"type":"vigil.checkpoint"}`,
		`{"a":"` + strings.Repeat("x", 100) + `"}`} {
		if err := validateBody([]byte(bad), 64); !errors.Is(err, ErrInvalidBody) {
			t.Errorf("%q: err %v, want ErrInvalidBody", bad, err)
		}
	}
}

func TestCheckpointCanonicalAndSignature(t *testing.T) {
	root := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	cp := Checkpoint{NodeID: "node-a", Seq: 42, Hash: ZeroHash, TreeSize: 42, Root: root, Time: time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.FixedZone("x", 3600))}
	want := `{"node_id":"node-a","seq":42,"hash":"` + ZeroHash + `","tree_size":42,"root":"` + root + `","time":"2025-01-02T02:04:05.12Z"}`
	if got := string(cp.CanonicalBytes()); got != want {
		t.Fatalf("canonical\n got %s\nwant %s", got, want)
	}
	k := testKey(1)
	if err := cp.Verify(pub(k)); err == nil {
		t.Fatal("unsigned checkpoint verified")
	}
	cp.Sign(k)
	if err := cp.Verify(pub(k)); err != nil {
		t.Fatal(err)
	}
	if err := cp.Verify(pub(testKey(2))); err == nil {
		t.Fatal("verified with another key")
	}
	back, err := parseCheckpointBody(checkpointBody(cp))
	if err != nil || back.Seq != 42 || back.Verify(pub(k)) != nil {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	cp.Seq = 43
	if err := cp.Verify(pub(k)); err == nil {
		t.Fatal("altered checkpoint verified")
	}
	cp.Seq, cp.Root = 42, ZeroHash
	if err := cp.Verify(pub(k)); err == nil {
		t.Fatal("checkpoint with another root verified")
	}
}

// LineHashOK accepts every line a writer wrote and rejects an edited one
// or the wrong prev_hash.
func TestLineHashOK(t *testing.T) {
	cfg := testConfig(t)
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	MustAppend(t, w, `{"n":1,"s":"x"}`)
	MustAppend(t, w, `{"n":2}`)
	w.Close()
	b, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) < 3 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		f, err := parseChain(l)
		if err != nil {
			t.Fatal(err)
		}
		if !LineHashOK(l, f.PrevHash, f.Hash) {
			t.Fatalf("line %d rejected: %s", i, l)
		}
		edited := bytes.Replace(append([]byte(nil), l...), []byte(`"n":`), []byte(`"m":`), 1)
		if bytes.Contains(l, []byte(`"n":`)) && LineHashOK(edited, f.PrevHash, f.Hash) {
			t.Fatalf("edited line %d accepted", i)
		}
		if LineHashOK(l, f.Hash, f.Hash) {
			t.Fatalf("line %d accepted with the wrong prev_hash", i)
		}
	}
	if LineHashOK([]byte("{}"), nil, nil) {
		t.Fatal("short line accepted")
	}
}
