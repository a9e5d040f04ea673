package barrier

import (
	"context"
	"errors"
	"testing"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

func TestTxn(t *testing.T) {
	ctx := context.Background()
	b, p, _ := MustUnsealed(t, &t0)
	mustPut(t, b, "gone", "x")
	ops := []storage.TxnOp{
		{Kind: storage.OpPut, Key: "t/1", Value: []byte("one")},
		{Kind: storage.OpPut, Key: "t/2", Value: []byte("two")},
		{Kind: storage.OpDelete, Key: "gone"},
	}
	if err := b.Txn(ctx, ops); err != nil {
		t.Fatal(err)
	}
	if p.txns != 1 {
		t.Fatalf("physical Txn called %d times, want 1", p.txns)
	}
	mustGet(t, b, "t/1", "one")
	mustGet(t, b, "t/2", "two")
	if got, err := b.Get(ctx, "gone"); got != nil || err != nil {
		t.Fatalf("deleted key = %q, %v", got, err)
	}
	if string(ops[0].Value) != "one" {
		t.Fatal("Txn modified the caller's ops")
	}

	// A physical failure surfaces and, the physical Txn being atomic, leaves nothing.
	p.failTxn = errors.New("raft: no leader")
	err := b.Txn(ctx, []storage.TxnOp{{Kind: storage.OpPut, Key: "t/3", Value: []byte("3")}, {Kind: storage.OpDelete, Key: "t/1"}})
	if err == nil || !errors.Is(err, p.failTxn) {
		t.Fatalf("Txn with failing physical = %v", err)
	}
	p.failTxn = nil
	mustGet(t, b, "t/1", "one")
	if got, _ := b.Get(ctx, "t/3"); got != nil {
		t.Fatal("failed transaction wrote t/3")
	}

	// Invalid ops are refused before the physical storage sees anything.
	before := p.txns
	err = b.Txn(ctx, []storage.TxnOp{{Kind: storage.OpPut, Key: "t/4", Value: []byte("4")}, {Kind: 99, Key: "t/5"}})
	if core.CodeOf(err) != core.CodeInvalid || p.txns != before {
		t.Fatalf("Txn with an unknown op = %v (physical calls %d -> %d)", err, before, p.txns)
	}
	if got, _ := b.Get(ctx, "t/4"); got != nil {
		t.Fatal("invalid transaction wrote t/4")
	}
}
