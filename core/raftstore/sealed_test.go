package raftstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/vigilsec/vigil/core"
)

type hmacSealer struct{ key []byte }

func (h hmacSealer) Seal(sums []byte) ([]byte, error) {
	m := hmac.New(sha256.New, h.key)
	m.Write(sums)
	return m.Sum(nil), nil
}

func (h hmacSealer) Verify(sums, sealed []byte) error {
	want, _ := h.Seal(sums)
	if !hmac.Equal(want, sealed) {
		return errors.New("mismatch")
	}
	return nil
}

func TestSnapshotSealedByAnotherClusterNeedsForce(t *testing.T) {
	ctx := context.Background()
	a := MustNode(t)
	a.SetSnapshotSealer(hmacSealer{key: []byte("cluster-a")})
	mustPut(t, a, "k", "from-a")
	archive := mustSave(t, a)

	b := MustNode(t)
	b.SetSnapshotSealer(hmacSealer{key: []byte("cluster-b")})
	mustPut(t, b, "k", "from-b")
	err := b.RestoreSnapshot(ctx, bytes.NewReader(archive))
	if core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("foreign snapshot: want CodeInvalid, got %v", err)
	}
	if v, _ := b.Get(ctx, "k"); string(v) != "from-b" {
		t.Fatalf("rejected restore changed data: %q", v)
	}
	if err := b.RestoreSnapshotForce(ctx, bytes.NewReader(archive), true); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Get(ctx, "k"); string(v) != "from-a" {
		t.Fatalf("forced restore: %q", v)
	}
	// The owning cluster restores its own snapshot without force.
	mustPut(t, a, "k", "changed")
	if err := a.RestoreSnapshot(ctx, bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get(ctx, "k"); string(v) != "from-a" {
		t.Fatalf("own restore: %q", v)
	}
}

// failingSealer cannot seal (its key is unavailable, say the barrier is
// sealed).
type failingSealer struct{}

var errNoSealKey = errors.New("sealer key unavailable")

func (failingSealer) Seal([]byte) ([]byte, error) { return nil, errNoSealKey }
func (failingSealer) Verify([]byte, []byte) error { return errNoSealKey }

// A snapshot whose SHA256SUMS cannot be sealed is not restorable without
// force; saving it must fail instead of reporting success.
func TestSaveSnapshotSealerFailure(t *testing.T) {
	s := MustNode(t)
	mustPut(t, s, "k", "v")
	s.SetSnapshotSealer(failingSealer{})
	var buf bytes.Buffer
	err := s.SaveSnapshot(context.Background(), &buf)
	if !errors.Is(err, errNoSealKey) {
		t.Fatalf("SaveSnapshot with a failing sealer = %v, want %v", err, errNoSealKey)
	}
	wantCode(t, err, core.CodeInternal)
}
