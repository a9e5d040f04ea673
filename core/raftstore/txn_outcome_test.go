package raftstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// A caller whose context ends after its write was submitted still gets the
// write's real outcome: the entry commits, so Txn reports success and a Get
// sees the value. Reporting ctx.Err() there would let the audit trail say
// "failed" for a change that happened. The context is cancelled from the
// apply callback, i.e. while Txn waits for the entry to commit; the loop
// repeats it because a wait that races the two outcomes picks either.
func TestTxnReportsCommittedWriteAfterCallerGivesUp(t *testing.T) {
	var cancelOnApply atomic.Pointer[context.CancelFunc]
	cfg := testConfig(t.TempDir(), "node1")
	cfg.OnApply = func([]string) {
		if c := cancelOnApply.Swap(nil); c != nil {
			(*c)()
		}
	}
	s := MustOpen(t, cfg)
	for i := range 30 {
		ctx, cancel := context.WithCancel(context.Background())
		cancelOnApply.Store(&cancel)
		key := fmt.Sprintf("k%d", i)
		err := s.Put(ctx, key, []byte("v"))
		if ctx.Err() == nil {
			t.Fatal("the apply callback did not run")
		}
		v, gerr := s.Get(context.Background(), key)
		if gerr != nil {
			t.Fatal(gerr)
		}
		if string(v) != "v" {
			t.Fatalf("write %d was not applied (err %v)", i, err)
		}
		if err != nil {
			t.Fatalf("write %d committed but Put reported %v", i, err)
		}
	}
}
