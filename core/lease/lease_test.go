package lease

import (
	"context"
	"errors"
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

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// engine records revocations and can be told to fail.
type engine struct {
	mu      sync.Mutex
	revoked []string
	fail    error
	reqs    []*core.Request
}

func (e *engine) dispatch(_ context.Context, req *core.Request) (*core.Response, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reqs = append(e.reqs, req)
	if !req.Internal {
		return nil, errors.New("lease manager sent a non-internal request")
	}
	switch req.Operation {
	case core.OpRevoke:
		if e.fail != nil {
			return nil, e.fail
		}
		e.revoked = append(e.revoked, req.Secret.LeaseID)
		return nil, nil
	case core.OpRenew:
		// Grant what was asked (the manager has already applied max_ttl).
		return &core.Response{Data: map[string]any{"ttl": req.Data["increment"]}}, nil
	}
	return nil, errors.New("unexpected operation")
}

func (e *engine) count() int { e.mu.Lock(); defer e.mu.Unlock(); return len(e.revoked) }

func newManager(t *testing.T, st storage.Storage, clk *clock, e *engine) *Manager {
	t.Helper()
	m := New(Config{Storage: st, Dispatch: e.dispatch, Now: clk.Now, MinBackoff: time.Second, MaxBackoff: 4 * time.Second, MaxAttempts: 3,
		TTLs: func(string) (time.Duration, time.Duration) { return time.Hour, 2 * time.Hour }})
	return m
}

func register(t *testing.T, m *Manager, ttl time.Duration, token string) string {
	t.Helper()
	req := &core.Request{Path: "database/creds/app", Mount: &core.MountInfo{Path: "database/"}}
	if token != "" {
		req.Principal = &core.Principal{ClientToken: token}
	}
	resp := &core.Response{Secret: &core.Secret{TTL: ttl, Renewable: true, InternalData: map[string]any{"username": "u"}}}
	if err := m.Register(context.Background(), req, resp); err != nil {
		t.Fatal(err)
	}
	return resp.Secret.LeaseID
}

func TestExpiryRevokesThroughDispatcher(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	e := &engine{}
	m := newManager(t, storage.NewMemory(), clk, e)
	id := register(t, m, 10*time.Minute, "")
	if m.RunDue(context.Background()) != 0 {
		t.Fatal("revoked before expiry")
	}
	clk.Advance(10 * time.Minute)
	if n := m.RunDue(context.Background()); n != 1 || e.count() != 1 || e.revoked[0] != id {
		t.Fatalf("RunDue=%d revoked=%v", n, e.revoked)
	}
	if req := e.reqs[0]; req.InternalActor != "expiration" || req.Path != "database/creds/app" || req.Secret.InternalData["username"] != "u" {
		t.Fatalf("revocation request: %+v", req)
	}
	if _, err := m.Lookup(context.Background(), id); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("lease still stored: %v", err)
	}
}

func TestTTLCappedByMountAndNoLease(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := newManager(t, storage.NewMemory(), clk, &engine{})
	req := &core.Request{Path: "db/creds/x", Mount: &core.MountInfo{Path: "db/"}}
	resp := &core.Response{Secret: &core.Secret{TTL: 10 * time.Hour}}
	if err := m.Register(context.Background(), req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.Secret.TTL != 2*time.Hour {
		t.Fatalf("ttl %v, want capped to 2h", resp.Secret.TTL)
	}
	adv := &core.Response{Secret: &core.Secret{TTL: time.Hour, NoLease: true}}
	if err := m.Register(context.Background(), req, adv); err != nil || adv.Secret.LeaseID != "" {
		t.Fatalf("advisory TTL created a lease: %q %v", adv.Secret.LeaseID, err)
	}
}

func TestFailedRevocationRetriesWithBackoffThenGivesUp(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	e := &engine{fail: errors.New("database unreachable")}
	m := newManager(t, storage.NewMemory(), clk, e)
	id := register(t, m, time.Minute, "")
	clk.Advance(time.Minute)
	m.RunDue(ctx)
	le, _ := m.Lookup(ctx, id)
	if le.RevokeAttempts != 1 || le.LastError == "" || !le.NextAttempt.Equal(clk.Now().Add(time.Second)) {
		t.Fatalf("after first failure: %+v", le)
	}
	if m.RunDue(ctx) != 0 {
		t.Fatal("retried before the backoff elapsed")
	}
	clk.Advance(time.Second)
	m.RunDue(ctx)
	le, _ = m.Lookup(ctx, id)
	if le.RevokeAttempts != 2 || !le.NextAttempt.Equal(clk.Now().Add(2*time.Second)) {
		t.Fatalf("backoff did not double: %+v", le)
	}
	clk.Advance(2 * time.Second)
	m.RunDue(ctx)
	le, _ = m.Lookup(ctx, id)
	if !le.Irrevocable || le.RevokeAttempts != 3 {
		t.Fatalf("after max attempts: %+v", le)
	}
	// Tidy re-arms it; once the engine recovers it is revoked.
	e.mu.Lock()
	e.fail = nil
	e.mu.Unlock()
	if n, err := m.Tidy(ctx); err != nil || n != 1 {
		t.Fatalf("tidy: %d %v", n, err)
	}
	m.RunDue(ctx)
	if e.count() != 1 {
		t.Fatal("lease not revoked after tidy")
	}
}

func TestPendingLeasesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	st := storage.NewMemory()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	e := &engine{}
	m1 := newManager(t, st, clk, e)
	register(t, m1, 5*time.Minute, "")
	register(t, m1, 50*time.Minute, "")
	// A new manager over the same storage (a restart) schedules both.
	m2 := newManager(t, st, clk, e)
	if err := m2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m2.Stop()
	if m2.Count() != 2 {
		t.Fatalf("scheduled %d, want 2", m2.Count())
	}
	clk.Advance(6 * time.Minute)
	m2.RunDue(ctx)
	if e.count() != 1 {
		t.Fatalf("revoked %d after 6m, want 1", e.count())
	}
}

func TestRevokeByTokensAndPrefix(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	e := &engine{}
	m := newManager(t, storage.NewMemory(), clk, e)
	a := register(t, m, time.Hour, "hvs.tokenA")
	register(t, m, time.Hour, "hvs.tokenB")
	if err := m.RevokeByTokens(ctx, []string{tokenHash("hvs.tokenA")}); err != nil {
		t.Fatal(err)
	}
	if e.count() != 1 || e.revoked[0] != a {
		t.Fatalf("revoked %v, want only %s", e.revoked, a)
	}
	register(t, m, time.Hour, "")
	ids, _ := m.List(ctx, "database/creds/")
	if len(ids) != 2 {
		t.Fatalf("list: %v", ids)
	}
	e.mu.Lock()
	e.fail = errors.New("down")
	e.mu.Unlock()
	if err := m.RevokePrefix(ctx, "database/", false); err == nil {
		t.Fatal("revoke-prefix ignored engine failures")
	}
	if ids, _ := m.List(ctx, ""); len(ids) != 2 {
		t.Fatalf("failed revoke-prefix deleted leases: %v", ids)
	}
	if err := m.RevokePrefix(ctx, "database/", true); err != nil {
		t.Fatal(err)
	}
	if ids, _ := m.List(ctx, ""); len(ids) != 0 {
		t.Fatalf("revoke-force left leases: %v", ids)
	}
}

func TestRenewCappedByMaxTTL(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := newManager(t, storage.NewMemory(), clk, &engine{})
	id := register(t, m, time.Hour, "")
	clk.Advance(90 * time.Minute) // past its 1h TTL
	if _, err := m.Renew(ctx, id, time.Hour); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("renewing an expired lease: %v", err)
	}
	id = register(t, m, time.Hour, "")
	clk.Advance(50 * time.Minute)
	le, err := m.Renew(ctx, id, 5*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Max TTL is 2h from issue: 70 minutes remain.
	if le.TTL != 70*time.Minute {
		t.Fatalf("renewed TTL %v, want 70m", le.TTL)
	}
}

// failingTxn is storage whose transactions fail while fail is set, and,
// like raft's, when their context is done.
type failingTxn struct {
	*storage.Memory
	fail bool
}

func (f *failingTxn) Txn(ctx context.Context, ops []storage.TxnOp) error {
	if f.fail {
		return errors.New("disk on fire")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return storage.Txn(ctx, f.Memory, ops)
}

// TestRegisterSurvivesClientGoneAndRevokesUnrecordedSecrets: a lease is
// stored even if the client disconnected after the engine created the
// secret; when it cannot be stored the secret is revoked at once.
func TestRegisterSurvivesClientGoneAndRevokesUnrecordedSecrets(t *testing.T) {
	st := &failingTxn{Memory: storage.NewMemory()}
	e := &engine{}
	m := newManager(t, st, &clock{t: time.Unix(1000, 0)}, e)
	req := &core.Request{Path: "database/creds/app", Mount: &core.MountInfo{Path: "database/"}, Principal: &core.Principal{ClientToken: "tok"}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client went away
	resp := &core.Response{Secret: &core.Secret{TTL: time.Minute, InternalData: map[string]any{"username": "u1"}}}
	if err := m.Register(ctx, req, resp); err != nil || resp.Secret.LeaseID == "" {
		t.Fatalf("register after client cancellation: %v", err)
	}
	if _, err := m.Lookup(context.Background(), resp.Secret.LeaseID); err != nil {
		t.Fatalf("lease not stored: %v", err)
	}

	st.fail = true
	resp = &core.Response{Secret: &core.Secret{TTL: time.Minute, InternalData: map[string]any{"username": "u2"}}}
	if err := m.Register(context.Background(), req, resp); err == nil {
		t.Fatal("register succeeded without storing the lease")
	}
	if e.count() != 1 {
		t.Fatalf("the unrecorded secret was not revoked (%d revocations)", e.count())
	}
	e.mu.Lock()
	last := e.reqs[len(e.reqs)-1]
	e.mu.Unlock()
	if last.Operation != core.OpRevoke || last.Secret.InternalData["username"] != "u2" {
		t.Fatalf("revoked %+v", last)
	}
}
