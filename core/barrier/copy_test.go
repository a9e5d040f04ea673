package barrier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// copyOf returns a physical copy of p (what a snapshot restore holds).
func copyOf(tb testing.TB, p *physical) *storage.Memory {
	tb.Helper()
	ctx := context.Background()
	out := storage.NewMemory()
	for _, k := range p.Keys() {
		v, _ := p.Memory.Get(ctx, k)
		if err := out.Put(ctx, k, v); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

func TestOpenCopyWithTheRootKey(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, p, _ := MustUnsealed(t, &now)
	mustPut(t, b, "secret/a", "one")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "secret/b", "two")
	snap := copyOf(t, p)
	mustPut(t, b, "secret/a", "changed later")
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}

	c, src, err := b.OpenCopy(ctx, snap)
	if err != nil || src != KeysFromRootKey {
		t.Fatalf("OpenCopy = %v, %v", src, err)
	}
	mustGet(t, c, "secret/a", "one")
	mustGet(t, c, "secret/b", "two")
	if term, _ := c.ActiveTerm(); term != 2 {
		t.Errorf("the copy's keyring is the snapshot's: active term %d, want 2", term)
	}
	c.Seal()
	mustGet(t, b, "secret/a", "changed later") // the live barrier keeps its keys
}

func TestOpenCopyAfterTheRootKeyChanged(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, p, _ := MustUnsealed(t, &now)
	mustPut(t, b, "secret/a", "one")
	snap := copyOf(t, p)
	// The snapshot's keyring is encrypted with a root key this barrier no
	// longer has (a rekey since).
	if err := New(snap).persist(ctx, mustKey(t), b.ring); err != nil {
		t.Fatal(err)
	}
	c, src, err := b.OpenCopy(ctx, snap)
	if err != nil || src != KeysFromLiveKeyring {
		t.Fatalf("OpenCopy = %v, %v", src, err)
	}
	mustGet(t, c, "secret/a", "one")
	c.Seal()
	mustGet(t, b, "secret/a", "one")
}

func TestOpenCopyOfAnotherCluster(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, _, _ := MustUnsealed(t, &now)
	other, op, _ := MustUnsealed(t, &now)
	mustPut(t, other, "secret/a", "theirs")
	c, src, err := b.OpenCopy(ctx, copyOf(t, op))
	if err != nil || src != KeysFromLiveKeyring {
		t.Fatalf("OpenCopy = %v, %v", src, err)
	}
	if _, err := c.Get(ctx, "secret/a"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another cluster's value: %v", err)
	}
	if _, _, err := b.OpenCopy(ctx, storage.NewMemory()); !errors.Is(err, core.ErrNotInitialized) {
		t.Fatalf("empty copy: %v", err)
	}
	b.Seal()
	if _, _, err := b.OpenCopy(ctx, copyOf(t, op)); !errors.Is(err, core.ErrSealed) {
		t.Fatalf("sealed: %v", err)
	}
}
