package logline

import "slices"

// Severity levels shared by the SIEM formats (OCSF severity_id; CEF maps
// them to 3, 5, 6 and 8).
const (
	SeverityInfo   = 1 // successful or pending operations, chain records
	SeverityLow    = 2 // failed requests
	SeverityMedium = 3 // denials; requests made with a root token
	SeverityHigh   = 4 // break-glass; denials on regulated (PHI) mounts
)

// SeverityNames are OCSF's names for the levels.
var severityNames = map[int]string{SeverityInfo: "Informational", SeverityLow: "Low", SeverityMedium: "Medium", SeverityHigh: "High"}

// SeverityName is OCSF's name of a level.
func SeverityName(level int) string { return severityNames[level] }

// Severity rates an entry for a SIEM: High for a break-glass request or a
// denial on a regulated mount (regulated reports whether a mount point is
// tagged phi=true or regulated=true; nil: none is), Medium for other
// denials and for requests made with a root token, Low for other
// failures, Info otherwise. reason names the rule that applied ("" for
// Info).
func (l *Line) Severity(regulated func(mount string) bool) (level int, reason string) {
	if l.IsRecord() {
		return SeverityInfo, ""
	}
	req, auth, vg := l.Request(), l.Auth(), l.Vigil()
	denied := l.Denied()
	switch {
	case vg.Flags["break_glass"] != "":
		return SeverityHigh, "break_glass"
	case denied && regulated != nil && req.MountPoint != "" && regulated(req.MountPoint):
		return SeverityHigh, "denied_regulated"
	case denied:
		return SeverityMedium, "denied"
	case slices.Contains(auth.Policies, "root"):
		return SeverityMedium, "root_token"
	case l.Failed():
		return SeverityLow, "failed"
	}
	return SeverityInfo, ""
}
