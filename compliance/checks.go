package compliance

import (
	"sort"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/token"
)

// Severities, most severe first.
const (
	Critical = "critical"
	High     = "high"
	Medium   = "medium"
	Low      = "low"
)

// SeverityRank orders severities (critical = 0).
func SeverityRank(s string) int {
	switch s {
	case Critical:
		return 0
	case High:
		return 1
	case Medium:
		return 2
	case Low:
		return 3
	}
	return 4
}

// Finding is one failure of a check.
type Finding struct {
	Check    string `json:"check"`
	Severity string `json:"severity"`
	// Object is the affected object, e.g. `policy "ops" path "secret/*"`.
	Object   string   `json:"object"`
	Message  string   `json:"message"`
	Controls []string `json:"controls"`
	Fix      string   `json:"fix"`
}

// Check outcome states.
const (
	StatusPass = "pass"
	StatusFail = "fail"
	// StatusUnknown: the evidence could not be gathered (e.g. streams not
	// wired); not a pass.
	StatusUnknown = "unknown"
)

// CheckResult is one check's outcome.
type CheckResult struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Status   string    `json:"status"`
	Controls []string  `json:"controls"`
	Findings []Finding `json:"findings,omitempty"`
	Note     string    `json:"note,omitempty"`
}

// Result is a full compliance check run.
type Result struct {
	Time     time.Time      `json:"time"`
	NodeID   string         `json:"node_id,omitempty"`
	Passed   int            `json:"passed"`
	Failed   int            `json:"failed"`
	Unknown  int            `json:"unknown"`
	Severity map[string]int `json:"findings_by_severity"`
	Checks   []CheckResult  `json:"checks"`
	// Findings are all findings, most severe first.
	Findings   []Finding  `json:"findings"`
	Thresholds Thresholds `json:"thresholds"`
	// Namespace is the path of the namespace the checks were scoped to
	// (absent for the whole server).
	Namespace string `json:"namespace,omitempty"`
}

// Thresholds tune the checks. Zero values take the defaults.
type Thresholds struct {
	// MaxTokenTTL: a token whose lifetime (creation to its latest possible
	// expiry) exceeds it is reported (default 24h, Vigil's token_max_ttl).
	MaxTokenTTL Duration `json:"max_token_ttl"`
	// OrphanMaxAge: orphan service tokens older than this are reported
	// (default 30 days).
	OrphanMaxAge Duration `json:"orphan_max_age"`
	// VerifyMaxAge: the audit chain must have been verified within this
	// (default 7 days).
	VerifyMaxAge Duration `json:"verify_max_age"`
	// MinDiskFreePercent: audit folders with less free space are reported
	// (default 20).
	MinDiskFreePercent float64 `json:"min_disk_free_percent"`
	// MaxShipLag: streams lagging more than this are reported (default 5m).
	MaxShipLag Duration `json:"max_ship_lag"`
	// SnapshotMaxAge: the last snapshot must be younger (default 24h).
	SnapshotMaxAge Duration `json:"snapshot_max_age"`
	// RestoreTestMaxAge: the last restore test must be younger (default 90 days).
	RestoreTestMaxAge Duration `json:"restore_test_max_age"`
	// DrillMaxAge: each automated snapshot schedule must have passed a
	// restore drill within this (default 7 days).
	DrillMaxAge Duration `json:"drill_max_age"`
	// ReviewMaxAge: the recovery procedure must have been reviewed within
	// this (default 365 days: NRB IT policy "reviewed at least annually" [T]).
	ReviewMaxAge Duration `json:"review_max_age"`
	// KeyDrillMaxAge: at least the threshold of unseal/recovery shares must
	// have been proven in a key drill within this (default 90 days).
	KeyDrillMaxAge Duration `json:"key_drill_max_age"`
}

// Duration marshals as a Go duration string ("24h0m0s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

const day = 24 * time.Hour

// WithDefaults fills zero fields.
func (t Thresholds) WithDefaults() Thresholds {
	def := func(d *Duration, v time.Duration) {
		if *d <= 0 {
			*d = Duration(v)
		}
	}
	def(&t.MaxTokenTTL, 24*time.Hour)
	def(&t.OrphanMaxAge, 30*day)
	def(&t.VerifyMaxAge, 7*day)
	def(&t.MaxShipLag, 5*time.Minute)
	def(&t.SnapshotMaxAge, 24*time.Hour)
	def(&t.RestoreTestMaxAge, 90*day)
	def(&t.ReviewMaxAge, 365*day)
	def(&t.DrillMaxAge, 7*day)
	def(&t.KeyDrillMaxAge, 90*day)
	if t.MinDiskFreePercent <= 0 {
		t.MinDiskFreePercent = 20
	}
	return t
}

// AuditDevice is an audit device as the checks see it.
type AuditDevice struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Path   string `json:"path,omitempty"`
	Failed bool   `json:"failed"`
	Error  string `json:"error,omitempty"`
	// RetainDays and MaxBackups are the device's retention settings (0: keep).
	RetainDays int `json:"retain_days"`
	MaxBackups int `json:"max_backups"`
	// Durable: a file device with fsync = "always" (it acknowledges
	// entries); Fsync is a file device's fsync mode.
	Durable bool   `json:"durable"`
	Fsync   string `json:"fsync,omitempty"`
}

// RecoveryProcedure is the documented unseal-key recovery procedure
// (sys/compliance/recovery-procedure).
type RecoveryProcedure struct {
	DocumentURL  string    `json:"document_url"`
	Owner        string    `json:"owner"`
	LastReviewed time.Time `json:"last_reviewed"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Env is everything the checks look at, gathered from a running server
// (Gather) or built by hand in tests. Nil or empty fields mean "none";
// the *Known flags distinguish "none" from "not available".
type Env struct {
	Now      time.Time
	NodeID   string
	Policies []*authz.Policy
	Tokens   []*token.Entry
	// Entities are the identity store's entities, with the policies
	// their entity and groups give them.
	Entities []core.EntitySummary
	// AuditRequired is true when requests fail closed without a device.
	AuditRequired bool
	// RequireAudit is audit_settings { require_audit }: requests are
	// refused while no durable device is enabled.
	RequireAudit bool
	Devices      []AuditDevice
	// Streams is nil when the stream subsystem is not wired (StreamsKnown false).
	Streams      []ship.Status
	StreamsKnown bool
	Disk         []diskwatch.State
	Verification *audit.Verification
	Mounts       []core.MountInfo
	LastSnapshot *core.SnapshotSaveRecord
	LastRestore  *core.SnapshotTestRecord
	// Backups are the automated snapshot schedules with their recent
	// restore drills (nil: none configured).
	Backups  []BackupSchedule
	Seal     *core.SealShares
	Recovery *RecoveryProcedure
	// Namespace is the namespace the checks are scoped to (the zero value
	// and the root namespace: the whole server). See GatherIn.
	Namespace core.Namespace
	// KeyCustody is the key-drill evidence for the current key (nil: not
	// gathered).
	KeyCustody *custody.Evidence
}

// check is one named check.
type check struct {
	id, title string
	controls  []string
	run       func(env *Env, th Thresholds) ([]Finding, string)
}

// Check IDs.
const (
	CheckPolicyWildcard = "policy.broad-wildcard"
	CheckPolicySudo     = "policy.sudo-outside-sys"
	CheckTokenNoExpiry  = "token.no-expiry"
	CheckTokenLongTTL   = "token.ttl-above-threshold"
	CheckTokenRoot      = "token.root-valid"
	CheckTokenOrphan    = "token.orphan-service-old"
	CheckAuditRedundant = "audit.fewer-than-two-sinks"
	CheckAuditDisk      = "audit.disk-headroom"
	CheckAuditShipLag   = "audit.shipper-lag"
	CheckAuditVerify    = "audit.chain-verification"
	CheckAuditRequire   = "audit.require-audit-off"
	CheckAuditDurable   = "audit.non-durable-device"
	CheckKVv1           = "mount.kv-v1"
	CheckSnapshot       = "storage.snapshot-recent"
	CheckRestoreTest    = "storage.restore-test"
	CheckBackupSchedule = "storage.snapshot-schedule"
	CheckBackupDrill    = "storage.restore-drill"
	CheckKeyHolders     = "seal.key-holders"
	CheckRecoveryDoc    = "seal.recovery-procedure"
	CheckKeyDrill       = "seal.key-drill"
)

var checks = []check{
	{CheckPolicyWildcard, "Policies granting broad wildcards", []string{H308a4iiB, H308a4iiC, NITGAudit}, checkPolicyWildcard},
	{CheckPolicySudo, "sudo granted outside sys/ paths", []string{H308a4iiB, H308a4iiC}, checkPolicySudo},
	{CheckTokenNoExpiry, "Tokens that never expire", []string{H308a3iiC, H308a4iiC, H312d}, checkTokenNoExpiry},
	{CheckTokenLongTTL, "Tokens with a lifetime above the threshold", []string{H308a4iiC, H312d}, checkTokenLongTTL},
	{CheckTokenRoot, "Root tokens still valid", []string{H308a4iiB, H312a2i, H312b}, checkTokenRoot},
	{CheckTokenOrphan, "Old orphan service tokens", []string{H308a3iiC, H308a4iiC}, checkTokenOrphan},
	{CheckAuditRedundant, "Fewer than two audit devices or streams", []string{H312b, NCRGBackup, NCRGCentr}, checkAuditRedundant},
	{CheckAuditDisk, "Audit disk headroom", []string{H312b, NCRGProt}, checkAuditDisk},
	{CheckAuditShipLag, "Audit stream lag", []string{H312b, NCRGBackup, NCRGCentr}, checkAuditShipLag},
	{CheckAuditVerify, "Audit chain verification run recently and passing", []string{H312c1, H312c2, H308a1iiD, NCRGProt}, checkAuditVerify},
	{CheckAuditRequire, "Requests served without a durable audit device (require_audit off)", []string{H312b, NCRGProt}, checkAuditRequire},
	{CheckAuditDurable, "Audit devices that do not fsync every entry", []string{H312b, H312c1, NCRGProt}, checkAuditDurable},
	{CheckKVv1, "KV version 1 mounts (no version history)", []string{H312c1}, checkKVv1},
	{CheckSnapshot, "Snapshot taken in the last 24 h", []string{H312c1, NITGBCP, NCRGBackup}, checkSnapshot},
	{CheckRestoreTest, "Snapshot restore test recorded and passing", []string{H312c1, NITGBCP}, checkRestoreTest},
	{CheckBackupSchedule, "Automated snapshots configured and on schedule", []string{H308a7iiA, NITGBCP}, checkBackupSchedule},
	{CheckBackupDrill, "Restore drill of the stored snapshots passed recently", []string{H308a7iiD, H308a7iiA, NITGBCP}, checkBackupDrill},
	{CheckKeyHolders, "Unseal key holders vs threshold", []string{H312a2ii, NITGBCP}, checkKeyHolders},
	{CheckRecoveryDoc, "Unseal/recovery procedure documented and reviewed", []string{H312a2ii, H316b1, H316b2iii, NITGPolicy}, checkRecoveryDoc},
	{CheckKeyDrill, "Threshold of key shares proven in a key-custody drill recently", []string{H308a7i, H308a7iiD, H312a2ii, NITGBCP}, checkKeyDrill},
}

// CheckInfo describes a check.
type CheckInfo struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Controls []string `json:"controls"`
}

// Checks lists the checks in run order.
func Checks() []CheckInfo {
	out := make([]CheckInfo, len(checks))
	for i, c := range checks {
		out[i] = CheckInfo{ID: c.id, Title: c.title, Controls: c.controls}
	}
	return out
}

// Run runs every check against env. It is pure: the same env and
// thresholds give the same result.
func Run(env *Env, th Thresholds) *Result {
	th = th.WithDefaults()
	res := &Result{Time: env.Now.UTC(), NodeID: env.NodeID, Severity: map[string]int{}, Thresholds: th, Findings: []Finding{},
		Namespace: env.Namespace.Path}
	for _, c := range checks {
		if env.Namespace.Path != "" && serverWide[c.id] {
			continue
		}
		fs, unknown := c.run(env, th)
		cr := CheckResult{ID: c.id, Title: c.title, Controls: c.controls, Status: StatusPass, Findings: fs}
		switch {
		case len(fs) > 0:
			cr.Status = StatusFail
			res.Failed++
		case unknown != "":
			cr.Status, cr.Note = StatusUnknown, unknown
			res.Unknown++
		default:
			res.Passed++
		}
		for i := range fs {
			fs[i].Check = c.id
			if fs[i].Controls == nil {
				fs[i].Controls = c.controls
			}
			res.Severity[fs[i].Severity]++
		}
		res.Checks = append(res.Checks, cr)
		res.Findings = append(res.Findings, fs...)
	}
	sort.SliceStable(res.Findings, func(i, j int) bool {
		return SeverityRank(res.Findings[i].Severity) < SeverityRank(res.Findings[j].Severity)
	})
	return res
}
