package token

import (
	"bytes"
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newStore(t *testing.T) (*Store, *storage.Memory, *clock) {
	t.Helper()
	mem := storage.NewMemory()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	return NewStore(mem, Config{Now: clk.Now}), mem, clk
}

func TestCreateDefaultsAndCaps(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	_, e, err := s.Create(ctx, CreateParams{Policies: []string{" Ops", "dev", "dev"}, Renewable: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Policies, []string{"default", "dev", "ops"}) {
		t.Fatalf("policies %v", e.Policies)
	}
	if e.TTL != time.Hour || !e.Orphan || e.Type != "service" {
		t.Fatalf("defaults: %+v", e)
	}
	_, e, _ = s.Create(ctx, CreateParams{TTL: 100 * time.Hour})
	if e.TTL != 24*time.Hour {
		t.Fatalf("TTL not capped by max: %v", e.TTL)
	}
	_, e, _ = s.Create(ctx, CreateParams{TTL: 10 * time.Hour, ExplicitMaxTTL: 2 * time.Hour})
	if e.TTL != 2*time.Hour {
		t.Fatalf("explicit max ignored: %v", e.TTL)
	}
	_, e, _ = s.Create(ctx, CreateParams{Policies: []string{"root", "x"}, NoExpiry: true})
	if !reflect.DeepEqual(e.Policies, []string{"root"}) || !e.ExpireTime.IsZero() {
		t.Fatalf("root token: %+v", e)
	}
	if _, _, err := s.Create(ctx, CreateParams{Type: "weird"}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("bad type: %v", err)
	}
	if _, _, err := s.Create(ctx, CreateParams{NumUses: -1}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("negative uses: %v", err)
	}
	if _, _, err := s.Create(ctx, CreateParams{ID: "hvs.custom1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(ctx, CreateParams{ID: "hvs.custom1"}); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("duplicate id: %v", err)
	}
}

func TestRawTokenNeverStored(t *testing.T) {
	ctx := context.Background()
	s, mem, _ := newStore(t)
	raw, e, err := s.Create(ctx, CreateParams{Policies: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range mem.Keys() {
		v, _ := mem.Get(ctx, k)
		if bytes.Contains([]byte(k), []byte(raw)) || bytes.Contains(v, []byte(raw)) {
			t.Fatalf("raw token stored at %s", k)
		}
	}
	got, err := s.Lookup(ctx, raw)
	if err != nil || got == nil || got.Accessor != e.Accessor {
		t.Fatalf("lookup: %v %v", got, err)
	}
	byAcc, err := s.LookupAccessor(ctx, e.Accessor)
	if err != nil || byAcc == nil || byAcc.Hash != e.Hash {
		t.Fatalf("lookup accessor: %v %v", byAcc, err)
	}
	if miss, _ := s.Lookup(ctx, raw+"x"); miss != nil {
		t.Fatal("lookup of a wrong token succeeded")
	}
}

func TestExpiryRenewAndTidy(t *testing.T) {
	ctx := context.Background()
	s, _, clk := newStore(t)
	raw, e, _ := s.Create(ctx, CreateParams{TTL: time.Hour, ExplicitMaxTTL: 90 * time.Minute, Renewable: true})
	clk.Advance(50 * time.Minute)
	e, err := s.Renew(ctx, e, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(40 * time.Minute); !e.ExpireTime.Equal(want) {
		t.Fatalf("renew not capped by explicit max: %v, want %v", e.ExpireTime, want)
	}
	clk.Advance(41 * time.Minute)
	if got, _ := s.Lookup(ctx, raw); got != nil {
		t.Fatal("expired token still valid")
	}
	_, fixed, _ := s.Create(ctx, CreateParams{TTL: time.Hour})
	if _, err := s.Renew(ctx, fixed, 0); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("renewing a non-renewable token: %v", err)
	}
	n, err := s.Tidy(ctx)
	if err != nil || n != 1 {
		t.Fatalf("tidy revoked %d (%v), want 1", n, err)
	}
	all, _ := s.All(ctx)
	if len(all) != 1 {
		t.Fatalf("%d tokens left, want 1", len(all))
	}
}

func TestRevokeTreeOrphanAndHook(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	var hooked [][]string
	s.SetOnRevoke(func(_ context.Context, hashes []string) error { hooked = append(hooked, hashes); return nil })
	rootRaw, root, _ := s.Create(ctx, CreateParams{Policies: []string{"a"}})
	childRaw, child, _ := s.Create(ctx, CreateParams{Parent: root})
	grandRaw, _, _ := s.Create(ctx, CreateParams{Parent: child})
	otherRaw, _, _ := s.Create(ctx, CreateParams{Parent: root})
	// revoke-orphan on the child: grandchild survives as an orphan.
	if err := s.RevokeOrphan(ctx, child.Hash); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Lookup(ctx, grandRaw); g == nil || !g.Orphan || g.Parent != "" {
		t.Fatalf("grandchild after revoke-orphan: %+v", g)
	}
	if c, _ := s.Lookup(ctx, childRaw); c != nil {
		t.Fatal("child survived")
	}
	if err := s.Revoke(ctx, root.Hash); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{rootRaw, otherRaw} {
		if e, _ := s.Lookup(ctx, r); e != nil {
			t.Fatal("token survived revoke-tree")
		}
	}
	if g, _ := s.Lookup(ctx, grandRaw); g == nil {
		t.Fatal("orphaned grandchild revoked with its former grandparent")
	}
	last := hooked[len(hooked)-1]
	if len(last) != 2 || last[len(last)-1] != root.Hash {
		t.Fatalf("revoke hook saw %v (children first, parent last)", last)
	}
}

func TestUseLimits(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	raw, _, _ := s.Create(ctx, CreateParams{NumUses: 2})
	req := &core.Request{ClientToken: raw}
	p, err := s.Authenticate(ctx, req)
	if err != nil || p.NumUsesLeft != 1 {
		t.Fatalf("first use: %+v %v", p, err)
	}
	p, err = s.Authenticate(ctx, req)
	if err != nil || p.NumUsesLeft != -1 {
		t.Fatalf("last use: %+v %v", p, err)
	}
	if _, err := s.Authenticate(ctx, req); core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("third use: %v", err)
	}
	if _, err := s.Authenticate(ctx, &core.Request{}); core.CodeOf(err) != core.CodePermissionDenied {
		t.Fatalf("missing token: %v", err)
	}
}

// TestCreatorAndInheritedEntity: a child token inherits its creator's
// entity and login alias, an orphan does not; both record their creator.
func TestCreatorAndInheritedEntity(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	_, parent, err := s.Create(ctx, CreateParams{Policies: []string{"a"}, EntityID: "ent-carol", AliasID: "alias-1", Path: "auth/userpass/login/carol"})
	if err != nil {
		t.Fatal(err)
	}
	rawChild, child, err := s.Create(ctx, CreateParams{Policies: []string{"a"}, Parent: parent, Creator: parent, Path: "auth/token/create"})
	if err != nil {
		t.Fatal(err)
	}
	if child.EntityID != "ent-carol" || child.AliasID != "alias-1" || child.CreatorAccessor != parent.Accessor || child.CreatorEntityID != "ent-carol" {
		t.Fatalf("child %+v", child)
	}
	p := s.Principal(rawChild, child)
	if p.EntityID != "ent-carol" || p.AliasID != "alias-1" || p.CreatorAccessor != parent.Accessor || p.CreatorEntityID != "ent-carol" {
		t.Fatalf("child principal %+v", p)
	}
	_, orphan, err := s.Create(ctx, CreateParams{Policies: []string{"a"}, Orphan: true, Creator: parent, Path: "auth/token/create-orphan"})
	if err != nil {
		t.Fatal(err)
	}
	if orphan.EntityID != "" || orphan.CreatorAccessor != parent.Accessor || orphan.CreatorEntityID != "ent-carol" {
		t.Fatalf("orphan %+v", orphan)
	}
}
