package ship

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/audit/chain"
)

func shippedLines(t *testing.T, n int) [][]byte {
	t.Helper()
	w := mustWriter(t, chain.Config{Fsync: chain.FsyncNone})
	appendN(t, w, n, "v")
	head, _ := w.Head()
	var out [][]byte
	for _, r := range collect(t, NewTailer(TailerConfig{Path: pathOf(t, w), Head: writerHead(w)}), head) {
		out = append(out, r.Line)
	}
	return out
}

func verifyAll(t *testing.T, lines [][]byte, opts VerifyOptions) NodeResult {
	t.Helper()
	v := NewVerifier(context.Background(), opts)
	for _, l := range lines {
		if err := v.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	res := v.Close()
	if len(res) != 1 {
		t.Fatalf("%d nodes", len(res))
	}
	return res[0]
}

// Repeats left by at-least-once delivery (a batch re-sent, a rewind to an
// older cursor) are dropped; the chain verifies and is complete.
func TestVerifierDropsRepeats(t *testing.T) {
	lines := shippedLines(t, 50)
	var stream [][]byte
	stream = append(stream, lines[:30]...)
	stream = append(stream, lines[20:40]...) // re-sent batch
	stream = append(stream, lines[10:]...)   // rewind to an older cursor
	r := verifyAll(t, stream, VerifyOptions{})
	if !r.Complete() || r.Unique != uint64(len(lines)) || r.Duplicates != uint64(len(stream)-len(lines)) {
		t.Fatalf("%s", r)
	}
}

// A repeat that differs from the first copy is a conflict, even when its
// hash member is the original's; a missing line is a gap.
func TestVerifierFlagsConflictsAndGaps(t *testing.T) {
	lines := shippedLines(t, 30)
	evil := bytes.Replace(lines[10], []byte(`"operation":"read"`), []byte(`"operation":"list"`), 1)
	stream := append(append([][]byte{}, lines...), evil)
	r := verifyAll(t, stream, VerifyOptions{})
	if r.OK() || !strings.Contains(r.Conflict, "seq 11 appears twice") {
		t.Fatalf("conflict not flagged: %s", r)
	}
	gap := append(append([][]byte{}, lines[:10]...), lines[12:]...)
	if r := verifyAll(t, gap, VerifyOptions{}); r.OK() || r.Report.Failure.Kind != chain.KindDeleted {
		t.Fatalf("gap not flagged: %s", r)
	}
	// A stream that starts mid-chain verifies only when told to trust it.
	if r := verifyAll(t, lines[5:], VerifyOptions{}); r.OK() {
		t.Fatalf("mid-chain start accepted without TrustFirst: %s", r)
	}
	if r := verifyAll(t, lines[5:], VerifyOptions{Chain: chain.VerifyOptions{TrustFirst: true}}); !r.Complete() {
		t.Fatalf("TrustFirst: %s", r)
	}
}
