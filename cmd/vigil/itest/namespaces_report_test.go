package itest

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestNamespaceReportAccessReview: the access review of a report lists the
// holders of the report's namespace only. Every namespace here has a
// "clinician" policy reading its own secret/ and an entity holding it; a
// policy name is a different policy in each namespace, so hospital-a's
// report lists hospital-a's person alone (its policy's secret/* is
// hospital-a/secret/*), and the root's report for the root's secret/
// lists the root's person alone.
func TestNamespaceReportAccessReview(t *testing.T) {
	qs, _ := nsServer(t)
	s := qs.Server
	tenant(t, s, "", "hospital-a")
	tenant(t, s, "", "hospital-b")
	for _, ns := range []string{"hospital-a", "hospital-b", ""} {
		c := in(s, s.RootToken, ns)
		if err := c.Sys().PutPolicy("clinician", `path "secret/*" { capabilities = ["read"] }`); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, c, "identity/entity", map[string]any{"name": "person-of-" + ns, "policies": []string{"clinician"}})
	}
	qs.checkpointNow(t)
	report := func(ns string) string {
		t.Helper()
		rc := in(s, s.RootToken, ns)
		rr := rc.NewRequest("GET", "/v1/sys/reports/hipaa")
		rr.Params.Set("format", "json")
		rr.Params.Set("scope", "secret/")
		rr.Params.Set("from", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
		//lint:ignore SA1019 RawRequest gives the report file itself.
		resp, err := rc.RawRequest(rr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct{ ns, want string }{
		{"hospital-a", "person-of-hospital-a"},
		{"", "person-of-\""},
	} {
		rep := report(tc.ns)
		for _, name := range []string{"person-of-hospital-a", "person-of-hospital-b", "person-of-\""} {
			if got := strings.Contains(rep, name); got != (name == tc.want) {
				t.Errorf("report in %q: lists %s: %v", tc.ns, name, got)
			}
		}
	}
}
