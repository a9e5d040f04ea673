package chain

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// gate blocks the next batch write once armed: it reports the batch on
// entered and waits for release, which says how the write ends.
type gate struct {
	armed   atomic.Bool
	entered chan []byte
	release chan error
}

func newGate() *gate { return &gate{entered: make(chan []byte, 1), release: make(chan error)} }

func (g *gate) faults() *Faults {
	return &Faults{BeforeWrite: func(b []byte) (int, error) {
		if !g.armed.CompareAndSwap(true, false) {
			return 0, nil
		}
		g.entered <- append([]byte(nil), b...)
		return 0, <-g.release
	}}
}

// TestAppendLinkedBothWritten: a pair is written in order and both are
// acknowledged.
func TestAppendLinkedBothWritten(t *testing.T) {
	cfg := testConfig(t)
	w := MustOpen(t, cfg)
	ctx := context.Background()
	p1, err := w.AppendLinkedFirst(ctx, []byte(`{"n":"first"}`))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := w.AppendLinked(ctx, []byte(`{"n":"second"}`), p1)
	if err != nil {
		t.Fatal(err)
	}
	a2, err2 := p2.Wait(ctx)
	a1, err1 := p1.Wait(ctx)
	if err1 != nil || err2 != nil || a2.Seq <= a1.Seq {
		t.Fatalf("first %+v %v, second %+v %v", a1, err1, a2, err2)
	}
	if _, err := w.AppendLinked(ctx, []byte(`{"n":3}`), Pending{}); err == nil {
		t.Fatal("AppendLinked without a first entry was accepted")
	}
	w.Close()
	MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
}

// TestAppendLinkedSecondNeverWithoutFirst: when the first entry of a pair
// is not written — its batch failed, or its caller abandoned it before the
// writer took it — the second, queued behind it, is not written either
// (ErrFirstNotWritten) and consumes no seq, while unrelated entries go on.
func TestAppendLinkedSecondNeverWithoutFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, w *Writer, g *gate) (first Pending, firstErr func() error, second Pending)
	}{
		{"first's batch failed", func(t *testing.T, w *Writer, g *gate) (Pending, func() error, Pending) {
			ctx := context.Background()
			g.armed.Store(true)
			p1, err := w.AppendLinkedFirst(ctx, []byte(`{"n":"first"}`))
			if err != nil {
				t.Fatal(err)
			}
			if b := <-g.entered; !strings.Contains(string(b), `"first"`) {
				t.Fatalf("blocked batch %q does not hold the first entry", b)
			}
			p2, err := w.AppendLinked(ctx, []byte(`{"n":"second"}`), p1)
			if err != nil {
				t.Fatal(err)
			}
			g.release <- errors.New("injected write failure")
			return p1, func() error { _, err := p1.Wait(ctx); return err }, p2
		}},
		{"first abandoned", func(t *testing.T, w *Writer, g *gate) (Pending, func() error, Pending) {
			ctx := context.Background()
			g.armed.Store(true)
			other := make(chan error, 1)
			go func() { _, err := w.Append(ctx, []byte(`{"n":"other"}`)); other <- err }()
			<-g.entered // the writer is busy with another batch
			p1, err := w.AppendLinkedFirst(ctx, []byte(`{"n":"first"}`))
			if err != nil {
				t.Fatal(err)
			}
			p2, err := w.AppendLinked(ctx, []byte(`{"n":"second"}`), p1)
			if err != nil {
				t.Fatal(err)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			_, ferr := p1.Wait(cancelled) // not taken yet: never written
			g.release <- nil
			if err := <-other; err != nil {
				t.Fatal(err)
			}
			return p1, func() error { return ferr }, p2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			g := newGate()
			cfg.Faults = g.faults()
			w := MustOpen(t, cfg)
			MustAppend(t, w, `{"n":0}`)
			_, firstErr, p2 := tc.run(t, w, g)
			if err := firstErr(); err == nil {
				t.Fatal("the first entry reports success")
			}
			if _, err := p2.Wait(context.Background()); !errors.Is(err, ErrFirstNotWritten) {
				t.Fatalf("second entry: %v, want ErrFirstNotWritten", err)
			}
			seqBefore, _ := w.Head()
			a := MustAppend(t, w, `{"n":"after"}`)
			if a.Seq != seqBefore+1 {
				t.Fatalf("next entry got seq %d after head %d: the failed pair consumed seqs", a.Seq, seqBefore)
			}
			w.Close()
			raw, err := os.ReadFile(cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), `"second"`) || strings.Contains(string(raw), `"first"`) {
				t.Fatalf("the log holds an entry of the failed pair:\n%s", raw)
			}
			MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
		})
	}
}
