package query_test

import (
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// Globs without "**" mean exactly what path.Match means.
func TestGlobMatchesPathMatch(t *testing.T) {
	patterns := []string{"secret/*", "secret/data/*/db", "secret/data/?rod/*", "secret/data/[pd]*/x", "secret/data/[^p]*/x",
		"secret/data/[a-c]*", `secret/da\ta/x`, "*", "*/*", "a[b-d]c", "a[\\]]c", "a[!]c", "x?y", "sys/audit/query"}
	paths := []string{"secret/a", "secret/a/b", "secret/data/prod/db", "secret/data/dev/db", "secret/data/prod/api/db", "secret/data/prod/x",
		"secret/data/dev/x", "secret/data/bc", "secret/data/x", "a", "a/b", "abc", "adc", "aec", "a]c", "a!c", "x/y", "xzy", "sys/audit/query", ""}
	for _, p := range patterns {
		re, err := query.GlobRegexp(p)
		_, perr := path.Match(p, "")
		if (err != nil) != (perr != nil) {
			t.Fatalf("%q: GlobRegexp error %v, path.Match error %v", p, err, perr)
		}
		if err != nil {
			continue
		}
		rx := regexp.MustCompile(re)
		for _, s := range paths {
			want, _ := path.Match(p, s)
			if got := rx.MatchString(s); got != want {
				t.Errorf("%q on %q: %v, path.Match %v (regexp %s)", p, s, got, want, re)
			}
		}
	}
}

func FuzzGlobMatchesPathMatch(f *testing.F) {
	f.Add("secret/*/db", "secret/prod/db")
	f.Add("a[b-d]?", "ac/")
	f.Add(`x\*`, "x*")
	f.Fuzz(func(t *testing.T, pat, s string) {
		if strings.Contains(pat, "**") {
			return
		}
		re, err := query.GlobRegexp(pat)
		want, perr := path.Match(pat, s)
		if perr != nil || err != nil {
			if (perr != nil) != (err != nil) && perr != nil {
				t.Skip() // path.Match stops at the first mismatch before seeing a bad class
			}
			return
		}
		if got := regexp.MustCompile(re).MatchString(s); got != want {
			t.Fatalf("%q on %q: %v, path.Match %v (%s)", pat, s, got, want, re)
		}
	})
}

func TestDoubleStar(t *testing.T) {
	m, err := query.Filter{Path: "secret/**/password"}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"secret/data/prod/db/password": true, "secret/x/password": true, "secret/password": false, "secret/data/passwords": false} {
		if m.MatchPath(s) != want {
			t.Errorf("%s: %v", s, !want)
		}
	}
}

func rec(mod func(*query.Record)) *query.Record {
	r := &query.Record{NodeID: "n1", Seq: 10, Time: time.Date(2025, 1, 1, 12, 0, 0, 500, time.UTC), DisplayName: "userpass-alice",
		EntityID: "ent-1", Accessor: "hmac-sha256:abc", Operation: "read", Path: "secret/data/prod/db", MountPoint: "secret/", Allowed: true,
		Flags: map[string]string{"break_glass": "true", "ticket": "INC-1"}}
	if mod != nil {
		mod(r)
	}
	return r
}

func TestFilterSemantics(t *testing.T) {
	at := time.Date(2025, 1, 1, 12, 0, 0, 500, time.UTC)
	f, tr := false, true
	cases := []struct {
		name  string
		f     query.Filter
		match bool
	}{
		{"empty", query.Filter{}, true},
		{"prefix", query.Filter{Path: "secret/data/"}, true},
		{"prefix is not a segment match", query.Filter{Path: "secret/data/pr"}, true},
		{"other prefix", query.Filter{Path: "secret/data/dev/"}, false},
		{"leading slash ignored", query.Filter{Path: "/secret/"}, true},
		{"glob whole path", query.Filter{Path: "secret/data/*"}, false},
		{"since inclusive", query.Filter{Since: at}, true},
		{"since after", query.Filter{Since: at.Add(time.Nanosecond)}, false},
		{"until exclusive", query.Filter{Until: at}, false},
		{"until after", query.Filter{Until: at.Add(time.Nanosecond)}, true},
		{"actor display name", query.Filter{Actor: "userpass-alice"}, true},
		{"actor entity", query.Filter{Actor: "ent-1"}, true},
		{"actor stored accessor", query.Filter{Actor: "hmac-sha256:abc"}, true},
		{"actor is case-sensitive", query.Filter{Actor: "USERPASS-ALICE"}, false},
		{"actor other", query.Filter{Actor: "bob"}, false},
		{"operation", query.Filter{Operation: "READ"}, true},
		{"operation other", query.Filter{Operation: "list"}, false},
		{"allowed", query.Filter{Allowed: &tr}, true},
		{"denied", query.Filter{Allowed: &f}, false},
		{"mount without slash", query.Filter{Mount: "secret"}, true},
		{"mount other", query.Filter{Mount: "kv/"}, false},
		{"node", query.Filter{NodeID: "n1"}, true},
		{"node other", query.Filter{NodeID: "n2"}, false},
		{"flag", query.Filter{Flag: "break_glass"}, true},
		{"flag value", query.Filter{Flag: "ticket=INC-1"}, true},
		{"flag other value", query.Filter{Flag: "ticket=INC-2"}, false},
		{"flag absent", query.Filter{Flag: "emergency"}, false},
	}
	for _, c := range cases {
		m, err := c.f.Compile()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := m.Match(rec(nil)); got != c.match {
			t.Errorf("%s: match %v, want %v", c.name, got, c.match)
		}
	}
	// A raw accessor matches through its hash (computed by the backend).
	m, _ := query.Filter{Actor: "raw-accessor"}.Compile("hmac-sha256:abc")
	if !m.Match(rec(nil)) {
		t.Error("raw accessor did not match its hash")
	}
	// Empty actor fields never match.
	m, _ = query.Filter{Actor: "x"}.Compile("")
	if m.Match(rec(func(r *query.Record) { r.DisplayName, r.EntityID, r.Accessor = "", "", "" })) {
		t.Error("empty actor fields matched")
	}
}

func TestFilterValidation(t *testing.T) {
	for _, f := range []query.Filter{{Operation: "frobnicate"}, {Limit: -1}, {Limit: query.MaxLimit + 1}, {Path: "secret/[a"},
		{Since: time.Unix(10, 0), Until: time.Unix(5, 0)}, {After: "%%%"}} {
		if _, err := f.Compile(); !errors.Is(err, query.ErrInvalidFilter) {
			t.Errorf("%+v: %v", f, err)
		}
	}
	f, err := query.Filter{}.Normalize()
	if err != nil || f.Limit != query.DefaultLimit {
		t.Fatalf("default limit: %+v %v", f, err)
	}
}

func TestOrderAndCursor(t *testing.T) {
	base := time.Unix(100, 5).UTC()
	a := query.Record{Time: base, NodeID: "a", Seq: 9}
	b := query.Record{Time: base, NodeID: "a", Seq: 10}
	c := query.Record{Time: base, NodeID: "b", Seq: 1}
	d := query.Record{Time: base.Add(time.Nanosecond), NodeID: "a", Seq: 1}
	for _, pair := range [][2]*query.Record{{&a, &b}, {&b, &c}, {&c, &d}} {
		if query.Compare(pair[0], pair[1]) >= 0 || query.Compare(pair[1], pair[0]) <= 0 {
			t.Fatalf("order: %+v before %+v", *pair[0], *pair[1])
		}
	}
	cur := query.CursorAfter(&b, map[string]uint64{"a": 42})
	m, err := query.Filter{After: cur}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if m.AfterCursor(&a) || m.AfterCursor(&b) || !m.AfterCursor(&c) || !m.AfterCursor(&d) {
		t.Fatal("cursor bounds")
	}
	if m.After.Horizon["a"] != 42 {
		t.Fatalf("horizon: %v", m.After.Horizon)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"24h": now.Add(-24 * time.Hour), "7d": now.Add(-7 * 24 * time.Hour), "1d12h": now.Add(-36 * time.Hour), "2w": now.Add(-14 * 24 * time.Hour),
		"90m ago": now.Add(-90 * time.Minute), "-15m": now.Add(-15 * time.Minute), "now": now,
		"2024-05-01T00:00:00Z": time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), "2024-05-01T02:00:00+02:00": time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
		"2024-05-01": time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), "1714521600": time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := query.ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "7x", "0d", "d"} {
		if _, err := query.ParseTime(bad, now); !errors.Is(err, query.ErrInvalidFilter) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestCSVAndOCSF(t *testing.T) {
	r := rec(func(r *query.Record) { r.Error = `bad "quote", comma`; r.GrantingPolicies = []string{"a", "b"} })
	row := query.CSVRow(r)
	if len(row) != len(query.CSVHeader()) || row[17] != "a;b" || row[19] != "break_glass=true;ticket=INC-1" {
		t.Fatalf("csv row: %q", row)
	}
	var sb strings.Builder
	if err := query.WriteCSV(&sb, []query.Record{*r}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), `"bad ""quote"", comma"`) || !strings.HasSuffix(sb.String(), "\r\n") {
		t.Fatalf("RFC 4180 quoting: %s", sb.String())
	}
	ev, err := query.OCSF(r, "1.0")
	if err != nil || !strings.Contains(string(ev), `"class_uid":6003`) || !strings.Contains(string(ev), `"uid":"n1:10"`) {
		t.Fatalf("ocsf: %v %s", err, ev)
	}
}
