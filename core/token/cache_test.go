package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// The decode cache never serves stale state: revocation, expiry, use
// counts and changes written to storage by someone else (another node's
// raft apply) are all seen by the very next lookup.
func TestDecodeCacheStaysCoherent(t *testing.T) {
	ctx := context.Background()
	s, mem, clk := newStore(t)
	raw, e, err := s.Create(ctx, CreateParams{Policies: []string{"dev"}, TTL: time.Hour, Meta: map[string]string{"u": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	auth := func() (*core.Principal, error) { return s.Authenticate(ctx, &core.Request{ClientToken: raw}) }
	for i := 0; i < 3; i++ { // warm
		if _, err := auth(); err != nil {
			t.Fatal(err)
		}
	}

	// A change made directly in storage, as a raft apply from another node would.
	got, _ := s.Lookup(ctx, raw)
	got.Policies = []string{"default", "ops"}
	b, _ := json.Marshal(got)
	if err := mem.Put(ctx, idPrefix+e.Hash, b); err != nil {
		t.Fatal(err)
	}
	p, err := auth()
	if err != nil || len(p.Policies) != 2 || p.Policies[1] != "ops" {
		t.Fatalf("change in storage not seen: %v %v", p, err)
	}

	// Callers may modify what they get without affecting later lookups.
	got, _ = s.Lookup(ctx, raw)
	got.Policies[0], got.Meta["u"], got.NumUses = "root", "evil", 7
	again, _ := s.Lookup(ctx, raw)
	if again.Policies[0] != "default" || again.Meta["u"] != "a" || again.NumUses != 0 {
		t.Fatalf("cached entry modified through a returned copy: %+v", again)
	}

	// Expiry is checked against the clock on every lookup.
	clk.Advance(2 * time.Hour)
	if _, err := auth(); core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("expired token accepted: %v", err)
	}
	clk.Advance(-2 * time.Hour)

	// Revocation, through the store or straight in storage.
	if _, err := auth(); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, e.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := auth(); core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("revoked token accepted: %v", err)
	}
	raw2, e2, _ := s.Create(ctx, CreateParams{Policies: []string{"dev"}})
	if _, err := s.Authenticate(ctx, &core.Request{ClientToken: raw2}); err != nil {
		t.Fatal(err)
	}
	if err := mem.Delete(ctx, idPrefix+e2.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, &core.Request{ClientToken: raw2}); core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("token deleted from storage accepted: %v", err)
	}

	// Use counts: every use rewrites the entry and is seen.
	raw3, _, _ := s.Create(ctx, CreateParams{Policies: []string{"dev"}, NumUses: 2})
	for i, want := range []int{1, -1} {
		p, err := s.Authenticate(ctx, &core.Request{ClientToken: raw3})
		if err != nil || p.NumUsesLeft != want {
			t.Fatalf("use %d: %+v %v", i, p, err)
		}
	}
	if _, err := s.Authenticate(ctx, &core.Request{ClientToken: raw3}); core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("used-up token accepted: %v", err)
	}
}

type failingStorage struct {
	storage.Storage
	fail bool
}

func (f *failingStorage) Get(ctx context.Context, key string) ([]byte, error) {
	if f.fail {
		return nil, errors.New("barrier sealed")
	}
	return f.Storage.Get(ctx, key)
}

// The cache is bounded and emptied when storage fails (as it does sealed).
func TestDecodeCacheBoundAndPurge(t *testing.T) {
	ctx := context.Background()
	fs := &failingStorage{Storage: storage.NewMemory()}
	s := NewStore(fs, Config{})
	var raws []string
	for i := 0; i < maxDecoded+50; i++ {
		raw, _, err := s.Create(ctx, CreateParams{Policies: []string{fmt.Sprint("p", i)}})
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		if _, err := s.Lookup(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(s.decoded.m); n > maxDecoded || n < maxDecoded/2 {
		t.Fatalf("cache holds %d entries, bound %d", n, maxDecoded)
	}
	fs.fail = true
	if _, err := s.Lookup(ctx, raws[0]); err == nil {
		t.Fatal("lookup succeeded on failing storage")
	}
	if n := len(s.decoded.m); n != 0 {
		t.Fatalf("cache holds %d entries after a storage failure", n)
	}
}

// BenchmarkAuthenticate: one token authenticating request after request.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	s := NewStore(storage.NewMemory(), Config{})
	raw, _, err := s.Create(ctx, CreateParams{Policies: []string{"dev", "ops"}, Meta: map[string]string{"user": "alice"}})
	if err != nil {
		b.Fatal(err)
	}
	req := &core.Request{ClientToken: raw}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.Authenticate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
