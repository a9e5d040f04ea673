package reports

import (
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/compliance"
)

// drillSubmitPath is where a key holder proves a share during a drill.
const drillSubmitPath = "sys/key-drill/submit"

// keyCustody is the contingency-plan evidence for unseal/recovery key
// custody: every key-custody drill, and when each share of the current key
// was last proven (without the key ever being reconstructed).
func (g *gen) keyCustody(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...)}
	e := g.env.KeyCustody
	th := compliance.Thresholds{}.WithDefaults()
	window := th.KeyDrillMaxAge.D()
	drills := Table{ID: "key-drills", Title: "Key-custody drills", Columns: []string{"Drill", "Started (" + g.tzName() + ")", "Started by", "Shares proven", "Threshold", "Failed submissions", "Closed (" + g.tzName() + ")"},
		Empty: "No key-custody drill has been run."}
	latest := Table{ID: "key-shares", Title: "Latest proof of each share of the current key", Columns: []string{"Share", "Holder", "Last proven (" + g.tzName() + ")", "Within window"},
		Empty: "No share of the current key has been proven."}
	if e == nil || g.env.Seal == nil {
		s.Result, s.ResultText = ResultManual, "Key-custody evidence was not available (the server is not initialised, or it is sealed)."
		s.Tables = []Table{drills, latest}
		return s
	}
	for _, d := range e.Drills {
		var who []string
		for _, p := range d.Proofs {
			w := fmt.Sprintf("%d", p.Number)
			if p.Holder != "" {
				w += " (" + p.Holder + ")"
			}
			who = append(who, w)
		}
		closed := "open"
		if !d.FinishedAt.IsZero() {
			closed = g.ts(d.FinishedAt)
		} else if !d.Open(e.Now) {
			closed = "expired " + g.ts(d.ExpiresAt)
		}
		drills.Rows = append(drills.Rows, []string{d.ID, g.ts(d.StartedAt), d.StartedBy, strings.Join(who, ", "),
			fmt.Sprintf("%d of %d", d.Threshold, d.Shares), fmt.Sprintf("%d", len(d.Failures)), closed})
	}
	recent := map[int]bool{}
	for _, p := range e.ProvenWithin(window) {
		recent[p.Number] = true
	}
	for _, p := range e.Latest {
		latest.Rows = append(latest.Rows, []string{fmt.Sprintf("%d", p.Number), p.Holder, g.ts(p.At), yesNo(recent[p.Number])})
	}
	proven := len(e.ProvenWithin(window))
	s.Figures = []Figure{
		{Key: "shares", Label: "Shares of the current key (threshold)", Text: fmt.Sprintf("%d (%d)", e.Shares, e.Threshold)},
		{Key: "proven_recently", Label: fmt.Sprintf("Shares proven in the last %d days", int(window.Hours()/24)), Count: int64(proven)},
		{Key: "drills", Label: "Key-custody drills recorded", Count: int64(len(e.Drills))},
		{Key: "drill_submissions", Label: "Share submissions to key-custody drills in the period (audit trail)", Count: g.drillSubs,
			Check: g.allCheck("", "path", drillSubmitPath, "exact_path", "true")},
	}
	s.Tables = []Table{drills, latest}
	switch {
	case e.ShareSet == "":
		s.Result, s.ResultText = ResultFail, "No share commitments exist for the current key, so no share can be proven: rekey with -key-holders, then run a drill."
	case proven < e.Threshold:
		s.Result, s.ResultText = ResultFail, fmt.Sprintf("Only %d of the %d shares needed to recover the server were proven in the last %d days: run a key drill.", proven, e.Threshold, int(window.Hours()/24))
	default:
		s.Result, s.ResultText = ResultPass, "A threshold of the key shares was proven in a key-custody drill within the window: the server can be recovered by the people on record."
	}
	s.Notes = append(s.Notes, "Each share is checked against a public commitment recorded at init or rekey, one at a time; the key is never reconstructed and no share value is logged. The drill submissions are in the audit trail (path "+drillSubmitPath+", response share_number and share_holder).")
	if g.p.Kind == KindNRB {
		s.Notes = append(s.Notes, fmt.Sprintf("The %d-day window is Vigil's default for the seal.key-drill check; no NRB text found sets a key-custody drill interval [U]: the bank's BCP/DR plan sets it.", int(window.Hours()/24)))
	}
	return s
}
