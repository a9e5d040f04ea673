package barrier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// physical wraps storage.Memory with a Txn counter and injectable failures.
type physical struct {
	*storage.Memory
	mu      sync.Mutex
	txns    int
	failTxn error
	failPut map[string]error
}

func newPhysical() *physical {
	return &physical{Memory: storage.NewMemory(), failPut: map[string]error{}}
}

func (p *physical) Put(ctx context.Context, key string, value []byte) error {
	p.mu.Lock()
	err := p.failPut[key]
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.Memory.Put(ctx, key, value)
}

func (p *physical) Txn(ctx context.Context, ops []storage.TxnOp) error {
	p.mu.Lock()
	p.txns++
	err := p.failTxn
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.Memory.Txn(ctx, ops)
}

func (p *physical) raw(tb testing.TB, key string) []byte {
	tb.Helper()
	v, err := p.Memory.Get(context.Background(), key)
	if err != nil || v == nil {
		tb.Fatalf("physical %q: %q, %v", key, v, err)
	}
	return v
}

func mustKey(tb testing.TB) []byte {
	tb.Helper()
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// MustUnsealed returns an initialized, unsealed barrier over a fresh physical
// storage, with its root key. The barrier's clock reads *now.
func MustUnsealed(tb testing.TB, now *time.Time) (*Barrier, *physical, []byte) {
	tb.Helper()
	p := newPhysical()
	b := New(p, WithNow(func() time.Time { return *now }))
	root := mustKey(tb)
	if err := b.Initialize(context.Background(), root); err != nil {
		tb.Fatalf("Initialize: %v", err)
	}
	if err := b.Unseal(context.Background(), root); err != nil {
		tb.Fatalf("Unseal: %v", err)
	}
	return b, p, root
}

func mustPut(tb testing.TB, s storage.Storage, key, value string) {
	tb.Helper()
	if err := s.Put(context.Background(), key, []byte(value)); err != nil {
		tb.Fatalf("Put %q: %v", key, err)
	}
}

func mustGet(tb testing.TB, s storage.Storage, key, want string) {
	tb.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil || string(got) != want {
		tb.Fatalf("Get %q = %q, %v; want %q", key, got, err, want)
	}
}

func TestInitializeAndUnseal(t *testing.T) {
	ctx := context.Background()
	p := newPhysical()
	b := New(p)
	if ok, err := b.Initialized(ctx); ok || err != nil {
		t.Fatalf("fresh Initialized = %v, %v", ok, err)
	}
	if err := b.Unseal(ctx, mustKey(t)); !errors.Is(err, core.ErrNotInitialized) {
		t.Fatalf("Unseal before Initialize = %v, want ErrNotInitialized", err)
	}
	if err := b.Initialize(ctx, make([]byte, 16)); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("Initialize with a 16-byte key = %v, want CodeInvalid", err)
	}
	root := mustKey(t)
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Initialized(ctx); !ok || err != nil {
		t.Fatalf("Initialized = %v, %v", ok, err)
	}
	if err := b.Initialize(ctx, root); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second Initialize = %v, want ErrAlreadyInitialized", err)
	}
	if !b.Sealed() {
		t.Fatal("barrier unsealed by Initialize")
	}
	if err := b.Unseal(ctx, root); err != nil || b.Sealed() {
		t.Fatalf("Unseal = %v, sealed %v", err, b.Sealed())
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatalf("Unseal of an unsealed barrier with its key = %v", err)
	}
	if err := b.Unseal(ctx, mustKey(t)); !errors.Is(err, ErrBadRootKey) || b.Sealed() {
		t.Fatalf("Unseal of an unsealed barrier with another key = %v, sealed %v", err, b.Sealed())
	}
	if term, _ := b.ActiveTerm(); term != 1 {
		t.Fatalf("ActiveTerm = %d, want 1", term)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	b, p, _ := MustUnsealed(t, &t0)
	big := bytes.Repeat([]byte("0123456789"), 100_000)
	values := map[string][]byte{"a": []byte("alpha"), "dir/b": []byte("beta"), "dir/sub/c": big, "empty": {}}
	for k, v := range values {
		if err := b.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range values {
		got, err := b.Get(ctx, k)
		if err != nil || !bytes.Equal(got, v) || got == nil {
			t.Fatalf("Get %q = %d bytes (nil %v), %v; want %d bytes", k, len(got), got == nil, err, len(v))
		}
		if raw := p.raw(t, k); len(raw) != len(v)+Overhead || raw[0] != formatVersion {
			t.Fatalf("raw %q: %d bytes, version %d; want %d, %d", k, len(raw), raw[0], len(v)+Overhead, formatVersion)
		}
	}
	if got, err := b.Get(ctx, "missing"); got != nil || err != nil {
		t.Fatalf("Get missing = %q, %v; want nil, nil", got, err)
	}
	got, err := b.List(ctx, "dir/")
	if want := []string{"b", "sub/"}; err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("List = %v, %v; want %v", got, err, want)
	}
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "a"); got != nil || err != nil {
		t.Fatalf("Get after Delete = %q, %v", got, err)
	}
}

func TestNoPlaintextOnPhysical(t *testing.T) {
	ctx := context.Background()
	b, p, root := MustUnsealed(t, &t0)
	secrets := []string{"hunter2-super-secret-password", "-----BEGIN PRIVATE KEY-----", `{"password":"s3cr3t"}`}
	for i, s := range secrets {
		mustPut(t, b, fmt.Sprintf("secret/%d", i), s)
		if err := b.Txn(ctx, []storage.TxnOp{{Kind: storage.OpPut, Key: fmt.Sprintf("txn/%d", i), Value: []byte(s)}}); err != nil {
			t.Fatal(err)
		}
	}
	dataKey := append([]byte(nil), b.ring.active.value...)
	for _, k := range p.Keys() {
		raw := p.raw(t, k)
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) || bytes.Contains(raw, []byte(s[:8])) {
				t.Errorf("physical %q contains plaintext %q", k, s)
			}
		}
		if bytes.Contains(raw, dataKey) || bytes.Contains(raw, root) {
			t.Errorf("physical %q contains a key in the clear", k)
		}
	}
	if len(p.Keys()) != 2*len(secrets)+1 {
		t.Fatalf("physical keys = %v", p.Keys())
	}
}

func TestSwappedValuesFailToDecrypt(t *testing.T) {
	ctx := context.Background()
	b, p, _ := MustUnsealed(t, &t0)
	mustPut(t, b, "users/alice", "alice-secret")
	mustPut(t, b, "users/bob", "bob-secret")
	ra, rb := p.raw(t, "users/alice"), p.raw(t, "users/bob")
	_ = p.Memory.Put(ctx, "users/alice", rb)
	_ = p.Memory.Put(ctx, "users/bob", ra)
	for _, k := range []string{"users/alice", "users/bob"} {
		if got, err := b.Get(ctx, k); !errors.Is(err, ErrDecrypt) || got != nil {
			t.Fatalf("Get swapped %q = %q, %v; want ErrDecrypt", k, got, err)
		}
	}
	_ = p.Memory.Put(ctx, "users/alice", ra)
	mustGet(t, b, "users/alice", "alice-secret")
}

func TestTamperedValues(t *testing.T) {
	ctx := context.Background()
	b, p, _ := MustUnsealed(t, &t0)
	mustPut(t, b, "k", "tamper-me")
	orig := p.raw(t, "k")
	check := func(what string, raw []byte) {
		t.Helper()
		_ = p.Memory.Put(ctx, "k", raw)
		got, err := b.Get(ctx, "k")
		if !errors.Is(err, ErrDecrypt) || got != nil || core.CodeOf(err) != core.CodeInternal {
			t.Fatalf("%s: Get = %q, %v; want ErrDecrypt", what, got, err)
		}
	}
	for i := range orig {
		for _, bit := range []byte{0x01, 0x80} {
			raw := bytes.Clone(orig)
			raw[i] ^= bit
			check(fmt.Sprintf("bit %#x of byte %d flipped", bit, i), raw)
		}
	}
	// From 1: storage.Memory returns a stored empty value as nil, i.e. missing.
	for n := 1; n < len(orig); n++ {
		check(fmt.Sprintf("truncated to %d bytes", n), bytes.Clone(orig[:n]))
	}
	check("extended", append(bytes.Clone(orig), 0))
	// A valid header naming another existing term must fail too.
	if _, err := b.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(orig)
	binary.BigEndian.PutUint32(raw[1:], 2)
	check("term 1 value relabelled as term 2", raw)
	_ = p.Memory.Put(ctx, "k", orig)
	mustGet(t, b, "k", "tamper-me")
}

func TestWrongRootKey(t *testing.T) {
	ctx := context.Background()
	_, p, root := MustUnsealed(t, &t0)
	b := New(p)
	for _, k := range [][]byte{mustKey(t), root[:16], nil} {
		err := b.Unseal(ctx, k)
		if !errors.Is(err, ErrBadRootKey) || core.CodeOf(err) != core.CodeInvalid {
			t.Fatalf("Unseal(wrong %d-byte key) = %v, want ErrBadRootKey", len(k), err)
		}
		if !b.Sealed() {
			t.Fatal("barrier unsealed by a wrong key")
		}
		if _, err := b.Get(ctx, "x"); !errors.Is(err, core.ErrSealed) {
			t.Fatalf("Get after failed unseal = %v, want ErrSealed", err)
		}
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatalf("Unseal with the right key after wrong ones = %v", err)
	}
}

func TestSealedErrors(t *testing.T) {
	ctx := context.Background()
	b, _, root := MustUnsealed(t, &t0)
	mustPut(t, b, "k", "v")
	ring, rootCopy := b.ring, b.rootKey
	b.Seal()
	if !b.Sealed() {
		t.Fatal("Sealed() = false after Seal")
	}
	if !bytes.Equal(rootCopy, make([]byte, KeySize)) || !bytes.Equal(ring.active.value, make([]byte, KeySize)) {
		t.Fatal("Seal left key material in memory")
	}
	b.Seal() // idempotent
	ops := map[string]func() error{
		"Get":    func() error { _, err := b.Get(ctx, "k"); return err },
		"Put":    func() error { return b.Put(ctx, "k", []byte("v")) },
		"Delete": func() error { return b.Delete(ctx, "k") },
		"List":   func() error { _, err := b.List(ctx, ""); return err },
		"Txn":    func() error { return b.Txn(ctx, []storage.TxnOp{{Kind: storage.OpDelete, Key: "k"}}) },
		"Rotate": func() error { _, err := b.Rotate(ctx); return err },
		"Reload": func() error { return b.Reload(ctx) },
		"Status": func() error { _, err := b.KeyStatus(); return err },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, core.ErrSealed) || core.CodeOf(err) != core.CodeSealed {
			t.Errorf("%s on a sealed barrier = %v, want core.ErrSealed", name, err)
		}
	}
	if term, at := b.ActiveTerm(); term != 0 || !at.IsZero() {
		t.Errorf("ActiveTerm when sealed = %d, %v", term, at)
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b, "k", "v")
}

func TestReservedKeys(t *testing.T) {
	ctx := context.Background()
	b, p, _ := MustUnsealed(t, &t0)
	keyring := p.raw(t, KeyringPath)
	for _, k := range []string{KeyringPath, KeyringPath + "/x", "core/seal/config", "core/seal/root-key"} {
		errs := []error{
			b.Put(ctx, k, []byte("x")),
			b.Delete(ctx, k),
			b.Txn(ctx, []storage.TxnOp{{Kind: storage.OpPut, Key: "ok", Value: []byte("x")}, {Kind: storage.OpDelete, Key: k}}),
		}
		_, err := b.Get(ctx, k)
		errs = append(errs, err)
		for i, err := range errs {
			if !errors.Is(err, ErrReserved) {
				t.Errorf("op %d on %q = %v, want ErrReserved", i, k, err)
			}
		}
	}
	if !bytes.Equal(p.raw(t, KeyringPath), keyring) {
		t.Fatal("keyring changed")
	}
	if got, _ := p.Memory.Get(ctx, "ok"); got != nil {
		t.Fatal("a transaction with a reserved key wrote its other ops")
	}
	mustPut(t, b, "core/mounts", "barrier data may live under core/")
	mustGet(t, b, "core/mounts", "barrier data may live under core/")
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	now := t0
	b, p, root := MustUnsealed(t, &now)
	mustPut(t, b, "old", "written under term 1")
	now = t0.Add(time.Hour)
	term, err := b.Rotate(ctx)
	if err != nil || term != 2 {
		t.Fatalf("Rotate = %d, %v; want 2", term, err)
	}
	if got, at := b.ActiveTerm(); got != 2 || !at.Equal(now) {
		t.Fatalf("ActiveTerm = %d, %v; want 2, %v", got, at, now)
	}
	mustPut(t, b, "new", "written under term 2")
	mustPut(t, b, "new2", "x")
	for k, want := range map[string]uint32{"old": 1, "new": 2, "new2": 2} {
		if got := binary.BigEndian.Uint32(p.raw(t, k)[1:]); got != want {
			t.Errorf("%q stored under term %d, want %d", k, got, want)
		}
	}
	st, err := b.KeyStatus()
	if err != nil || st.Term != 2 || !st.InstallTime.Equal(now) || st.Encryptions != 2 {
		t.Fatalf("KeyStatus = %+v, %v; want term 2, %v, 2 encryptions", st, err, now)
	}
	// The rotated keyring is persisted: a fresh barrier reads both terms.
	b2 := New(p)
	if err := b2.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b2, "old", "written under term 1")
	mustGet(t, b2, "new", "written under term 2")
	if got, at := b2.ActiveTerm(); got != 2 || !at.Equal(now) {
		t.Fatalf("reloaded ActiveTerm = %d, %v", got, at)
	}
}

func TestRotateWriteFailureKeepsKeyring(t *testing.T) {
	ctx := context.Background()
	b, p, root := MustUnsealed(t, &t0)
	before := p.raw(t, KeyringPath)
	p.failPut[KeyringPath] = errors.New("disk full")
	if term, err := b.Rotate(ctx); err == nil || term != 0 {
		t.Fatalf("Rotate with failing storage = %d, %v", term, err)
	}
	if term, _ := b.ActiveTerm(); term != 1 {
		t.Fatalf("ActiveTerm after failed Rotate = %d", term)
	}
	delete(p.failPut, KeyringPath)
	mustPut(t, b, "k", "v")
	if !bytes.Equal(p.raw(t, KeyringPath), before) {
		t.Fatal("keyring changed")
	}
	b2 := New(p)
	if err := b2.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b2, "k", "v")
}

func TestReload(t *testing.T) {
	ctx := context.Background()
	a, p, root := MustUnsealed(t, &t0)
	b := New(p)
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	stale := p.raw(t, KeyringPath)
	mustPut(t, b, "counted", "x")
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.KeyStatus(); st.Term != 1 || st.Encryptions != 1 {
		t.Fatalf("KeyStatus after a no-op Reload = %+v; want term 1 with its 1 encryption kept", st)
	}
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, a, "from-a", "term 2 value")
	if _, err := b.Get(ctx, "from-a"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Get of a newer term before Reload = %v, want ErrDecrypt", err)
	}
	mustPut(t, b, "from-b", "v")
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b, "from-a", "term 2 value")
	mustGet(t, b, "from-b", "v")
	if term, _ := b.ActiveTerm(); term != 2 {
		t.Fatalf("ActiveTerm after Reload = %d, want 2", term)
	}
	if st, _ := b.KeyStatus(); st.Encryptions != 0 {
		t.Fatalf("term 2 encryptions on b = %d, want 0", st.Encryptions)
	}

	// A stale keyring (missing term 2) is refused and the held one kept.
	_ = p.Memory.Put(ctx, KeyringPath, stale)
	if err := b.Reload(ctx); err == nil || core.CodeOf(err) != core.CodeInternal {
		t.Fatalf("Reload of a stale keyring = %v, want a CodeInternal error", err)
	}
	mustGet(t, b, "from-a", "term 2 value")
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	b, p, root := MustUnsealed(t, &t0)
	other := New(p)
	if err := other.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprintf("w%d/%d", w, i)
				if err := b.Put(ctx, k, []byte(k)); err != nil {
					t.Error(err)
					return
				}
				if got, err := b.Get(ctx, k); err != nil || string(got) != k {
					t.Errorf("Get %q = %q, %v", k, got, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			if _, err := b.Rotate(ctx); err != nil {
				t.Error(err)
			}
			if err := other.Reload(ctx); err != nil {
				t.Error(err)
			}
			_, _ = b.KeyStatus()
		}
	})
	wg.Wait()
	if term, _ := other.ActiveTerm(); term != 11 {
		t.Fatalf("other's term = %d, want 11", term)
	}
	for w := range 4 {
		for i := range 200 {
			k := fmt.Sprintf("w%d/%d", w, i)
			mustGet(t, other, k, k)
		}
	}
}

// TestEncryptDecrypt: a value encrypted for a key opens with a barrier over
// the same keyring (and root key), for that key only, and not while sealed.
func TestEncryptDecrypt(t *testing.T) {
	ctx := context.Background()
	mem := storage.NewMemory()
	b := New(mem)
	root := bytes.Repeat([]byte{7}, KeySize)
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Encrypt("k", []byte("v")); !errors.Is(err, core.ErrSealed) {
		t.Fatalf("Encrypt while sealed: %v", err)
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	raw, err := b.Encrypt("join/challenge", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	// Another barrier over a copy of the keyring record opens it.
	ring, _ := mem.Get(ctx, KeyringPath)
	mem2 := storage.NewMemory()
	if err := mem2.Put(ctx, KeyringPath, ring); err != nil {
		t.Fatal(err)
	}
	b2 := New(mem2)
	if err := b2.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Decrypt("join/challenge", raw); err != nil || string(got) != "secret" {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	if _, err := b2.Decrypt("other/key", raw); err == nil {
		t.Fatal("a value opened under another key")
	}
}
