package custody

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vigilsec/vigil/core/shamir"
	"github.com/vigilsec/vigil/core/storage"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustShares(tb testing.TB, n, k int) [][]byte {
	tb.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	shares, err := shamir.Split(secret, n, k)
	if err != nil {
		tb.Fatal(err)
	}
	return shares
}

func TestVerify(t *testing.T) {
	shares := mustShares(t, 5, 3)
	set := NewShareSet(KindUnseal, shares, 3, []string{"alice", "bob", "carol", "dave", "erin"}, true, t0)
	for i, sh := range shares {
		c, err := set.Verify(sh)
		if err != nil || c.Number != i+1 || c.Holder != set.Holders()[i] {
			t.Fatalf("share %d: %+v, %v", i+1, c, err)
		}
	}
	// One byte changed anywhere (y bytes or the x coordinate) fails.
	for _, pos := range []int{0, 17, 31, 32} {
		bad := append([]byte(nil), shares[1]...)
		bad[pos] ^= 0x01
		if c, err := set.Verify(bad); !errors.Is(err, ErrNoMatch) {
			t.Fatalf("byte %d changed: %+v, %v", pos, c, err)
		}
	}
	// A share of another key (another server), even with the same x.
	other := mustShares(t, 5, 3)
	for _, sh := range other {
		if _, err := set.Verify(sh); !errors.Is(err, ErrNoMatch) {
			t.Fatalf("another key's share verified: %v", err)
		}
	}
	// An unsplit key (one share).
	one := [][]byte{shares[0][:32]}
	s1 := NewShareSet(KindRecovery, one, 1, nil, false, t0)
	if c, err := s1.Verify(one[0]); err != nil || c.Number != 1 || c.X != 0 {
		t.Fatalf("single share: %+v %v", c, err)
	}
	if _, err := (*ShareSet)(nil).Verify(one[0]); !errors.Is(err, ErrNoShareSet) {
		t.Fatalf("nil set: %v", err)
	}
}

// TestCommitmentsRevealNoShare: the stored set holds no share bytes, and
// two sets over the same shares share no salt or digest.
func TestCommitmentsRevealNoShare(t *testing.T) {
	shares := mustShares(t, 3, 2)
	a := NewShareSet(KindUnseal, shares, 2, nil, true, t0)
	b := NewShareSet(KindUnseal, shares, 2, nil, true, t0)
	raw, _ := json.Marshal(a)
	for _, sh := range shares {
		if bytes.Contains(raw, sh[:16]) {
			t.Fatal("a commitment contains share bytes")
		}
	}
	for i := range a.Commitments {
		if bytes.Equal(a.Commitments[i].Salt, b.Commitments[i].Salt) || bytes.Equal(a.Commitments[i].Digest, b.Commitments[i].Digest) {
			t.Fatal("two share sets over the same shares have equal salts or digests")
		}
	}
}

func TestDrills(t *testing.T) {
	ctx := context.Background()
	now := t0
	ds := Drills{St: storage.NewMemory(), Now: func() time.Time { return now }}
	shares := mustShares(t, 3, 2)
	set := NewShareSet(KindUnseal, shares, 2, []string{"a", "b", "c"}, true, t0)
	if _, _, err := ds.Submit(ctx, set, shares[0], ""); !errors.Is(err, ErrNoDrill) {
		t.Fatalf("submit without a drill: %v", err)
	}
	d, err := ds.Start(ctx, set, "root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Start(ctx, set, "root", 0); !errors.Is(err, ErrDrillOpen) {
		t.Fatalf("second start: %v", err)
	}
	for _, sh := range [][]byte{shares[2], shares[2]} {
		if _, p, err := ds.Submit(ctx, set, sh, "127.0.0.1"); err != nil || p.Number != 3 || p.Holder != "c" {
			t.Fatalf("submit: %+v %v", p, err)
		}
	}
	if _, _, err := ds.Submit(ctx, set, mustShares(t, 3, 2)[0], "10.0.0.9"); !errors.Is(err, ErrNoMatch) {
		t.Fatalf("foreign share: %v", err)
	}
	now = now.Add(2 * time.Hour) // the drill expired
	if _, _, err := ds.Submit(ctx, set, shares[0], ""); !errors.Is(err, ErrNoDrill) {
		t.Fatalf("submit after expiry: %v", err)
	}
	if _, err := ds.Start(ctx, set, "root", 0); err != nil {
		t.Fatalf("start after expiry: %v", err)
	}
	ds.Submit(ctx, set, shares[0], "")
	if _, err := ds.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	ev, err := ds.Gather(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Drills) != 2 || ev.Drills[1].ID != d.ID || len(ev.Drills[1].Proofs) != 1 || len(ev.Drills[1].Failures) != 1 {
		t.Fatalf("history: %+v", ev.Drills)
	}
	if len(ev.Latest) != 2 || ev.Latest[0].Number != 1 || ev.Latest[1].Number != 3 {
		t.Fatalf("latest: %+v", ev.Latest)
	}
	if got := len(ev.ProvenWithin(90 * time.Minute)); got != 1 {
		t.Fatalf("proven within 90 minutes: %d", got)
	}
	// Another share set (after a rekey) has proven nothing.
	ev2, _ := ds.Gather(ctx, NewShareSet(KindUnseal, mustShares(t, 3, 2), 2, nil, true, t0))
	if len(ev2.Latest) != 0 || len(ev2.Drills) != 2 {
		t.Fatalf("after rekey: %+v", ev2)
	}
}

func FuzzVerify(f *testing.F) {
	shares := mustShares(f, 3, 2)
	set := NewShareSet(KindUnseal, shares, 2, nil, true, t0)
	f.Add(shares[0])
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := set.Verify(b)
		for i, sh := range shares {
			if bytes.Equal(sh, b) {
				if err != nil || c.Number != i+1 {
					t.Fatalf("a real share failed: %v", err)
				}
				return
			}
		}
		if err == nil {
			t.Fatalf("%x verified as share %d", b, c.Number)
		}
	})
}
