package lease

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// fakeTokens is a token store that knows expiries by hash.
type fakeTokens struct {
	mu  sync.Mutex
	exp map[string]time.Time
}

func (f *fakeTokens) TokenExpiry(_ context.Context, hash string) (time.Time, bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.exp[hash]
	return e, true, ok, nil
}

func (f *fakeTokens) set(hash string, t time.Time) {
	f.mu.Lock()
	f.exp[hash] = t
	f.mu.Unlock()
}

func (f *fakeTokens) drop(hash string) {
	f.mu.Lock()
	delete(f.exp, hash)
	f.mu.Unlock()
}

// A token's lease follows the token: a renewed token moves the expiry on,
// and once the token is gone the lease is revoked through the Dispatcher
// with the token's hash for the server to revoke.
func TestTokenLeaseFollowsItsToken(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	e := &engine{}
	ft := &fakeTokens{exp: map[string]time.Time{}}
	st := storage.NewMemory()
	m := New(Config{Storage: st, Dispatch: e.dispatch, Now: clk.Now, Tokens: ft})
	ctx := context.Background()
	raw := "hvs.logintoken"
	h := tokenHash(raw)
	ft.set(h, clk.Now().Add(time.Hour))
	req := &core.Request{Path: "auth/userpass/login/bob", Mount: &core.MountInfo{Path: "auth/userpass/", Class: "auth", Type: "userpass"}}
	if err := m.Register(ctx, req, &core.Response{Auth: &core.Auth{ClientToken: raw, TokenType: "service"}}); err != nil {
		t.Fatal(err)
	}
	ids, err := m.List(ctx, "auth/userpass/login/bob/")
	if err != nil || len(ids) != 1 || !strings.HasPrefix(ids[0], "auth/userpass/login/bob/h") || strings.Contains(ids[0], h) {
		t.Fatalf("token lease ids: %v %v", ids, err)
	}
	// Renewal of tokens is refused here.
	if _, err := m.Renew(ctx, ids[0], 0); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("renew: %v", err)
	}
	// Renewed token: at the first expiry nothing is revoked.
	ft.set(h, clk.Now().Add(3*time.Hour))
	clk.Advance(time.Hour)
	m.RunDue(ctx)
	if e.count() != 0 {
		t.Fatal("revoked a token lease whose token was renewed")
	}
	le, err := m.Lookup(ctx, ids[0])
	if err != nil || !le.ExpireTime.Equal(clk.Now().Add(2*time.Hour)) {
		t.Fatalf("lookup after renewal: %+v %v", le, err)
	}
	// Token gone (expired): the lease is revoked, naming the token.
	ft.drop(h)
	clk.Advance(2 * time.Hour)
	m.RunDue(ctx)
	if e.count() != 1 || e.reqs[0].Secret.TokenHash != h || e.reqs[0].Path != "auth/userpass/" {
		t.Fatalf("revocation: %d %+v", e.count(), e.reqs)
	}
	if ids, _ := m.List(ctx, ""); len(ids) != 0 {
		t.Fatalf("lease left: %v", ids)
	}

	// Batch tokens, renewals and non-auth mounts get no lease.
	for _, c := range []struct {
		req *core.Request
		a   *core.Auth
	}{
		{req, &core.Auth{ClientToken: "hvb.x", TokenType: "batch"}},
		{&core.Request{Path: "auth/token/renew-self", Mount: &core.MountInfo{Path: "auth/token/", Class: "auth", Type: "token"}}, &core.Auth{ClientToken: raw}},
	} {
		ft.set(tokenHash(c.a.ClientToken), clk.Now().Add(time.Hour))
		if err := m.Register(ctx, c.req, &core.Response{Auth: c.a}); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := m.List(ctx, ""); len(ids) != 0 {
		t.Fatalf("unexpected leases: %v", ids)
	}

	// Revoking a token deletes its own lease without dispatching.
	ft.set(h, clk.Now().Add(time.Hour))
	if err := m.Register(ctx, req, &core.Response{Auth: &core.Auth{ClientToken: raw, TokenType: "service"}}); err != nil {
		t.Fatal(err)
	}
	if err := m.RevokeByTokens(ctx, []string{h}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := m.List(ctx, ""); len(ids) != 0 || e.count() != 1 {
		t.Fatalf("after RevokeByTokens: leases %v, dispatched %d", ids, e.count())
	}
}
