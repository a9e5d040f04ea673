package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/compliance"
)

func init() {
	registerGroup("compliance", "Compliance checks (the failure patterns that bite)")
	register(&command{name: "compliance check", synopsis: "Run the compliance checks and list the findings", run: runComplianceCheck})
}

// runComplianceCheck is `vigil compliance check [-format json] [-fail-on SEVERITY]`.
func runComplianceCheck(args []string) int {
	var cf clientFlags
	fs := newFlags("compliance check", &cf)
	failOn := fs.String("fail-on", "", "exit 3 when a finding of this severity or worse exists: critical, high, medium or low")
	thresholds := map[string]*string{}
	for _, k := range []struct{ name, help string }{
		{"max-token-ttl", "report tokens living longer than this (default 24h)"},
		{"orphan-max-age", "report orphan service tokens older than this (default 30d)"},
		{"verify-max-age", "the audit chain must have been verified within this (default 7d)"},
		{"min-disk-free-percent", "report audit folders with less free space (default 20)"},
		{"max-ship-lag", "report audit streams lagging more (default 5m)"},
		{"snapshot-max-age", "the last snapshot must be younger (default 24h)"},
		{"restore-test-max-age", "the last restore test must be younger (default 90d)"},
		{"review-max-age", "the recovery procedure must have been reviewed within this (default 365d)"},
	} {
		thresholds[k.name] = fs.String(k.name, "", k.help)
	}
	setUsage(fs, "compliance check [options]", `
Runs every compliance check on the server (GET sys/compliance/checks) and
prints each finding with its severity, the affected object, the controls
it maps to and a fix. Needs read on sys/compliance/checks.

    $ vigil compliance check
    $ vigil compliance check -format json -fail-on high`)
	_, code, ok := cf.parse(fs, args, 0, 0)
	if !ok {
		return code
	}
	if *failOn != "" && compliance.SeverityRank(*failOn) > 3 {
		return usageError("unknown -fail-on %q (want critical, high, medium or low)", *failOn)
	}
	client, err := cf.client()
	if err != nil {
		return fail("%v", err)
	}
	q := map[string][]string{}
	for name, v := range thresholds {
		if *v != "" {
			q[strings.ReplaceAll(name, "-", "_")] = []string{*v}
		}
	}
	resp, err := client.Logical().ReadRawWithData("sys/compliance/checks", q)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return apiError("running the compliance checks", err)
	}
	var body struct {
		Data compliance.Result `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fail("decoding the result: %v", err)
	}
	res := body.Data
	if cf.format == "json" {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printCompliance(&res)
	}
	if *failOn != "" {
		for _, f := range res.Findings {
			if compliance.SeverityRank(f.Severity) <= compliance.SeverityRank(*failOn) {
				return 3
			}
		}
	}
	return 0
}

func printCompliance(res *compliance.Result) {
	fmt.Fprintf(stdout, "Compliance checks on node %s at %s: %d passed, %d failed, %d unknown\n\n", res.NodeID, res.Time.Format("2006-01-02 15:04:05Z"), res.Passed, res.Failed, res.Unknown)
	var rows [][]string
	for _, c := range res.Checks {
		rows = append(rows, []string{strings.ToUpper(c.Status), c.ID, c.Title})
	}
	writeTable([]string{"Status", "Check", "Title"}, rows)
	if len(res.Findings) == 0 {
		fmt.Fprintln(stdout, "\nNo findings.")
		return
	}
	fmt.Fprintf(stdout, "\nFindings (%d):\n", len(res.Findings))
	for i, f := range res.Findings {
		var ctl []string
		for _, id := range f.Controls {
			if c, ok := compliance.Lookup(id); ok {
				ctl = append(ctl, c.Label())
			}
		}
		fmt.Fprintf(stdout, "\n%d. [%s] %s\n   Object:   %s\n   Problem:  %s\n   Controls: %s\n   Fix:      %s\n",
			i+1, strings.ToUpper(f.Severity), f.Check, f.Object, f.Message, strings.Join(ctl, "; "), f.Fix)
	}
}
