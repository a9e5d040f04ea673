package lease

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// crashable is a node's view of the shared (replicated) storage: once
// crashed, every operation fails, as if the node had died.
type crashable struct {
	storage.Storage
	dead atomic.Bool
}

var errDead = errors.New("node is dead")

func (c *crashable) Get(ctx context.Context, k string) ([]byte, error) {
	if c.dead.Load() {
		return nil, errDead
	}
	return c.Storage.Get(ctx, k)
}

func (c *crashable) Put(ctx context.Context, k string, v []byte) error {
	if c.dead.Load() {
		return errDead
	}
	return c.Storage.Put(ctx, k, v)
}

func (c *crashable) Delete(ctx context.Context, k string) error {
	if c.dead.Load() {
		return errDead
	}
	return c.Storage.Delete(ctx, k)
}

func (c *crashable) List(ctx context.Context, p string) ([]string, error) {
	if c.dead.Load() {
		return nil, errDead
	}
	return c.Storage.List(ctx, p)
}

func (c *crashable) Txn(ctx context.Context, ops []storage.TxnOp) error {
	if c.dead.Load() {
		return errDead
	}
	return storage.Txn(ctx, c.Storage, ops)
}

// waitFor polls cond until it holds (a condition wait, not a timing
// assertion: the deadline only bounds a broken test).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A node that dies between the engine's revoke and the deletion of the
// lease leaves the lease marked: the next active node completes that
// revocation, audited as resuming the first request, instead of revoking
// the lease a second, independent time.
func TestInterruptedRevocationIsResumedNotRepeated(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	shared := storage.NewMemory()
	nodeA := &crashable{Storage: shared}
	engA := &engine{}
	var marked string
	a := New(Config{Storage: nodeA, Now: clk.Now, TTLs: func(string) (time.Duration, time.Duration) { return time.Hour, time.Hour },
		Dispatch: func(ctx context.Context, req *core.Request) (*core.Response, error) {
			var e Entry
			if ok, err := storage.GetJSON(ctx, shared, leaseKey(req.Secret.LeaseID), &e); err != nil || !ok {
				t.Errorf("lease not stored at dispatch: %v %v", ok, err)
			}
			marked = e.Revoking
			resp, err := engA.dispatch(ctx, req)
			nodeA.dead.Store(true) // kill -9 after the engine revoked
			return resp, err
		}})
	id := register(t, a, time.Minute, "")
	clk.Advance(time.Minute)
	a.RunDue(ctx)
	if engA.count() != 1 {
		t.Fatalf("node A revoked %v", engA.revoked)
	}
	first := engA.reqs[0].ID
	if first == "" || marked != first {
		t.Fatalf("lease marked %q before the dispatch of request %q", marked, first)
	}

	engB := &engine{}
	b := newManager(t, shared, clk, engB)
	if _, err := b.Renew(ctx, id, time.Hour); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("renewing a lease being revoked: %v", err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	b.RunDue(ctx)
	waitFor(t, "node B to complete the revocation", func() bool { return engB.count() == 1 })
	engB.mu.Lock()
	req := engB.reqs[0]
	engB.mu.Unlock()
	if got := req.Labels[core.LabelResumesRequestID]; got != first {
		t.Fatalf("node B's revocation resumes %q, want %q (labels %v)", got, first, req.Labels)
	}
	if req.ID == first || req.Data["lease_id"] != id {
		t.Fatalf("resumed revocation: %+v", req)
	}
	if e, err := b.get(ctx, id); err != nil || e != nil {
		t.Fatalf("lease still stored after the resumed revocation: %+v %v", e, err)
	}
	if b.RunDue(ctx) != 0 || engB.count() != 1 {
		t.Fatalf("revoked again: %v", engB.revoked)
	}
}

// A node that stops leading while it revokes due leases revokes nothing
// more: the rest is left, uncounted as failures, for the new active node,
// which revokes each lease once.
func TestDeposedNodeStopsRevoking(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	shared := storage.NewMemory()
	var leader atomic.Bool
	leader.Store(true)
	engA := &engine{}
	a := New(Config{Storage: shared, Now: clk.Now, TTLs: func(string) (time.Duration, time.Duration) { return time.Hour, time.Hour },
		Confirm: func(context.Context) error {
			if !leader.Load() {
				return errors.New("not the leader")
			}
			return nil
		},
		Dispatch: func(ctx context.Context, req *core.Request) (*core.Response, error) {
			leader.Store(false) // another node is elected meanwhile
			return engA.dispatch(ctx, req)
		}})
	id1 := register(t, a, time.Minute, "")
	id2 := register(t, a, time.Minute, "")
	clk.Advance(time.Minute)
	a.RunDue(ctx)
	if engA.count() != 1 {
		t.Fatalf("deposed node revoked %v", engA.revoked)
	}
	left := id2
	if engA.revoked[0] == id2 {
		left = id1
	}
	e, err := a.get(ctx, left)
	if err != nil || e == nil {
		t.Fatalf("lease %s: %+v %v", left, e, err)
	}
	if e.RevokeAttempts != 0 || e.Irrevocable || e.Revoking != "" {
		t.Fatalf("a refused revocation was recorded as an attempt: %+v", e)
	}
	if err := a.Revoke(ctx, left); !errors.Is(err, ErrNotActive) || core.CodeOf(err) != core.CodeUnavailable {
		t.Fatalf("revoke on a deposed node: %v", err)
	}
	a.Stop()

	engB := &engine{}
	b := newManager(t, shared, clk, engB)
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	b.RunDue(ctx)
	waitFor(t, "the new active node to revoke the rest", func() bool { return engB.count() == 1 })
	if engB.revoked[0] != left {
		t.Fatalf("new active node revoked %v, want only %s", engB.revoked, left)
	}
}

// A revocation that happens while a renewal is in its engine waits for the
// renewal: the renewal never writes back a lease revoked meanwhile.
func TestRenewDuringRevocationDoesNotRestoreTheLease(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	st := storage.NewMemory()
	eng := &engine{}
	inRenew, release := make(chan struct{}), make(chan struct{})
	m := New(Config{Storage: st, Now: clk.Now, TTLs: func(string) (time.Duration, time.Duration) { return time.Hour, 2 * time.Hour },
		Dispatch: func(ctx context.Context, req *core.Request) (*core.Response, error) {
			if req.Operation == core.OpRenew {
				close(inRenew)
				<-release
			}
			return eng.dispatch(ctx, req)
		}})
	id := register(t, m, time.Minute, "")
	renewed := make(chan error, 1)
	go func() { _, err := m.Renew(ctx, id, time.Hour); renewed <- err }()
	<-inRenew
	revoked := make(chan error, 1)
	go func() { revoked <- m.Revoke(ctx, id) }()
	select {
	case err := <-revoked:
		t.Fatalf("the revocation finished while the renewal was in its engine (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-renewed; err != nil {
		t.Fatal(err)
	}
	if err := <-revoked; err != nil {
		t.Fatal(err)
	}
	if e, err := m.get(ctx, id); err != nil || e != nil {
		t.Fatalf("lease stored after its revocation: %+v %v", e, err)
	}
	if eng.count() != 1 {
		t.Fatalf("revoked %d times: %v", eng.count(), eng.revoked)
	}
}
