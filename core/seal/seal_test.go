package seal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/barrier"
	"github.com/vigilsec/vigil/core/storage"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

// flaky wraps storage.Memory and fails Puts to one key while fail is set.
type flaky struct {
	*storage.Memory
	mu   sync.Mutex
	fail string
}

func (f *flaky) Put(ctx context.Context, key string, value []byte) error {
	f.mu.Lock()
	fail := f.fail == key
	f.mu.Unlock()
	if fail {
		return errors.New("injected write failure")
	}
	return f.Memory.Put(ctx, key, value)
}

// open returns a fresh barrier and seal over physical, as a restarted node has.
func open(physical storage.Storage) (*Manager, *barrier.Barrier) {
	b := barrier.New(physical)
	return New(physical, b, WithNow(clock)), b
}

// MustInit initializes a seal over a fresh memory storage.
func MustInit(tb testing.TB, shares, threshold int) (*storage.Memory, *InitResult) {
	tb.Helper()
	mem := storage.NewMemory()
	s, b := open(mem)
	res, err := s.Init(context.Background(), InitParams{SecretShares: shares, SecretThreshold: threshold})
	if err != nil {
		tb.Fatalf("Init(%d, %d): %v", shares, threshold, err)
	}
	if !b.Sealed() {
		tb.Fatal("barrier unsealed after Init")
	}
	return mem, res
}

// mustUnseal feeds keys to s, checking progress and the round nonce after
// each, and expects the last to unseal.
func mustUnseal(tb testing.TB, s *Manager, keys ...string) {
	tb.Helper()
	start, err := s.Status(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	nonce := start.Nonce
	for i, k := range keys {
		st, err := s.Unseal(context.Background(), k)
		if err != nil {
			tb.Fatalf("Unseal share %d: %v", i, err)
		}
		if i == len(keys)-1 {
			if st.Sealed || st.Progress != 0 || st.Nonce != "" {
				tb.Fatalf("after the last share: %+v; want unsealed, no round", st)
			}
			return
		}
		if !st.Sealed || st.Progress != start.Progress+i+1 || st.Nonce == "" || (nonce != "" && st.Nonce != nonce) {
			tb.Fatalf("after share %d: %+v (round nonce %q)", i, st, nonce)
		}
		nonce = st.Nonce
	}
}

func TestInitValidation(t *testing.T) {
	for _, tc := range []struct {
		n, t int
		want string // "" for valid
	}{
		{1, 1, ""},
		{2, 2, ""},
		{5, 3, ""},
		{255, 255, ""},
		{0, 0, "invalid seal configuration: shares must be at least one"},
		{-1, 1, "invalid seal configuration: shares must be at least one"},
		{3, 0, "invalid seal configuration: threshold must be at least one"},
		{3, 1, "invalid seal configuration: threshold must be greater than one for multiple shares"},
		{256, 2, "invalid seal configuration: shares must be less than 256"},
		{3, 4, "invalid seal configuration: threshold cannot be larger than shares"},
		{1, 2, "invalid seal configuration: threshold cannot be larger than shares"},
	} {
		t.Run(fmt.Sprintf("%d_of_%d", tc.t, tc.n), func(t *testing.T) {
			mem := storage.NewMemory()
			s, _ := open(mem)
			res, err := s.Init(context.Background(), InitParams{SecretShares: tc.n, SecretThreshold: tc.t})
			if tc.want == "" {
				if err != nil || len(res.Keys) != tc.n {
					t.Fatalf("Init = %v; want %d keys", err, tc.n)
				}
				return
			}
			if err == nil || err.Error() != tc.want || core.CodeOf(err) != core.CodeInvalid {
				t.Fatalf("Init error = %v (code %q); want %q", err, core.CodeOf(err), tc.want)
			}
			if keys := mem.Keys(); len(keys) != 0 {
				t.Fatalf("invalid Init wrote %v", keys)
			}
		})
	}
}

func TestInitLayout(t *testing.T) {
	mem, res := MustInit(t, 5, 3)
	if got := mem.Keys(); fmt.Sprint(got) != fmt.Sprint([]string{barrier.KeyringPath, ConfigPath, RootKeyPath}) {
		t.Fatalf("physical keys = %v", got)
	}
	if len(res.UnsealKey) != KeySize || len(res.Keys) != 5 {
		t.Fatalf("UnsealKey %d bytes, %d keys", len(res.UnsealKey), len(res.Keys))
	}
	for i, k := range res.Keys {
		if len(k) != KeySize+1 || res.KeysHex()[i] != hex.EncodeToString(k) || res.KeysBase64()[i] != base64.StdEncoding.EncodeToString(k) {
			t.Fatalf("key %d: %d bytes, hex %q, base64 %q", i, len(k), res.KeysHex()[i], res.KeysBase64()[i])
		}
	}
	raw, _ := mem.Get(context.Background(), ConfigPath)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "shamir", "secret_shares": 5.0, "secret_threshold": 3.0, "key_holders": 5.0, "initialized_at": t0.Format(time.RFC3339)}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("config %s = %v, want %v", k, m[k], v)
		}
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if n, _ := m["nonce"].(string); !uuid.MatchString(n) || len(m) != 7 || m["share_set"] != res.Shares.ID {
		t.Errorf("config = %s", raw)
	}
	rec, _ := mem.Get(context.Background(), RootKeyPath)
	if bytes.Contains(rec, res.UnsealKey) {
		t.Fatal("root key record contains the unseal key")
	}
	s, _ := open(mem)
	cfg, err := s.Config(context.Background())
	if err != nil || cfg.SecretShares != 5 || cfg.SecretThreshold != 3 || cfg.KeyHolders != 5 || !cfg.InitializedAt.Equal(t0) || cfg.Type != Type {
		t.Fatalf("Config = %+v, %v", cfg, err)
	}
}

func TestNotInitialized(t *testing.T) {
	ctx := context.Background()
	s, _ := open(storage.NewMemory())
	st, err := s.Status(ctx)
	if want := (Status{Type: "shamir", Sealed: true}); err != nil || st != want {
		t.Fatalf("Status = %+v, %v; want %+v", st, err, want)
	}
	if _, err := s.Unseal(ctx, hex.EncodeToString(make([]byte, 33))); !errors.Is(err, core.ErrNotInitialized) {
		t.Fatalf("Unseal = %v, want ErrNotInitialized", err)
	}
	if err := s.UnsealWithKey(ctx, make([]byte, 32)); !errors.Is(err, core.ErrNotInitialized) {
		t.Fatalf("UnsealWithKey = %v, want ErrNotInitialized", err)
	}
	if _, err := s.Config(ctx); !errors.Is(err, core.ErrNotInitialized) {
		t.Fatalf("Config = %v, want ErrNotInitialized", err)
	}
}

func TestInitTwice(t *testing.T) {
	ctx := context.Background()
	mem, _ := MustInit(t, 3, 2)
	before, _ := mem.Get(ctx, ConfigPath)
	for _, s := range []*Manager{func() *Manager { s, _ := open(mem); return s }(), func() *Manager { s, _ := open(mem); return s }()} {
		if _, err := s.Init(ctx, InitParams{SecretShares: 1, SecretThreshold: 1}); !errors.Is(err, ErrAlreadyInitialized) || err.Error() != "Vault is already initialized" {
			t.Fatalf("second Init = %v, want ErrAlreadyInitialized", err)
		}
	}
	if after, _ := mem.Get(ctx, ConfigPath); !bytes.Equal(before, after) {
		t.Fatal("second Init changed the config")
	}
}

func TestInitRetryAfterInterruptedInit(t *testing.T) {
	ctx := context.Background()
	f := &flaky{Memory: storage.NewMemory(), fail: barrier.KeyringPath}
	s, b := open(f)
	if _, err := s.Init(ctx, InitParams{SecretShares: 3, SecretThreshold: 2}); err == nil {
		t.Fatal("Init succeeded with a failing keyring write")
	}
	if ok, err := s.Initialized(ctx); ok || err != nil {
		t.Fatalf("Initialized after a failed Init = %v, %v", ok, err)
	}
	f.mu.Lock()
	f.fail = ""
	f.mu.Unlock()
	res, err := s.Init(ctx, InitParams{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatalf("retried Init: %v", err)
	}
	mustUnseal(t, s, res.KeysHex()[0], res.KeysHex()[2])
	if b.Sealed() {
		t.Fatal("barrier sealed")
	}
}

// TestEveryThresholdSubset initializes 5/3, writes data, and unseals fresh
// seal instances over the same storage with every 3-share subset.
func TestEveryThresholdSubset(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 5, 3)
	s, b := open(mem)
	if err := s.UnsealWithKey(ctx, res.UnsealKey); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "secret/app", []byte("written before seal")); err != nil {
		t.Fatal(err)
	}
	s.Seal()
	if _, err := b.Get(ctx, "secret/app"); !errors.Is(err, core.ErrSealed) {
		t.Fatalf("Get after Seal = %v, want ErrSealed", err)
	}
	n := 0
	for i := range 5 {
		for j := i + 1; j < 5; j++ {
			for k := j + 1; k < 5; k++ {
				n++
				s, b := open(mem)
				// Mix encodings: hex, base64, hex.
				mustUnseal(t, s, res.KeysHex()[k], res.KeysBase64()[i], res.KeysHex()[j])
				got, err := b.Get(ctx, "secret/app")
				if err != nil || string(got) != "written before seal" {
					t.Fatalf("subset %d,%d,%d: Get = %q, %v", i, j, k, got, err)
				}
			}
		}
	}
	if n != 10 {
		t.Fatalf("tried %d subsets, want 10", n)
	}
}

func TestBelowThresholdStaysSealed(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 5, 3)
	s, b := open(mem)
	var st Status
	var err error
	for _, k := range res.KeysHex()[3:] {
		if st, err = s.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if !st.Sealed || st.Progress != 2 || st.T != 3 || st.N != 5 || !st.Initialized || st.Type != "shamir" || st.Nonce == "" {
		t.Fatalf("status after 2 of 3 shares = %+v", st)
	}
	if got, _ := s.Status(ctx); got != st {
		t.Fatalf("Status = %+v, Unseal returned %+v", got, st)
	}
	if !b.Sealed() {
		t.Fatal("barrier unsealed with 2 of 3 shares")
	}
	s.Reset()
	if st, _ := s.Status(ctx); st.Progress != 0 || st.Nonce != "" || !st.Sealed {
		t.Fatalf("status after Reset = %+v", st)
	}
}

func TestWrongShareResetsRound(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 5, 3)
	_, other := MustInit(t, 5, 3)
	s, b := open(mem)
	mustUnsealProgress := func(k string, want int) {
		t.Helper()
		if st, err := s.Unseal(ctx, k); err != nil || st.Progress != want {
			t.Fatalf("Unseal = %+v, %v; want progress %d", st, err, want)
		}
	}
	mustUnsealProgress(res.KeysHex()[0], 1)
	mustUnsealProgress(res.KeysHex()[1], 2)
	st, err := s.Unseal(ctx, other.KeysHex()[0])
	if !errors.Is(err, ErrUnsealFailed) || core.CodeOf(err) != core.CodeInvalid || core.ClientMessage(err) != ErrUnsealFailed.Msg {
		t.Fatalf("Unseal with a foreign share = %v, want ErrUnsealFailed", err)
	}
	if !st.Sealed || st.Progress != 0 || st.Nonce != "" || !b.Sealed() {
		t.Fatalf("status after a failed round = %+v (barrier sealed %v)", st, b.Sealed())
	}
	mustUnseal(t, s, res.KeysHex()[0], res.KeysHex()[1], res.KeysHex()[2])
	if b.Sealed() {
		t.Fatal("barrier sealed after the right shares")
	}
}

func TestDuplicateShare(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 5, 3)
	s, b := open(mem)
	first, _ := s.Unseal(ctx, res.KeysHex()[2])
	for _, dup := range []string{res.KeysHex()[2], res.KeysBase64()[2]} {
		st, err := s.Unseal(ctx, dup)
		if !errors.Is(err, ErrShareProvided) || core.ClientMessage(err) != "unseal key share already provided" {
			t.Fatalf("duplicate share = %v, want ErrShareProvided", err)
		}
		if st != first {
			t.Fatalf("status after a duplicate = %+v, want %+v", st, first)
		}
	}
	mustUnseal(t, s, res.KeysHex()[0], res.KeysHex()[4])
	if b.Sealed() {
		t.Fatal("barrier sealed")
	}
}

func TestGarbledShare(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 5, 3)
	s, b := open(mem)
	first, _ := s.Unseal(ctx, res.KeysHex()[0])
	zeroX := bytes.Clone(res.Keys[1])
	zeroX[KeySize] = 0
	for name, key := range map[string]string{
		"not hex or base64": "this is not a key!",
		"empty":             "",
		"too short (hex)":   hex.EncodeToString(res.Keys[1][:KeySize]),
		"too long (base64)": base64.StdEncoding.EncodeToString(append(bytes.Clone(res.Keys[1]), 1)),
		"zero x":            hex.EncodeToString(zeroX),
	} {
		st, err := s.Unseal(ctx, key)
		if core.CodeOf(err) != core.CodeInvalid {
			t.Fatalf("%s: err = %v, want CodeInvalid", name, err)
		}
		if st != first {
			t.Fatalf("%s: status = %+v, want progress kept: %+v", name, st, first)
		}
	}
	if _, err := s.Unseal(ctx, "zz"); !errors.Is(err, ErrBadKeyEncoding) {
		t.Fatalf("undecodable share = %v, want ErrBadKeyEncoding", err)
	}
	mustUnseal(t, s, res.KeysHex()[1], res.KeysHex()[2])
	if b.Sealed() {
		t.Fatal("barrier sealed")
	}
}

func TestSealAndUnsealAgain(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 3, 2)
	s, b := open(mem)
	mustUnseal(t, s, res.KeysHex()[0], res.KeysHex()[1])
	if err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unseal(ctx, res.KeysHex()[2]); err != nil {
		t.Fatalf("Unseal while unsealed = %v, want a no-op", err)
	}
	s.Seal()
	if st, _ := s.Status(ctx); !st.Sealed || !b.Sealed() {
		t.Fatalf("status after Seal = %+v", st)
	}
	if err := b.Put(ctx, "k2", []byte("v")); !errors.Is(err, core.ErrSealed) {
		t.Fatalf("Put after Seal = %v, want ErrSealed", err)
	}
	mustUnseal(t, s, res.KeysBase64()[2], res.KeysBase64()[1])
	if got, err := b.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get after re-unseal = %q, %v", got, err)
	}
}

func TestSingleShare(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 1, 1)
	if len(res.Keys) != 1 || !bytes.Equal(res.Keys[0], res.UnsealKey) || len(res.UnsealKey) != KeySize {
		t.Fatalf("single share %x, unseal key %x", res.Keys, res.UnsealKey)
	}
	s, b := open(mem)
	if _, err := s.Unseal(ctx, hex.EncodeToString(make([]byte, KeySize))); !errors.Is(err, ErrUnsealFailed) || !b.Sealed() {
		t.Fatalf("wrong single key = %v (sealed %v), want ErrUnsealFailed", err, b.Sealed())
	}
	if _, err := s.Unseal(ctx, res.KeysHex()[0]+"00"); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("33-byte key for a 1-share seal = %v, want CodeInvalid", err)
	}
	mustUnseal(t, s, res.KeysBase64()[0])
	if b.Sealed() {
		t.Fatal("barrier sealed")
	}
}

func TestUnsealWithKey(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 5, 3)
	s, b := open(mem)
	if _, err := s.Unseal(ctx, res.KeysHex()[0]); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{make([]byte, KeySize), res.UnsealKey[:16], nil} {
		if err := s.UnsealWithKey(ctx, bad); !errors.Is(err, ErrUnsealFailed) || !b.Sealed() {
			t.Fatalf("UnsealWithKey(%d wrong bytes) = %v (sealed %v)", len(bad), err, b.Sealed())
		}
	}
	if err := s.UnsealWithKey(ctx, res.UnsealKey); err != nil || b.Sealed() {
		t.Fatalf("UnsealWithKey = %v (sealed %v)", err, b.Sealed())
	}
	if st, _ := s.Status(ctx); st.Sealed || st.Progress != 0 {
		t.Fatalf("status = %+v", st)
	}
}

func TestConcurrentShares(t *testing.T) {
	ctx := context.Background()
	mem, res := MustInit(t, 5, 3)
	s, b := open(mem)
	var wg sync.WaitGroup
	for _, k := range res.KeysHex() {
		wg.Go(func() {
			if _, err := s.Unseal(ctx, k); err != nil {
				t.Errorf("Unseal: %v", err)
			}
			_, _ = s.Status(ctx)
		})
	}
	wg.Wait()
	if st, _ := s.Status(ctx); b.Sealed() || st.Sealed || st.Progress != 0 {
		t.Fatalf("after 5 concurrent shares: %+v (barrier sealed %v)", st, b.Sealed())
	}
}
