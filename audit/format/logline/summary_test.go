package logline_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit/format/logline"
	"github.com/vigilsec/vigil/reports/query/querytest"
)

// summaryView is everything ParseSummary promises to answer as Parse does.
func summaryView(l *logline.Line) string {
	req, auth, vg := l.Request(), l.Auth(), l.Vigil()
	var ra string
	if l.Entry.Response != nil && l.Entry.Response.Auth != nil {
		a := l.Entry.Response.Auth
		ra = fmt.Sprintf("%q %q %q", a.Accessor, a.DisplayName, a.EntityID)
	}
	var pr string
	if auth.PolicyResults != nil {
		pr = fmt.Sprint(auth.PolicyResults.Allowed)
	}
	return fmt.Sprintf("type=%q time=%q at=%s err=%q req=[%q %q %q %q %q %q] auth=[%q %q %q %q pr=%s] resp-auth=[%s] vigil=[%d %q] actor=[%q %q %q] allowed=%v denied=%v failed=%v login=%v record=%v members=[%d %q %q %q]",
		l.Type, l.Time, l.At.Format(time.RFC3339Nano), l.Error,
		req.ID, req.Operation, req.MountType, req.MountPoint, req.Path, req.RemoteAddr,
		auth.Accessor, auth.DisplayName, auth.EntityID, auth.Policies, pr, ra, vg.Status, vg.ErrorCode,
		l.Actor(), l.EntityName(), l.ActorEntityID(), l.Allowed(), l.Denied(), l.Failed(), l.IsLogin(), l.IsRecord(), l.Seq, l.NodeID, l.PrevHash, l.Hash)
}

// TestParseSummaryAgreesWithParse: on the fixture log and on a realistic
// generated log (logins, denials, errors, tokens, rotations and every
// chain record), ParseSummary answers every promised field as Parse does.
func TestParseSummaryAgreesWithParse(t *testing.T) {
	lines := querytest.ReadLines(t, "testdata/chain.log")
	dir := t.TempDir()
	start := time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC)
	l := querytest.MustLog(t, dir, querytest.Traffic(7, 400, start, time.Second), querytest.LogOptions{})
	l.Checkpoint(t)
	lines = append(lines, querytest.ReadLines(t, l.Path)...)
	if len(lines) < 800 {
		t.Fatalf("only %d lines", len(lines))
	}
	for i, line := range lines {
		full, err1 := logline.Parse(line)
		sum, err2 := logline.ParseSummary(line)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("line %d: Parse %v, ParseSummary %v", i, err1, err2)
		}
		if err1 != nil {
			continue
		}
		if a, b := summaryView(full), summaryView(sum); a != b {
			t.Fatalf("line %d differs:\nParse        %s\nParseSummary %s", i, a, b)
		}
	}
	for _, bad := range []string{"", "{}", `{"time":"x"}`, string(lines[3][:len(lines[3])-10])} {
		if _, err := logline.ParseSummary([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func BenchmarkParseSummary(b *testing.B) {
	line := querytest.ReadLines(b, "testdata/chain.log")[3]
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := logline.ParseSummary(line); err != nil {
			b.Fatal(err)
		}
	}
}
