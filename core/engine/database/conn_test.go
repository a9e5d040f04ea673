package database

import (
	"context"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/engine/database/internal/dbtest"
)

// TestPoolLifecycle checks pools are reused, replaced by a config write or
// reset, and closed by delete and Close.
func TestPoolLifecycle(t *testing.T) {
	t.Parallel()
	srv := dbtest.MustPostgres(t)
	ctx := context.Background()
	b, c := mustEngine(t, srv)
	st, err := b.state()
	if err != nil {
		t.Fatal(err)
	}
	get := func() *pool {
		t.Helper()
		p, err := b.getPool(ctx, st, "main")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	closed := func(p *pool) bool { return p.db.PingContext(ctx) != nil }

	p1 := get()
	if get() != p1 || closed(p1) {
		t.Fatal("the pool is not reused while the config is unchanged")
	}
	c.MustCall(t, core.OpUpdate, "config/main", map[string]any{"max_open_connections": 2})
	p2 := get()
	if p2 == p1 || !closed(p1) || p2.db.Stats().MaxOpenConnections != 2 {
		t.Fatalf("config write: new pool=%v, old closed=%v, max open=%d", p2 != p1, closed(p1), p2.db.Stats().MaxOpenConnections)
	}
	c.MustCall(t, core.OpUpdate, "reset/main", nil)
	p3 := get()
	if p3 == p2 || !closed(p2) {
		t.Fatal("reset did not replace the pool")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !closed(p3) {
		t.Fatal("Close left the pool open")
	}
	p4 := get() // reopened lazily after Close
	c.MustCall(t, core.OpDelete, "config/main", nil)
	if !closed(p4) {
		t.Fatal("delete left the pool open")
	}
	if _, err := b.getPool(ctx, st, "main"); core.CodeOf(err) != core.CodeInvalid {
		t.Fatalf("pool for a deleted config: %v", err)
	}
}
