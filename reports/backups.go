package reports

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/reports/query"
)

// drillPathGlob selects the audited requests that run a restore drill:
// on request (sys/storage/raft/snapshot-auto/drill/NAME) and on schedule
// (sys/storage/raft/snapshot-auto/scheduled-drill/NAME, made by the
// scheduled job).
const drillPathGlob = "sys/storage/raft/snapshot-auto/*drill/*"

// drillMatcher matches drillPathGlob (a constant: it always compiles).
var drillMatcher = func() *query.Matcher {
	m, err := query.Filter{Path: drillPathGlob}.Compile()
	if err != nil {
		panic(err)
	}
	return m
}()

// isDrillRun reports whether r is a request that ran a restore drill:
// allowed and answered 200 with the drill's record (passed or failed);
// refused requests and errors do not count. The figure's query says the
// same: operation=update, allowed=true, status=200, path drillPathGlob.
func isDrillRun(r query.Record) bool {
	return r.Operation == string(core.OpUpdate) && r.Allowed && r.Status == 200 && drillMatcher.MatchPath(r.Path)
}

// backupDrills is the contingency-plan evidence for data backup: the
// automated snapshot schedules, and the restore drills that proved their
// stored snapshots restore. The tables come from the drill records kept in
// the barrier; the count of drill runs comes from the audit trail, so a
// reviewer can query every drill request. The section's result is that of
// the compliance checks storage.snapshot-schedule and storage.restore-drill
// at the time the report was generated.
func (g *gen) backupDrills(id, title string, controls ...string) Section {
	s := Section{ID: id, Title: title, Controls: refs(controls...)}
	tz := " (" + g.tzName() + ")"
	schedules := Table{ID: "backup-schedules", Title: "Automated snapshot schedules",
		Columns: []string{"Schedule", "Target", "Interval", "Retain", "Last snapshot" + tz, "Consecutive errors", "Drill interval", "Last drill" + tz},
		Empty:   "No automated snapshot schedule is configured."}
	drills := Table{ID: "restore-drills", Title: "Restore drills in the period",
		Columns: []string{"Time" + tz, "Schedule", "Trigger", "Snapshot", "Snapshot age", "Result", "Values decrypted", "Secrets restored (expected)", "Duration"},
		Empty:   "No restore drill is recorded in the period."}
	var inPeriod, passed int64
	var lastPass time.Time
	for _, b := range g.env.Backups {
		st := b.Status
		last, lastDrill, drillEvery := "never", "never", "on request only"
		if !st.LastSuccess.IsZero() {
			last = g.ts(st.LastSuccess)
		}
		if !st.LastDrill.IsZero() {
			lastDrill = g.ts(st.LastDrill) + map[bool]string{true: " (passed)", false: " (FAILED)"}[st.LastDrillPass]
		}
		if st.DrillSecs > 0 {
			drillEvery = secs(st.DrillSecs)
		}
		schedules.Rows = append(schedules.Rows, []string{st.Name, st.StorageType, secs(st.IntervalSecs), fmt.Sprintf("%d", st.Retain),
			last, fmt.Sprintf("%d", st.ConsecErrors), drillEvery, lastDrill})
		for _, d := range b.Drills { // newest first
			if d.Passed && d.Time.After(lastPass) {
				lastPass = d.Time
			}
			if d.Time.Before(g.p.From) || !d.Time.Before(g.p.To) {
				continue
			}
			inPeriod++
			res := "passed"
			if d.Passed {
				passed++
			} else {
				res = "FAILED: " + d.Error
			}
			drills.Rows = append(drills.Rows, []string{g.ts(d.Time), d.Schedule, d.Trigger, d.Object, secs(d.AgeSecs), res,
				fmt.Sprintf("%d", d.Values), fmt.Sprintf("%d (%d)", d.Restored.Secrets, d.Expected.Secrets),
				(time.Duration(d.TotalMS) * time.Millisecond).String()})
		}
	}
	lp := "never"
	if !lastPass.IsZero() {
		lp = g.ts(lastPass) + tz
	}
	s.Figures = []Figure{
		{Key: "schedules", Label: "Automated snapshot schedules", Count: int64(len(g.env.Backups))},
		{Key: "drills", Label: "Restore drills recorded in the period", Count: inPeriod},
		{Key: "drills_passed", Label: "Restore drills passed in the period", Count: passed},
		{Key: "drill_requests", Label: "Restore drills run in the period, in the audit trail", Count: g.drillRuns,
			Check: g.allCheck("", "path", drillPathGlob, "operation", string(core.OpUpdate), "allowed", "true", "status", "200")},
		{Key: "last_passing_drill", Label: "Last passing restore drill", Text: lp},
	}
	s.Tables = []Table{schedules, drills}

	res := compliance.Run(g.env, compliance.Thresholds{})
	var high, other []string
	for _, f := range res.Findings {
		if f.Check != compliance.CheckBackupSchedule && f.Check != compliance.CheckBackupDrill {
			continue
		}
		msg := f.Object + ": " + f.Message
		if f.Severity == compliance.High || f.Severity == compliance.Critical {
			high = append(high, msg)
		} else {
			other = append(other, msg)
		}
	}
	switch {
	case len(g.env.Backups) == 0:
		s.Result, s.ResultText = ResultFail, "No automated snapshot schedule is configured: no copy of the stored data is taken on a schedule or tested."
	case len(high) > 0:
		s.Result, s.ResultText = ResultFail, strings.Join(append(high, other...), "; ")+"."
	case len(other) > 0:
		s.Result, s.ResultText = ResultAttention, strings.Join(other, "; ")+"."
	default:
		s.Result, s.ResultText = ResultPass, "Every schedule stores snapshots on time, and its latest restore drill, within the window, restored the snapshot and matched the live state."
	}
	s.Notes = append(s.Notes,
		"A restore drill fetches the newest stored snapshot, checks its SHA-256 against the one recorded when it was stored, verifies the archive and its seal, restores it into a scratch store, decrypts every value with the cluster's keys and compares the counts of mounts, secrets, policies, leases and keys with the live state at the snapshot's index.",
		fmt.Sprintf("The drill table lists those of the %d most recent drills of each schedule that fall in the period; every drill request is in the audit trail (path %s, operation update), refused ones included.", compliance.BackupDrillHistory, drillPathGlob))
	return s
}

// drillPassed reports whether the latest restore drill of some schedule
// passed.
func (g *gen) drillPassed() bool {
	for _, b := range g.env.Backups {
		if len(b.Drills) > 0 && b.Drills[0].Passed {
			return true
		}
	}
	return false
}

// secs formats a number of seconds as a duration ("24h0m0s").
func secs(n int64) string { return (time.Duration(n) * time.Second).String() }
