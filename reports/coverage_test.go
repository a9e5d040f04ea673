package reports

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// TestCoverageNeverPassesUncoveredPeriod: a report over a period the log
// does not cover says NO DATA, one the log covers in part says PARTIAL —
// never PASS — and both state what is held per node.
func TestCoverageNeverPassesUncoveredPeriod(t *testing.T) {
	gen := func(b *memBackend, from, to time.Time) *Report {
		t.Helper()
		r, err := Generate(context.Background(), Source{Backend: b, Env: synthEnv(t)}, Params{Kind: KindHIPAA, From: from, To: to, GeneratedAt: tGen})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	full := newMemBackend(synthLog())
	began, verified := t0.Add(-24*time.Hour), tGen
	full.first, full.last = &began, &verified
	if r := gen(full, t0, tEnd); r.Coverage.Status != CoverageFull {
		t.Fatalf("covered week: %+v", r.Coverage)
	}

	// A month before the log began: nothing held.
	before := gen(full, t0.AddDate(0, -2, 0), t0.AddDate(0, -1, 0))
	if before.Coverage.Status != CoverageNone || !strings.Contains(before.Coverage.Text, "NO DATA") {
		t.Fatalf("period before the log: %+v", before.Coverage)
	}
	// The log rotated away its first days: the week is covered in part.
	rotated := newMemBackend(synthLog())
	rotated.last, rotated.dropped = &verified, 40
	rotated.recs = rotated.recs[40:]
	part := gen(rotated, t0, tEnd)
	if part.Coverage.Status != CoveragePartial || !strings.Contains(part.Coverage.Text, "rotated away") {
		t.Fatalf("rotated log: %+v", part.Coverage)
	}
	// A period ending after the last verified checkpoint.
	late := gen(full, t0, tGen.Add(48*time.Hour))
	if late.Coverage.Status != CoveragePartial {
		t.Fatalf("period past the checkpoint: %+v", late.Coverage)
	}
	recordBased := map[string]bool{"hipaa-164.312(b)": true, "hipaa-164.308(a)(1)(ii)(D)": true, "hipaa-164.308(a)(5)(ii)(C)": true, "hipaa-164.308(a)(4)(ii)(C)": true}
	for _, c := range []struct {
		r    *Report
		want string
	}{{before, ResultNoData}, {part, ""}, {late, ""}} {
		for _, s := range c.r.Sections {
			if !recordBased[s.ID] {
				continue
			}
			if s.Result == ResultPass {
				t.Errorf("%s over a %s period says PASS", s.ID, c.r.Coverage.Status)
			}
			if c.want != "" && s.Result != c.want && s.Result != ResultFail {
				t.Errorf("%s over a period without data: %s", s.ID, s.Result)
			}
		}
		var buf bytes.Buffer
		if err := RenderHTML(&buf, c.r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "First record held") || !strings.Contains(buf.String(), strings.ToUpper(c.r.Coverage.Status)) {
			t.Errorf("the HTML does not state the coverage")
		}
	}
	// An empty log: no data at all.
	empty := gen(newMemBackend(nil), t0, tEnd)
	if empty.Coverage.Status != CoverageNone {
		t.Fatalf("empty log: %+v", empty.Coverage)
	}
	for _, s := range empty.Sections {
		if recordBased[s.ID] && s.Result == ResultPass {
			t.Errorf("%s on an empty log says PASS", s.ID)
		}
	}
}

// TestTablesBounded: one day of root-token automation touching thousands
// of paths prints the top rows and one aggregate row by prefix; the CSV
// keeps every row.
func TestTablesBounded(t *testing.T) {
	recs := synthLog()
	at := t0.Add(3*24*time.Hour + 2*time.Hour)
	for i := 0; i < 3000; i++ {
		p := fmt.Sprintf("phi/data/batch/%04d", i)
		if i%3 == 0 {
			p = fmt.Sprintf("phi/metadata/batch/%04d", i)
		}
		recs = append(recs, query.Record{NodeID: "node1", Seq: uint64(100000 + i), RequestID: fmt.Sprintf("auto-%d", i), Time: at.Add(time.Duration(i) * time.Second),
			DisplayName: "root", Operation: "read", Path: p, MountPoint: "phi/", MountType: "kv", Allowed: true, Policies: []string{"root"}, RemoteAddr: "10.0.0.7"})
	}
	b := newMemBackend(recs)
	r, err := Generate(context.Background(), Source{Backend: b, Env: synthEnv(t)}, Params{Kind: KindHIPAA, From: t0, To: tEnd, GeneratedAt: tGen})
	if err != nil {
		t.Fatal(err)
	}
	var paths *Table
	for i := range r.Sections {
		for j := range r.Sections[i].Tables {
			if tb := &r.Sections[i].Tables[j]; tb.ID == "accesses-by-path" {
				paths = tb
			}
		}
	}
	if paths == nil || len(paths.Rows) < 3000 || len(paths.Visible()) != DefaultRows || paths.Rest == nil {
		t.Fatalf("paths table not bounded: %d rows, %d shown, rest %+v", len(paths.Rows), len(paths.Visible()), paths.Rest)
	}
	if paths.Rest.Rows != len(paths.Rows)-DefaultRows || len(paths.Rest.By) == 0 || paths.Rest.By[0].Prefix != "phi/data/" {
		t.Fatalf("aggregate row: %+v", paths.Rest)
	}
	var sum int64
	for _, g := range paths.Rest.By {
		sum += g.Count
	}
	if sum != paths.Rest.Count {
		t.Fatalf("aggregate groups sum to %d, the row says %d", sum, paths.Rest.Count)
	}
	var h, c bytes.Buffer
	if err := RenderHTML(&h, r); err != nil {
		t.Fatal(err)
	}
	if err := RenderCSV(&c, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.String(), "batch/<wbr>2999") || !strings.Contains(h.String(), "more rows") {
		t.Error("the HTML prints every row or no aggregate row")
	}
	if !strings.Contains(c.String(), "phi/data/batch/2999") {
		t.Error("the CSV lacks a row")
	}
	pdf := pdfText(t, r)
	if strings.Contains(pdf, "batch/2999") || !strings.Contains(pdf, "more rows") {
		t.Error("the PDF prints every row or no aggregate row")
	}
}

func TestWrapAtSeparators(t *testing.T) {
	width := func(s string) float64 { return float64(len(s)) }
	got := wrapLines("read secret/data/clinical/ward-7/patient-records-2025 now", 20, width)
	for _, l := range got {
		if len(l) > 20 {
			t.Errorf("line %q is wider than 20", l)
		}
	}
	joined := strings.Join(got, "|")
	for _, word := range []string{"clinical", "ward-7", "patient-records-2025"} {
		if !strings.Contains(joined, word) {
			t.Errorf("%q was cut inside: %q", word, joined)
		}
	}
	if h := string(wrapHTML("a/b&c")); h != "a/<wbr>b&amp;<wbr>c" {
		t.Errorf("wrapHTML: %s", h)
	}
}
