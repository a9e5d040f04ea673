package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
	"go.etcd.io/bbolt"
)

// TestStorageSemantics runs the same writes against the Store and
// storage.Memory (the reference) and compares Get and List results.
func TestStorageSemantics(t *testing.T) {
	ctx := context.Background()
	s := MustNode(t)
	mem := storage.NewMemory()
	both := func(fn func(storage.Storage) error) {
		t.Helper()
		for _, st := range []storage.Storage{s, mem} {
			if err := fn(st); err != nil {
				t.Fatalf("%T: %v", st, err)
			}
		}
	}
	for _, k := range []string{"a", "b/c", "b/d/e", "b/d/f", "b-x", "b0", "c/", "c/x", "sys/policy/root", "sys/token/a/b"} {
		both(func(st storage.Storage) error { return st.Put(ctx, k, []byte("v:"+k)) })
	}
	both(func(st storage.Storage) error { return st.Delete(ctx, "b/d/f") })
	both(func(st storage.Storage) error { return st.Delete(ctx, "never-existed") })
	both(func(st storage.Storage) error { return st.Put(ctx, "a", []byte("overwritten")) })

	for _, p := range []string{"", "b/", "b/d/", "b", "c/", "sys/", "sys/token/", "nope/", "b/d/f"} {
		got, err := s.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mem.List(ctx, p)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("List(%q) = %q, want %q", p, got, want)
		}
	}
	if got, _ := s.List(ctx, "b/"); !reflect.DeepEqual(got, []string{"c", "d/"}) {
		t.Errorf(`List("b/") = %q, want [c d/]`, got)
	}
	for _, k := range []string{"a", "b/c", "b/d/f", "missing", "c/"} {
		got, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mem.Get(ctx, k)
		if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
	// An empty value is present, not missing.
	mustPut(t, s, "empty", "")
	if v, err := s.Get(ctx, "empty"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("Get(empty) = %q, %v; want non-nil empty", v, err)
	}
	// Returned values are copies.
	v, _ := s.Get(ctx, "a")
	v[0] = 'X'
	if v2, _ := s.Get(ctx, "a"); string(v2) != "overwritten" {
		t.Errorf("Get returned an alias: %q", v2)
	}
}

func TestInvalidWrites(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t.TempDir(), "node1")
	cfg.MaxEntrySize = 4096
	s := MustOpen(t, cfg)
	wantCode(t, s.Put(ctx, "", []byte("x")), core.CodeInvalid)
	wantCode(t, s.Put(ctx, strings.Repeat("k", bbolt.MaxKeySize+1), nil), core.CodeTooLarge)
	wantCode(t, s.Put(ctx, "big", make([]byte, 5000)), core.CodeTooLarge)
	wantCode(t, s.Txn(ctx, []storage.TxnOp{{Kind: 9, Key: "x"}}), core.CodeInvalid)
	if err := s.Txn(ctx, nil); err != nil {
		t.Errorf("empty Txn: %v", err)
	}
	if got := dump(t, s); len(got) != 0 {
		t.Errorf("rejected writes left state %v", got)
	}
}

func TestTxnAtomic(t *testing.T) {
	ctx := context.Background()
	s := MustNode(t)
	mustPut(t, s, "acct/a", "100", "acct/b", "0", "acct/gone", "x")
	err := s.Txn(ctx, []storage.TxnOp{
		{Kind: storage.OpPut, Key: "acct/a", Value: []byte("60")},
		{Kind: storage.OpPut, Key: "acct/b", Value: []byte("40")},
		{Kind: storage.OpDelete, Key: "acct/gone"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"acct/a": "60", "acct/b": "40"}
	if err := diff(dump(t, s), want); err != nil {
		t.Fatal(err)
	}
	// One invalid op rejects the whole transaction.
	err = s.Txn(ctx, []storage.TxnOp{
		{Kind: storage.OpPut, Key: "acct/a", Value: []byte("0")},
		{Kind: storage.OpPut, Key: "", Value: []byte("1")},
	})
	wantCode(t, err, core.CodeInvalid)
	if err := diff(dump(t, s), want); err != nil {
		t.Fatal(err)
	}
}

// TestTxnVisibility checks that readers never observe half a transaction,
// even while the transaction shares a batch with other writes.
func TestTxnVisibility(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := MustNode(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // noise writers so transactions land in shared batches
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_ = s.Put(ctx, fmt.Sprintf("noise/%d", i%50), []byte("n"))
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			kind := storage.OpPut
			if i%2 == 1 {
				kind = storage.OpDelete
			}
			_ = s.Txn(ctx, []storage.TxnOp{{Kind: kind, Key: "pair/x", Value: []byte("1")}, {Kind: kind, Key: "pair/y", Value: []byte("1")}})
		}
		cancel()
	}()
	reads := 0
	for ctx.Err() == nil {
		got, err := s.List(context.Background(), "pair/")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			t.Fatalf("saw half a transaction: %q", got)
		}
		reads++
	}
	wg.Wait()
	if reads == 0 {
		t.Fatal("no reads overlapped the writes")
	}
}

func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 50, 200
	rec := &keyRecorder{}
	cfg := testConfig(t.TempDir(), "node1")
	cfg.OnApply = rec.record
	s := MustOpen(t, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := s.Put(ctx, fmt.Sprintf("w%02d/k%03d", w, i), []byte(fmt.Sprint(w*perWriter+i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := dump(t, s)
	if len(got) != writers*perWriter {
		t.Fatalf("%d keys, want %d", len(got), writers*perWriter)
	}
	for w := range writers {
		for i := range perWriter {
			if v := got[fmt.Sprintf("w%02d/k%03d", w, i)]; v != fmt.Sprint(w*perWriter+i) {
				t.Fatalf("w%02d/k%03d = %q", w, i, v)
			}
		}
	}
	calls, keys, _ := rec.snapshot()
	if len(keys) != writers*perWriter {
		t.Errorf("OnApply saw %d keys, want %d", len(keys), writers*perWriter)
	}
	// Shared fsyncs: concurrent writes were applied in fewer transactions
	// than writes.
	if calls >= writers*perWriter {
		t.Errorf("OnApply called %d times for %d writes: no batching", calls, writers*perWriter)
	}
	t.Logf("%d writes applied in %d batches", writers*perWriter, calls)
}

func TestNoLeaderErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(dir, "solo")
	cfg.Bootstrap = false // never gets a configuration: stays a follower
	s := MustOpen(t, cfg)
	err := s.Put(ctx, "k", []byte("v"))
	wantCode(t, err, core.CodeUnavailable)
	if !strings.Contains(err.Error(), "not the leader (leader is unknown)") {
		t.Errorf("error %q does not say there is no leader", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.WaitLeader(short); err != context.DeadlineExceeded {
		t.Errorf("WaitLeader without a cluster = %v, want deadline exceeded", err)
	}
	wantCode(t, s.RestoreSnapshot(ctx, strings.NewReader("x")), core.CodeUnavailable)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = s.Get(ctx, "k")
	wantCode(t, err, core.CodeUnavailable)
	if err := s.Put(ctx, "k", nil); err != errClosed {
		t.Errorf("Put after Close = %v, want %v", err, errClosed)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		mod  func(*Config)
		code core.Code
	}{
		{"no dir", func(c *Config) { c.Dir = "" }, core.CodeInvalid},
		{"no id", func(c *Config) { c.NodeID = "" }, core.CodeInvalid},
		{"unadvertisable", func(c *Config) { c.BindAddr = "0.0.0.0:0" }, core.CodeInvalid},
		{"bad timeouts", func(c *Config) { c.LeaderLeaseTimeout = time.Hour }, core.CodeInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir(), "n")
			c.mod(&cfg)
			_, err := Open(cfg)
			wantCode(t, err, c.code)
		})
	}
	// A second Open of the same folder is refused while the first runs.
	MustOpen(t, testConfig(dir, "n"))
	_, err := Open(testConfig(dir, "n"))
	wantCode(t, err, core.CodeUnavailable)
}

func TestAdvertiseAddr(t *testing.T) {
	cfg := testConfig(t.TempDir(), "n")
	cfg.BindAddr = "0.0.0.0:0"
	cfg.AdvertiseAddr = "127.0.0.1"
	s := MustOpen(t, cfg)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Errorf("Addr = %q, want 127.0.0.1 with the bound port", s.Addr())
	}
	if id, addr := s.Leader(); id != "n" || addr != s.Addr() {
		t.Errorf("Leader = %q %q", id, addr)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	ops := []storage.TxnOp{
		{Kind: storage.OpPut, Key: "a/b", Value: []byte("hello")},
		{Kind: storage.OpDelete, Key: "c"},
		{Kind: storage.OpPut, Key: "empty", Value: nil},
	}
	b, err := encodeCommand(ops)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ops) {
		t.Fatalf("%d ops, want %d", len(got), len(ops))
	}
	for i, o := range got {
		if o.kind != ops[i].Kind || string(o.key) != ops[i].Key || !bytes.Equal(o.value, ops[i].Value) {
			t.Errorf("op %d = %+v, want %+v", i, o, ops[i])
		}
	}
	bad := map[string][]byte{
		"empty":        {},
		"version":      append([]byte{2}, b[1:]...),
		"trailing":     append(append([]byte{}, b...), 0),
		"truncated":    b[:len(b)-2],
		"zero ops":     {commandV1, 0},
		"huge count":   {commandV1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 'k'},
		"unknown kind": {commandV1, 1, 7, 1, 'k'},
		"empty key":    {commandV1, 1, byte(storage.OpDelete), 0, 0},
		"overlong len": {commandV1, 1, byte(storage.OpDelete), 0x81, 0x00, 'k'},
	}
	for name, in := range bad {
		if _, err := decodeCommand(in); err == nil {
			t.Errorf("%s: decoded %x without error", name, in)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	b, _ := encodeCommand([]storage.TxnOp{{Kind: storage.OpPut, Key: "k", Value: []byte("v")}, {Kind: storage.OpDelete, Key: "d"}})
	f.Add(b)
	f.Add([]byte{commandV1, 1, 2, 1, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := decodeCommand(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		in := make([]storage.TxnOp, len(ops))
		for i, o := range ops {
			in[i] = storage.TxnOp{Kind: o.kind, Key: string(o.key), Value: o.value}
		}
		re, err := encodeCommand(in)
		if err != nil || !bytes.Equal(re, data) {
			t.Fatalf("decoded %x but re-encoded %x (%v)", data, re, err)
		}
	})
}
