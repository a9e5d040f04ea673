package compliance

import (
	"context"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/autosnapshot"
	"github.com/vigilsec/vigil/core/storage"
)

// BackupSchedule is one automated snapshot schedule as the checks and the
// reports see it: its status and its most recent restore drills.
type BackupSchedule struct {
	Status core.SnapshotAutoStatus `json:"status"`
	// Drills are the most recent drills, newest first (at most
	// BackupDrillHistory).
	Drills []core.SnapshotDrillRecord `json:"drills"`
}

// BackupDrillHistory is how many drills per schedule the evidence carries.
const BackupDrillHistory = 20

// gatherBackups reads every schedule's status and recent drills.
func gatherBackups(ctx context.Context, st storage.Storage) ([]BackupSchedule, error) {
	stats, err := autosnapshot.Schedules(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("compliance: snapshot schedules: %w", err)
	}
	var out []BackupSchedule
	for _, s := range stats {
		drills, err := autosnapshot.DrillHistory(ctx, st, s.Name, BackupDrillHistory)
		if err != nil {
			return nil, fmt.Errorf("compliance: drills of %s: %w", s.Name, err)
		}
		out = append(out, BackupSchedule{Status: s, Drills: drills})
	}
	return out, nil
}

// checkBackupSchedule fails when no automated snapshot schedule exists, or
// a schedule's newest stored snapshot is older than twice its interval.
func checkBackupSchedule(env *Env, _ Thresholds) ([]Finding, string) {
	if len(env.Backups) == 0 {
		return []Finding{{Severity: Medium, Object: "raft storage", Message: "no automated snapshot schedule is configured",
			Fix: "Configure one: vigil write sys/storage/raft/snapshot-auto/config/daily interval=24h retain=7 storage_type=aws-s3 aws_s3_bucket=... aws_s3_region=..."}}, ""
	}
	var out []Finding
	for _, b := range env.Backups {
		s := b.Status
		interval := time.Duration(s.IntervalSecs) * time.Second
		obj := "snapshot schedule " + s.Name
		fix := "Check sys/storage/raft/snapshot-auto/status/" + s.Name + " (last_snapshot_error) and the target's reachability and credentials."
		switch last := s.LastSuccess; {
		case last.IsZero() && env.Now.Sub(s.Configured) > 2*interval:
			out = append(out, Finding{Severity: High, Object: obj,
				Message: fmt.Sprintf("no snapshot stored since the schedule was configured %s ago (interval %s)", env.Now.Sub(s.Configured).Round(time.Minute), interval), Fix: fix})
		case !last.IsZero() && env.Now.Sub(last) > 2*interval:
			out = append(out, Finding{Severity: High, Object: obj,
				Message: fmt.Sprintf("the newest snapshot is %s old, over twice the interval (%s)", env.Now.Sub(last).Round(time.Minute), interval), Fix: fix})
		}
	}
	return out, ""
}

// checkBackupDrill fails for a schedule whose latest restore drill failed,
// or that has no passing drill within th.DrillMaxAge.
func checkBackupDrill(env *Env, th Thresholds) ([]Finding, string) {
	fix := "Run a drill: vigil write -f sys/storage/raft/snapshot-auto/drill/NAME (or set drill_interval on the schedule)."
	if len(env.Backups) == 0 {
		return nil, "no automated snapshot schedule to drill (see " + CheckBackupSchedule + ")"
	}
	var out []Finding
	for _, b := range env.Backups {
		obj := "snapshot schedule " + b.Status.Name
		if len(b.Drills) > 0 && !b.Drills[0].Passed {
			d := b.Drills[0]
			out = append(out, Finding{Severity: High, Object: obj,
				Message: fmt.Sprintf("the latest restore drill (%s, %s) failed: %s", d.Time.UTC().Format(time.RFC3339), d.Object, d.Error),
				Fix:     "The stored backup does not restore: investigate, take a new snapshot and drill again."})
			continue
		}
		var lastPass time.Time
		for _, d := range b.Drills {
			if d.Passed {
				lastPass = d.Time
				break
			}
		}
		switch {
		case lastPass.IsZero():
			out = append(out, Finding{Severity: Medium, Object: obj, Message: "no passing restore drill is recorded", Fix: fix})
		case env.Now.Sub(lastPass) > th.DrillMaxAge.D():
			out = append(out, Finding{Severity: Medium, Object: obj,
				Message: fmt.Sprintf("the last passing restore drill was %s ago (threshold %s)", env.Now.Sub(lastPass).Round(time.Hour), th.DrillMaxAge.D()), Fix: fix})
		}
	}
	return out, ""
}
