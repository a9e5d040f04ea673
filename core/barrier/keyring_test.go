package barrier

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func TestDecodeKeyringRejects(t *testing.T) {
	ring, err := newKeyring(t0)
	if err != nil {
		t.Fatal(err)
	}
	ring, err = ring.rotated(t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	good := ring.encode()
	back, err := decodeKeyring(good)
	if err != nil || back.active.term != 2 || !back.active.installed.Equal(t0.Add(time.Hour)) ||
		!bytes.Equal(back.keys[1].value, ring.keys[1].value) || !bytes.Equal(back.encode(), good) {
		t.Fatalf("round trip: %v", err)
	}
	entry := func(b []byte, i int) []byte { return b[keyringHeader+i*keyringEntrySize:] }
	for name, mutate := range map[string]func(b []byte) []byte{
		"empty":                func(b []byte) []byte { return nil },
		"version":              func(b []byte) []byte { b[0] = 2; return b },
		"active term missing":  func(b []byte) []byte { binary.BigEndian.PutUint32(b[1:], 3); return b },
		"active term not last": func(b []byte) []byte { binary.BigEndian.PutUint32(b[1:], 1); return b },
		"count too high":       func(b []byte) []byte { binary.BigEndian.PutUint32(b[5:], 3); return b },
		"count zero":           func(b []byte) []byte { binary.BigEndian.PutUint32(b[5:], 0); return b[:keyringHeader] },
		"truncated":            func(b []byte) []byte { return b[:len(b)-1] },
		"term zero":            func(b []byte) []byte { binary.BigEndian.PutUint32(entry(b, 0), 0); return b },
		"term repeated":        func(b []byte) []byte { binary.BigEndian.PutUint32(entry(b, 0), 2); return b },
	} {
		if r, err := decodeKeyring(mutate(bytes.Clone(good))); err == nil || r != nil {
			t.Errorf("%s: decodeKeyring accepted a malformed keyring", name)
		}
	}
}
