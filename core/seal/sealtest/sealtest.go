// Package sealtest is the conformance suite every seal.Seal passes: the
// Shamir seal, awskms (against local-kms), pkcs11 (against SoftHSM2) and
// transit (against a real Vigil). Run it from each seal's tests with a
// Harness that builds seals over the real backend.
package sealtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/storage"
)

// Harness builds seals for the suite.
type Harness struct {
	// New returns a seal over the backend's test key. Two calls return
	// seals over the same key (a restarted server).
	New func(t *testing.T) seal.Seal
	// OtherKey returns a seal of the same type over a different key.
	OtherKey func(t *testing.T) seal.Seal
	// Unreachable returns a seal of the same type whose backend cannot be
	// reached (nil for seals without a backend, such as Shamir).
	Unreachable func(t *testing.T) seal.Seal
	// Auto runs the Manager lifecycle (init, auto-unseal after restart,
	// seal, clear failure) with this seal; false for Shamir.
	Auto bool
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("Type", func(t *testing.T) {
		s := h.New(t)
		if s.Type() == "" || s.Type() != h.New(t).Type() {
			t.Fatalf("Type() = %q: want a stable non-empty name", s.Type())
		}
	})
	t.Run("Health", func(t *testing.T) {
		if err := h.New(t).Health(context.Background()); err != nil {
			t.Fatalf("Health: %v", err)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) { roundTrip(t, h) })
	t.Run("Tampered", func(t *testing.T) { tampered(t, h) })
	t.Run("WrongKey", func(t *testing.T) { wrongKey(t, h) })
	t.Run("Unreachable", func(t *testing.T) { unreachable(t, h) })
	t.Run("Concurrent", func(t *testing.T) { concurrent(t, h) })
	if h.Auto {
		t.Run("Lifecycle", func(t *testing.T) { lifecycle(t, h) })
	}
}

func key() []byte {
	k := make([]byte, seal.KeySize)
	rand.Read(k)
	return k
}

func roundTrip(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	pt := key()
	b1, err := s.Wrap(ctx, pt)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	if bytes.Contains(b1, pt) {
		t.Fatal("the blob contains the plaintext")
	}
	b2, err := s.Wrap(ctx, pt)
	if err != nil {
		t.Fatalf("Wrap again: %v", err)
	}
	if bytes.Equal(b1, b2) {
		t.Fatal("two wraps of one key are identical: wrapping must be randomised")
	}
	for _, b := range [][]byte{b1, b2} {
		got, err := h.New(t).Unwrap(ctx, b) // a fresh instance: a restarted server
		if err != nil {
			t.Fatalf("Unwrap: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatal("Unwrap returned other bytes than were wrapped")
		}
	}
}

func tampered(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	b, err := s.Wrap(ctx, key())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{nil, []byte("not a blob"), b[:len(b)/2]} {
		if _, err := s.Unwrap(ctx, bad); err == nil {
			t.Fatalf("Unwrap(%q) succeeded", bad)
		}
	}
	// Flip one byte in every position class: header, middle, end.
	for _, i := range []int{len(b) / 3, len(b) / 2, len(b) - 2} {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		if got, err := s.Unwrap(ctx, c); err == nil {
			t.Fatalf("Unwrap of a blob with byte %d changed succeeded (%x)", i, got)
		}
	}
}

func wrongKey(t *testing.T, h Harness) {
	ctx := context.Background()
	b, err := h.New(t).Wrap(ctx, key())
	if err != nil {
		t.Fatal(err)
	}
	other := h.OtherKey(t)
	if _, err := other.Unwrap(ctx, b); err == nil {
		t.Fatal("a seal over another key unwrapped the blob")
	}
}

func unreachable(t *testing.T, h Harness) {
	if h.Unreachable == nil {
		return
	}
	ctx := context.Background()
	b, err := h.New(t).Wrap(ctx, key())
	if err != nil {
		t.Fatal(err)
	}
	s := h.Unreachable(t)
	if err := s.Health(ctx); err == nil {
		t.Fatal("Health of an unreachable backend succeeded")
	}
	if _, err := s.Unwrap(ctx, b); err == nil {
		t.Fatal("Unwrap with an unreachable backend succeeded")
	}
	if _, err := s.Wrap(ctx, key()); err == nil {
		t.Fatal("Wrap with an unreachable backend succeeded")
	}
}

func concurrent(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.New(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt := key()
			b, err := s.Wrap(ctx, pt)
			if err != nil {
				errs <- err
				return
			}
			got, err := s.Unwrap(ctx, b)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, pt) {
				errs <- errors.New("concurrent round trip returned other bytes")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// lifecycle: a Manager with the seal initialises with recovery keys,
// auto-unseals after a restart, seals, and fails with an error naming the
// seal and the cause when the backend is unreachable or the key is wrong.
func lifecycle(t *testing.T, h Harness) {
	ctx := context.Background()
	mem := storage.NewMemory()
	b := barrier.New(mem)
	m := seal.New(mem, b, seal.WithAutoSeal(h.New(t)))
	res, err := m.Init(ctx, seal.InitParams{RecoveryShares: 3, RecoveryThreshold: 2, Holders: []string{"alice", "bob", "carol"}})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if len(res.Keys) != 0 || len(res.RecoveryKeys) != 3 || res.UnsealKey != nil {
		t.Fatalf("Init returned %d unseal keys, %d recovery keys", len(res.Keys), len(res.RecoveryKeys))
	}
	raw, _ := mem.Get(ctx, seal.RootKeyPath)
	for _, rk := range res.RecoveryKeys {
		if bytes.Contains(raw, rk[:seal.KeySize]) {
			t.Fatal("the root-key record contains a recovery share")
		}
	}
	st, _ := m.Status(ctx)
	if !st.Sealed || !st.RecoverySeal || st.Type != h.New(t).Type() || st.T != 2 || st.N != 3 {
		t.Fatalf("status after init = %+v", st)
	}
	if _, err := m.Unseal(ctx, "00"); !errors.Is(err, seal.ErrAutoUnseal) {
		t.Fatalf("Unseal with a key on an auto seal: %v, want ErrAutoUnseal", err)
	}
	// A restarted node: new barrier and manager over the same storage.
	b2 := barrier.New(mem)
	m2 := seal.New(mem, b2, seal.WithAutoSeal(h.New(t)))
	if err := m2.AutoUnseal(ctx); err != nil {
		t.Fatalf("AutoUnseal after restart: %v", err)
	}
	if b2.Sealed() {
		t.Fatal("still sealed after AutoUnseal")
	}
	if err := b2.Put(ctx, "secret/x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	m2.Seal()
	if !b2.Sealed() {
		t.Fatal("Seal left the barrier open")
	}
	if err := m2.AutoUnseal(ctx); err != nil || b2.Sealed() {
		t.Fatalf("AutoUnseal after Seal: %v", err)
	}
	for name, s := range map[string]func(*testing.T) seal.Seal{"unreachable": h.Unreachable, "wrong key": h.OtherKey} {
		if s == nil {
			continue
		}
		b3 := barrier.New(mem)
		m3 := seal.New(mem, b3, seal.WithAutoSeal(s(t)))
		err := m3.AutoUnseal(ctx)
		if err == nil || !b3.Sealed() {
			t.Fatalf("%s: AutoUnseal succeeded", name)
		}
		if !errors.Is(err, seal.ErrSealUnavailable) || core.CodeOf(err) != core.CodeUnavailable {
			t.Fatalf("%s: error %v is not a seal-unavailable error", name, err)
		}
		if msg := core.ClientMessage(err); !strings.HasPrefix(msg, s(t).Type()+" seal: unwrap the root key: ") || len(msg) < len(s(t).Type())+40 {
			t.Fatalf("%s: message %q does not name the seal and the cause", name, msg)
		}
		st, _ := m3.Status(ctx)
		if st.Error == "" || !st.Sealed {
			t.Fatalf("%s: status %+v carries no error", name, st)
		}
		t.Logf("%s: %s", name, core.ClientMessage(err))
	}
}
