package query_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/reports/query"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

func mustLines(tb testing.TB, n int) [][]byte {
	tb.Helper()
	l := querytest.MustLog(tb, tb.TempDir(), querytest.Traffic(7, n, querytest.Start, querytest.Step), querytest.LogOptions{})
	return querytest.ReadLines(tb, l.Path)
}

// The fast parser and logline.Parse + FromLine give the same record for
// every line of realistic traffic.
func TestParseLineMatchesFromLine(t *testing.T) {
	lines := mustLines(t, 600)
	var p query.Parser
	kinds := map[query.Kind]int{}
	for _, line := range lines {
		r, kind, err := p.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		kinds[kind]++
		l, err := logline.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := query.FromLine(l)
		if !ok {
			if kind != query.KindOther {
				t.Fatalf("kind %v for a chain record: %s", kind, line)
			}
			continue
		}
		if d := querytest.Diff([]query.Record{want}, []query.Record{r}); d != "" {
			t.Fatalf("%s\nline: %s", d, line)
		}
		wantKind := query.KindResponse
		if want.Incomplete {
			wantKind = query.KindRequest
		}
		if kind != wantKind {
			t.Fatalf("kind %v, want %v", kind, wantKind)
		}
	}
	if kinds[query.KindRequest] < 500 || kinds[query.KindResponse] < 500 || kinds[query.KindOther] < 10 {
		t.Fatalf("kinds: %v", kinds)
	}
}

// Record building, field by field, on entries whose meaning is known.
func TestFromLineFields(t *testing.T) {
	reqs := querytest.Traffic(3, 300, querytest.Start, querytest.Step)
	l := querytest.MustLog(t, t.TempDir(), reqs, querytest.LogOptions{})
	lines := querytest.ReadLines(t, l.Path)
	byID := map[string][]query.Record{}
	for _, line := range lines {
		r, kind, err := query.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if kind != query.KindOther {
			byID[r.RequestID] = append(byID[r.RequestID], r)
		}
	}
	seen := map[string]bool{}
	for _, rq := range reqs {
		req := rq.Req.Request
		recs := byID[req.ID]
		want := 2
		if rq.Resp == nil {
			want = 1
		}
		if len(recs) != want {
			t.Fatalf("%s: %d entries, want %d", req.ID, len(recs), want)
		}
		r := recs[len(recs)-1]
		if r.Incomplete != (rq.Resp == nil) || r.Path != req.Path || r.Operation != string(req.Operation) {
			t.Fatalf("%s: %+v", req.ID, r)
		}
		ev := rq.Req
		if rq.Resp != nil {
			ev = rq.Resp
		}
		if !r.Time.Equal(ev.Time) {
			t.Fatalf("time %s, want the entry's %s", r.Time, ev.Time)
		}
		switch {
		case req.Internal:
			seen["internal"] = true
			if !r.Internal || r.DisplayName != "expiration" || r.Accessor != "" || !r.Allowed {
				t.Fatalf("internal: %+v", r)
			}
		case rq.Req.Sealed:
			seen["sealed"] = true
			if r.Incomplete || r.Error == "" || r.Allowed || r.Status != 503 || r.ErrorCode != "sealed" {
				t.Fatalf("sealed: %+v", r)
			}
		case req.Unauthenticated && rq.Resp != nil && rq.Resp.Response != nil && rq.Resp.Response.Auth != nil:
			seen["login"] = true
			a := rq.Resp.Response.Auth
			if r.DisplayName != a.DisplayName || r.EntityID != a.EntityID || r.Accessor != l.Salt.Hash(a.Accessor) || !r.Allowed {
				t.Fatalf("login: %+v", r)
			}
		case req.Unauthenticated:
			seen["failed login"] = true
			if r.Allowed || r.Error == "" || r.DisplayName != "" || r.Status != 403 {
				t.Fatalf("failed login: %+v", r)
			}
		case req.Principal == nil:
			seen["bad token"] = true
			if r.Allowed || r.DisplayName != "" || r.ErrorCode != "permission_denied" {
				t.Fatalf("bad token: %+v", r)
			}
		case !req.Decision.Allowed:
			seen["denied"] = true
			if r.Allowed || len(r.DenyReasons) != 1 || r.Error == "" || r.DisplayName != req.Principal.DisplayName {
				t.Fatalf("denied: %+v", r)
			}
		default:
			p := req.Principal
			if r.DisplayName != p.DisplayName || r.EntityID != p.EntityID || r.Accessor != l.Salt.Hash(p.Accessor) ||
				fmt.Sprint(r.Policies) != fmt.Sprint(p.Policies) || r.RemoteAddr != req.RemoteAddr || r.RemotePort != req.RemotePort ||
				r.MountPoint != req.Mount.Path || r.MountType != req.Mount.Type || len(r.GrantingPolicies) != 1 || r.TokenType != "service" {
				t.Fatalf("allowed: %+v", r)
			}
			if len(req.Decision.Flags) > 0 {
				seen["flags"] = true
				if r.Flags["break_glass"] != "true" {
					t.Fatalf("flags: %+v", r)
				}
			}
			if rq.Resp == nil {
				seen["incomplete"] = true
			} else if !r.Allowed {
				t.Fatalf("allowed record not allowed: %+v", r)
			}
		}
	}
	for _, k := range []string{"internal", "sealed", "login", "failed login", "bad token", "denied", "flags", "incomplete"} {
		if !seen[k] {
			t.Errorf("the traffic had no %s request", k)
		}
	}
}

func TestRequestID(t *testing.T) {
	for _, line := range mustLines(t, 200) {
		r, kind, err := query.ParseLine(line)
		if err != nil || kind == query.KindOther {
			continue
		}
		id, sealed, ok := query.RequestID(line)
		if !ok || id != r.RequestID {
			t.Fatalf("RequestID %q %v, want %q: %s", id, ok, r.RequestID, line)
		}
		l, _ := logline.Parse(line)
		if sealed != l.Vigil().Sealed {
			t.Fatalf("sealed %v: %s", sealed, line)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, line := range mustLines(f, 60) {
		f.Add(line)
	}
	f.Add([]byte(`{"time":"2025-01-01T00:00:00Z","type":"response","request":{"id":"x","path":"a\u0026b"},"seq":1,"node_id":"n","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0000000000000000000000000000000000000000000000000000000000000000"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, kind, err := query.ParseLine(line)
		l, lerr := logline.Parse(line)
		if lerr != nil {
			return // the fast path may accept what encoding/json refuses only when it yields no record
		}
		want, ok := query.FromLine(l)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast parse failed on a line logline accepts: %v", err)
		}
		if kind == query.KindOther {
			t.Fatalf("fast parse says chain record")
		}
		if d := querytest.Diff([]query.Record{want}, []query.Record{r}); d != "" {
			t.Fatal(d)
		}
	})
}

func BenchmarkParseResponse(b *testing.B) {
	lines := mustLines(b, 100)
	var resp [][]byte
	for _, l := range lines {
		if _, k, _ := query.ParseLine(l); k == query.KindResponse {
			resp = append(resp, l)
		}
	}
	b.Run("fast", func(b *testing.B) {
		var p query.Parser
		for i := 0; i < b.N; i++ {
			if _, _, err := p.Parse(resp[i%len(resp)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("logline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			l, err := logline.Parse(resp[i%len(resp)])
			if err != nil {
				b.Fatal(err)
			}
			query.FromLine(l)
		}
	})
	_ = time.Now
}

func BenchmarkParseFields(b *testing.B) {
	lines := mustLines(b, 200)
	var resp [][]byte
	var total int
	for _, l := range lines {
		if _, k, _ := query.ParseLine(l); k == query.KindResponse {
			resp = append(resp, l)
			total += len(l)
		}
	}
	var p query.Parser
	b.SetBytes(int64(total / len(resp)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := p.ParseFields(resp[i%len(resp)]); err != nil {
			b.Fatal(err)
		}
	}
}
