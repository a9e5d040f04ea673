package witness

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/chain"
)

func signed(t *testing.T, key ed25519.PrivateKey, node string, seq uint64) chain.Checkpoint {
	cp := chain.Checkpoint{NodeID: node, Seq: seq, Hash: strings.Repeat("a", 64), TreeSize: seq, Root: strings.Repeat("b", 64),
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cp.Sign(key)
	return cp
}

// A countersignature binds the witness, the device, the time and the
// exact checkpoint; any change breaks it.
func TestCountersignature(t *testing.T) {
	_, cluster, _ := ed25519.GenerateKey(nil)
	_, wkey, _ := ed25519.GenerateKey(nil)
	cp := signed(t, cluster, "n1", 40)
	cs := Countersignature{Device: "file", Checkpoint: cp.JSON(), Witness: "n2", Time: time.Unix(100, 0).UTC()}
	if err := cs.Sign(wkey); err != nil {
		t.Fatal(err)
	}
	pub := wkey.Public().(ed25519.PublicKey)
	if err := cs.Verify(pub); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(c *Countersignature){
		"witness":    func(c *Countersignature) { c.Witness = "n3" },
		"device":     func(c *Countersignature) { c.Device = "other" },
		"time":       func(c *Countersignature) { c.Time = c.Time.Add(time.Second) },
		"checkpoint": func(c *Countersignature) { c.Checkpoint.Seq++ },
		"root":       func(c *Countersignature) { c.Checkpoint.Root = strings.Repeat("c", 64) },
	} {
		c := cs
		change(&c)
		if c.Verify(pub) == nil {
			t.Errorf("a countersignature with another %s verified", name)
		}
	}
	_, other, _ := ed25519.GenerateKey(nil)
	if cs.Verify(other.Public().(ed25519.PublicKey)) == nil {
		t.Error("verified with another witness key")
	}
}

// Only checkpoints the cluster key signed, for the node asked about, count.
func TestVerified(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	_, attacker, _ := ed25519.GenerateKey(nil)
	good := signed(t, key, "n1", 10)
	good.Source = "raft storage"
	forged := signed(t, attacker, "n1", 99)
	forged.Source = "witness x"
	other := signed(t, key, "n2", 50)
	other.Source = "stream"
	ok, bad := Verified(key.Public().(ed25519.PublicKey), "n1", []chain.Checkpoint{good, forged, other})
	if len(ok) != 1 || ok[0].Seq != 10 || len(bad) != 2 {
		t.Fatalf("kept %v, dropped %v", ok, bad)
	}
}

func TestParseRecord(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	cp := signed(t, key, "n1", 7)
	raw := `{"device":"file","checkpoint":{"node_id":"n1","seq":7,"hash":"` + cp.Hash + `","tree_size":7,"root":"` + cp.Root + `","time":"2026-01-02T03:04:05Z","signature":"` + cp.JSON().Signature + `","key_id":"` + cp.KeyID + `"}}`
	for _, b := range []string{raw, `{"request_id":"x","data":` + raw + `}`} {
		rec, err := ParseRecord([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		back, err := rec.Checkpoint.Checkpoint()
		if err != nil || back.Verify(key.Public().(ed25519.PublicKey)) != nil {
			t.Fatalf("record does not round-trip: %v", err)
		}
	}
	if _, err := ParseRecord([]byte(`{"device":"file"}`)); err == nil {
		t.Fatal("a record without a checkpoint parsed")
	}
}
