package chain

import (
	"strings"
	"testing"
)

// A writer without checkpoints (a sealed server has no signing key) writes
// none — not at Open, Close or by count — and chains its lines; the next
// writer with a key continues the chain and its first checkpoint covers
// them, so the whole log verifies against the public key.
func TestNoCheckpointsThenSignedWriterVerifies(t *testing.T) {
	cfg := testConfig(t)
	sealed := cfg
	sealed.Signer, sealed.NoCheckpoints, sealed.CheckpointEvery = nil, true, 2
	w := MustOpen(t, sealed)
	for i := range 5 {
		MustAppend(t, w, vaultBody(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, l := range readLines(t, cfg.Path) {
		if strings.Contains(l, `"type":"vigil.checkpoint"`) {
			t.Fatalf("checkpoint written without a key: %s", l)
		}
	}
	w = MustOpen(t, cfg)
	MustAppend(t, w, vaultBody(5))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep := MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer), NodeID: "node-a"})
	if rep.Entries != 6 || rep.Checkpoints == 0 {
		t.Fatalf("entries %d, checkpoints %d", rep.Entries, rep.Checkpoints)
	}
}
