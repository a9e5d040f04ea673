package querytest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// Start is when the generated traffic of the conformance suite begins.
var Start = time.Date(2025, 3, 14, 9, 0, 0, 123456789, time.UTC)

// Step is the spacing of the suite's generated requests.
const Step = 1500 * time.Millisecond

// NewBackend returns a backend answering for the log l, caught up with
// everything written to it (its last checkpoint included). Hash must be
// wired to l.Salt so raw accessors can be queried.
type NewBackend func(tb testing.TB, l *Log) query.Backend

// Case is one filter of the conformance table.
type Case struct {
	Name   string
	Filter query.Filter
	// Min is the fewest records the case must return (so a case cannot
	// pass by matching nothing).
	Min int
}

// Cases is the filter table the suite (and the cross-backend test) runs.
func Cases() []Case {
	t, f := true, false
	at := func(i int) time.Time { return Start.Add(time.Duration(i) * Step) }
	return []Case{
		{"all", query.Filter{}, 300},
		{"time window", query.Filter{Since: at(100), Until: at(200)}, 80},
		{"since only", query.Filter{Since: at(350)}, 40},
		{"until exact boundary", query.Filter{Until: at(50).Add(time.Nanosecond)}, 40},
		{"path prefix", query.Filter{Path: "secret/data/prod/"}, 50},
		{"path prefix + time", query.Filter{Path: "secret/data/prod/", Since: at(100), Until: at(300)}, 20},
		{"path glob one segment", query.Filter{Path: "secret/data/*/db/password"}, 10},
		{"path glob star does not cross slash", query.Filter{Path: "secret/data/*"}, 0},
		{"path glob double star", query.Filter{Path: "secret/**/key"}, 10},
		{"path glob class", query.Filter{Path: "secret/data/[pd]*/**"}, 40},
		{"path exact", query.Filter{Path: "transit/encrypt/payments"}, 10},
		{"actor display name", query.Filter{Actor: "userpass-alice"}, 30},
		{"actor entity", query.Filter{Actor: "ent-bob"}, 30},
		{"actor raw accessor", query.Filter{Actor: "acc-billing-0003"}, 30},
		{"actor login identity", query.Filter{Actor: "alice"}, 3},
		{"actor internal", query.Filter{Actor: "expiration"}, 5},
		{"actor entity name", query.Filter{Actor: "billing-svc"}, 30},
		{"actor unnamed entity by alias", query.Filter{Actor: "userpass/bob"}, 30},
		{"actor failed login by alias", query.Filter{Actor: "userpass/mallory"}, 3},
		{"actor resolved entity ids", query.Filter{Actor: "carol-the-person", ActorEntityIDs: []string{"ent-carol", "ent-unknown"}}, 30},
		{"operation read", query.Filter{Operation: "read"}, 100},
		{"operation revoke", query.Filter{Operation: "revoke"}, 5},
		{"denied", query.Filter{Allowed: &f}, 30},
		{"allowed", query.Filter{Allowed: &t}, 200},
		{"mount without slash", query.Filter{Mount: "secret"}, 100},
		{"mount auth", query.Filter{Mount: "auth/userpass/"}, 10},
		{"flag", query.Filter{Flag: "break_glass"}, 5},
		{"flag value", query.Filter{Flag: "ticket=INC-101"}, 1},
		{"namespace and its children", query.Filter{Namespace: "hospital-a"}, 40},
		{"child namespace only", query.Filter{Namespace: "/hospital-a/icu/"}, 10},
		{"namespace + path", query.Filter{Namespace: "hospital-b/", Path: "secret/"}, 3},
		{"root namespace is every namespace", query.Filter{Namespace: "root"}, 300},
		{"node", query.Filter{NodeID: "node-1"}, 300},
		{"other node", query.Filter{NodeID: "node-2"}, 0},
		{"denied reads of prod by alice", query.Filter{Actor: "userpass-alice", Path: "secret/data/prod/", Operation: "read", Allowed: &f}, 0},
		{"combined", query.Filter{Path: "secret/", Mount: "secret/", Allowed: &t, Since: at(20), Until: at(380)}, 60},
		{"source address", query.Filter{RemoteAddr: "10.0.1.5"}, 1},
		{"source prefix", query.Filter{RemoteAddr: "10.0.2.0/24"}, 60},
		{"policy root", query.Filter{Policy: "root"}, 10},
		{"status 403", query.Filter{Status: 403}, 10},
		{"error code", query.Filter{ErrorCode: "permission_denied"}, 10},
		{"login ok", query.Filter{Login: "ok"}, 3},
		{"login failed", query.Filter{Login: "failed"}, 3},
		{"auth method userpass", query.Filter{AuthMethod: "userpass"}, 30},
		{"entity", query.Filter{Entity: "ent-alice"}, 30},
		{"privileged", query.Filter{Category: "privileged"}, 1},
		{"privileged policy", query.Filter{Category: "privileged:policy"}, 1},
		{"off hours kathmandu", query.Filter{OffHours: &f, BusinessHours: query.BusinessHours{Start: 14, End: 15, Location: "Asia/Kathmandu"}}, 300},
		{"off hours", query.Filter{OffHours: &t, BusinessHours: query.BusinessHours{Start: 8, End: 9, Location: "UTC"}}, 300},
		{"in hours", query.Filter{OffHours: &f}, 100},
		{"complete only", query.Filter{Incomplete: &f}, 300},
		{"has address", query.Filter{Has: []string{"address"}}, 300},
		{"exact path", query.Filter{Path: "transit/encrypt/payments", ExactPath: true}, 10},
		{"no preflight", query.Filter{Preflight: "exclude"}, 300},
	}
}

// Run is the conformance suite every query.Backend passes: over a log of
// realistic traffic written by the real broker, every filter of Cases
// returns exactly what Reference returns — through Scan, and through
// Query page by page — with the log's last checkpoint; invalid filters are
// refused with query.ErrInvalidFilter.
func Run(t *testing.T, newBackend NewBackend) {
	dir := t.TempDir()
	reqs := Traffic(1, 400, Start, Step)
	l := MustLog(t, dir, reqs, LogOptions{})
	lines := ReadLines(t, l.Path)
	b := newBackend(t, l)
	ctx := context.Background()
	hashes := func(f query.Filter) []string {
		if f.Actor == "" {
			return nil
		}
		return []string{l.Salt.Hash(f.Actor)}
	}
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			want, cp := Reference(t, lines, c.Filter, hashes(c.Filter)...)
			if len(want) < c.Min {
				t.Fatalf("reference returned %d records, the case needs at least %d (the generator changed?)", len(want), c.Min)
			}
			var got []query.Record
			gcp, err := b.Scan(ctx, c.Filter, func(r query.Record) error { got = append(got, r); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if d := Diff(want, got); d != "" {
				t.Fatalf("%s Scan: %s", b.Name(), d)
			}
			MustSameCheckpoint(t, cp, gcp)
			for _, limit := range []int{7, 1000} {
				f := c.Filter
				f.Limit = limit
				got = got[:0]
				pages := 0
				for {
					res, err := b.Query(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if res.Backend != b.Name() {
						t.Fatalf("result backend %q, want %q", res.Backend, b.Name())
					}
					MustSameCheckpoint(t, cp, res.Checkpoint)
					if len(res.Records) > limit {
						t.Fatalf("page of %d records with limit %d", len(res.Records), limit)
					}
					got = append(got, res.Records...)
					if res.Next == "" {
						break
					}
					if len(res.Records) != limit {
						t.Fatalf("short page (%d of %d) with a next cursor", len(res.Records), limit)
					}
					f.After = res.Next
					if pages > len(want)+2 {
						t.Fatal("paging does not end")
					}
				}
				if d := Diff(want, got); d != "" {
					t.Fatalf("%s Query limit %d: %s", b.Name(), limit, d)
				}
			}
		})
	}
	t.Run("invalid filters", func(t *testing.T) {
		for _, f := range []query.Filter{
			{Operation: "frobnicate"}, {Limit: -1}, {Limit: query.MaxLimit + 1}, {Path: "secret/[a"},
			{Since: Start.Add(time.Hour), Until: Start}, {After: "not-a-cursor"},
		} {
			_, err := b.Query(ctx, f)
			if !errors.Is(err, query.ErrInvalidFilter) {
				t.Errorf("%+v: got %v, want ErrInvalidFilter", f, err)
			}
			_, err = b.Scan(ctx, f, func(query.Record) error { return nil })
			if !errors.Is(err, query.ErrInvalidFilter) {
				t.Errorf("Scan %+v: got %v, want ErrInvalidFilter", f, err)
			}
		}
	})
	t.Run("coverage", func(t *testing.T) {
		cr, ok := b.(query.CoverageReporter)
		if !ok {
			t.Fatalf("%s does not state its coverage (query.CoverageReporter)", b.Name())
		}
		all, cp := Reference(t, lines, query.Filter{})
		cov, err := cr.Coverage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first := all[0]
		for _, r := range all {
			if !r.Incomplete {
				first = r
				break
			}
		}
		if len(cov) != 1 || cov[0].NodeID != l.NodeID || cov[0].LastSeq != cp.Seq || cov[0].Records != int64(len(all)) ||
			cov[0].FirstSeq != first.Seq || !cov[0].First.Equal(first.Time) || cov[0].DroppedBefore != 0 || len(cov[0].Gaps) != 0 {
			t.Fatalf("%s coverage %+v; the log: first answered request seq %d at %s, %d records, checkpoint seq %d",
				b.Name(), cov, first.Seq, first.Time, len(all), cp.Seq)
		}
	})
	t.Run("scan stops on callback error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		_, err := b.Scan(ctx, query.Filter{}, func(query.Record) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("got %v after %d records", err, n)
		}
	})
}

// MustSameCheckpoint fails unless got names the checkpoint want.
func MustSameCheckpoint(tb testing.TB, want, got *query.CheckpointRef) {
	tb.Helper()
	if want == nil || got == nil {
		if want != got {
			tb.Fatalf("checkpoint: want %v, got %v", want, got)
		}
		return
	}
	if want.NodeID != got.NodeID || want.Seq != got.Seq || want.Hash != got.Hash || want.Signature != got.Signature ||
		want.KeyID != got.KeyID || !want.Time.Equal(got.Time) {
		tb.Fatalf("checkpoint: want %s, got %s", cpString(want), cpString(got))
	}
}

func cpString(c *query.CheckpointRef) string {
	return fmt.Sprintf("{node %s seq %d hash %.12s time %s key %s sig %.12s}", c.NodeID, c.Seq, c.Hash, c.Time.Format(time.RFC3339Nano), c.KeyID, c.Signature)
}
