package chain

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// AppendTrusted skips the JSON checks but keeps the framing checks, and
// otherwise writes exactly what Append writes.
func TestAppendTrusted(t *testing.T) {
	cfgA, cfgB := testConfig(t), testConfig(t)
	a, b := MustOpen(t, cfgA), MustOpen(t, cfgB)
	for i := 0; i < 5; i++ {
		body := []byte(vaultBody(i))
		ra, err := a.Append(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.AppendTrusted(context.Background(), body)
		if err != nil {
			t.Fatal(err)
		}
		if ra != rb {
			t.Fatalf("entry %d: Append %+v, AppendTrusted %+v", i, ra, rb)
		}
	}
	for _, bad := range []string{``, `{`, ` {}`, "{\"a\":\"\n\"}", "{\"a\":1}\r", `[1]`, `{"a":1} `} {
		if _, err := b.AppendTrusted(context.Background(), []byte(bad)); !errors.Is(err, ErrInvalidBody) {
			t.Errorf("AppendTrusted(%q): %v, want ErrInvalidBody", bad, err)
		}
	}
	big := []byte(`{"a":"` + strings.Repeat("x", DefaultMaxEntryBytes) + `"}`)
	if _, err := b.AppendTrusted(context.Background(), big); !errors.Is(err, ErrInvalidBody) {
		t.Errorf("oversized body: %v, want ErrInvalidBody", err)
	}
	// What Append refuses on content, AppendTrusted does not look at.
	if _, err := a.Append(context.Background(), []byte(`{"a":tru}`)); !errors.Is(err, ErrInvalidBody) {
		t.Fatalf("Append of invalid JSON: %v", err)
	}
	if err := ValidateBody([]byte(`{"seq":1}`)); !errors.Is(err, ErrInvalidBody) {
		t.Fatalf("ValidateBody accepted a reserved member: %v", err)
	}
	if err := ValidateBody([]byte(vaultBody(1))); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	la, lb := readLines(t, cfgA.Path), readLines(t, cfgB.Path)
	if strings.Join(la, "") != strings.Join(lb, "") {
		t.Fatalf("logs differ:\n%s\n---\n%s", strings.Join(la, ""), strings.Join(lb, ""))
	}
}

// Requests are recycled only once the writer is done with them: under
// timeouts and cancellations from many goroutines, every acknowledged entry
// is in the log under its seq with its own body, and every line of the log
// is one of the bodies submitted, exactly once.
func TestAppendRecyclingUnderTimeouts(t *testing.T) {
	cfg := testConfig(t)
	cfg.WriteTimeout = 5 * time.Millisecond
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	cfg.Faults = &Faults{BeforeSync: func() error {
		mu.Lock()
		d := time.Duration(rng.IntN(4000)) * time.Microsecond
		mu.Unlock()
		time.Sleep(d)
		return nil
	}}
	w := MustOpen(t, cfg)
	type ack struct {
		seq  uint64
		body string
	}
	var (
		acks   []ack
		sent   = map[string]bool{}
		wg     sync.WaitGroup
		ackMu  sync.Mutex
		nTimed int
	)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				body := fmt.Sprintf(`{"g":%d,"i":%d,"pad":"%s"}`, g, i, strings.Repeat("p", (g*7+i)%300))
				ctx, cancel := context.WithCancel(context.Background())
				if i%5 == 4 {
					cancel() // some callers give up at once
				}
				var a Appended
				var err error
				if i%2 == 0 {
					a, err = w.Append(ctx, []byte(body))
				} else {
					a, err = w.AppendTrusted(ctx, []byte(body))
				}
				cancel()
				ackMu.Lock()
				sent[body] = true
				if err == nil {
					acks = append(acks, ack{a.Seq, body})
				} else {
					nTimed++
				}
				ackMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged, %d timed out or cancelled", len(acks), nTimed)
	if len(acks) == 0 || nTimed == 0 {
		t.Fatalf("want both outcomes exercised: %d acknowledged, %d not", len(acks), nTimed)
	}
	bySeq := map[uint64]string{}
	seen := map[string]bool{}
	for _, l := range readLines(t, cfg.Path) {
		line := strings.TrimSuffix(l, "\n")
		f, err := parseChain([]byte(line))
		if err != nil {
			t.Fatalf("unparseable line %q: %v", line, err)
		}
		body := line[:f.BodyEnd] + "}"
		if strings.HasPrefix(body, `{"type":"vigil.`) {
			continue
		}
		if !sent[body] {
			t.Fatalf("line %d holds a body nobody sent: %s", f.Seq, body)
		}
		if seen[body] {
			t.Fatalf("body written twice: %s", body)
		}
		seen[body] = true
		bySeq[f.Seq] = body
	}
	for _, a := range acks {
		if bySeq[a.seq] != a.body {
			t.Fatalf("seq %d: acknowledged %s, log has %s", a.seq, a.body, bySeq[a.seq])
		}
	}
	MustVerifyLog(t, cfg.Path, VerifyOptions{PublicKey: pub(cfg.Signer)})
}
