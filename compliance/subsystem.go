package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/storage"
	"github.com/vigilsec/vigil/core/token"
)

// RecoveryProcedureKey is where sys/compliance/recovery-procedure is kept
// in the barrier.
const RecoveryProcedureKey = "sys/compliance/recovery-procedure"

// StreamSource reports the audit streams; *ship.Subsystem implements it.
type StreamSource interface {
	Statuses() []ship.Status
}

var _ StreamSource = (*ship.Subsystem)(nil)

// AuditLog is what the checks read from the audit subsystem;
// *auditsvc.Subsystem implements it.
type AuditLog interface {
	Broker() *audit.Broker
	Watcher() *diskwatch.Watcher
	LastVerification(ctx context.Context) (*audit.Verification, error)
}

// Host is what the compliance subsystem uses of the server. Besides its
// own record (the recovery procedure) it only reads: tokens, mounts, the
// seal configuration, the identity store's entities and the snapshot
// records, and the tagged secrets of the KV mounts through audited internal
// requests (Handle).
type Host interface {
	Now() time.Time
	NodeID() string
	Storage() storage.Storage
	Sealed() bool
	Tokens(ctx context.Context) ([]*token.Entry, error)
	Mounts(class string) []core.MountInfo
	// Entities lists the identity store's entities (access reviews).
	Entities() ([]core.EntitySummary, error)
	Handle(ctx context.Context, req *core.Request) (*core.Response, error)
	SealShares(ctx context.Context) (core.SealShares, error)
	KeyCustody(ctx context.Context) (*custody.Evidence, error)
	AddSysPart(framework.Part)
}

// Options wire the compliance subsystem to the parts it inspects. Audit and
// Authz are required; Streams is optional (nil: streams not wired).
type Options struct {
	Audit      AuditLog
	Authz      *authz.Subsystem
	Streams    StreamSource
	Thresholds Thresholds
	// Now overrides the server's clock.
	Now func() time.Time
}

// Subsystem serves the compliance checks:
//
//	GET    sys/compliance/checks               run every check now
//	GET    sys/compliance/controls             the controls catalogue
//	GET    sys/compliance/recovery-procedure   the recorded recovery procedure
//	PUT    sys/compliance/recovery-procedure   {document_url, owner, last_reviewed}
//	DELETE sys/compliance/recovery-procedure
//
// None is root-protected: grant an auditor `read` on sys/compliance/*.
type Subsystem struct {
	opts Options
	host Host
	now  func() time.Time
}

// NewSubsystem returns the compliance subsystem. List it after the audit,
// authz and stream subsystems.
func NewSubsystem(opts Options) *Subsystem { return &Subsystem{opts: opts} }

// Name names the subsystem in logs and errors.
func (s *Subsystem) Name() string { return "compliance" }

// Provision installs the sys/compliance routes.
func (s *Subsystem) Provision(srv Host) error {
	if s.opts.Audit == nil || s.opts.Authz == nil {
		return fmt.Errorf("compliance: the audit and authz subsystems are required")
	}
	s.host = srv
	s.now = s.opts.Now
	if s.now == nil {
		s.now = srv.Now
	}
	srv.AddSysPart(routes{s})
	return nil
}

// Unsealed has nothing to start.
func (s *Subsystem) Unsealed(context.Context) error { return nil }

// Sealing has nothing to stop.
func (s *Subsystem) Sealing(context.Context) {}

// Thresholds returns the configured thresholds with defaults applied.
func (s *Subsystem) Thresholds() Thresholds { return s.opts.Thresholds.WithDefaults() }

// Gather collects the checks' evidence from the running server. It reads
// only: it never changes state.
func (s *Subsystem) Gather(ctx context.Context) (*Env, error) {
	if s.host == nil {
		return nil, fmt.Errorf("compliance: not provisioned")
	}
	if s.host.Sealed() {
		return nil, core.ErrSealed
	}
	b := s.host.Storage()
	env := &Env{Now: s.now().UTC(), NodeID: s.host.NodeID()}
	if a := s.opts.Authz.A; a != nil {
		for _, name := range a.ListACL() {
			if name == authz.RootPolicy {
				continue
			}
			raw, ok := a.GetACL(name)
			if !ok {
				continue
			}
			p, err := authz.ParseACL(name, raw)
			if err != nil {
				return nil, fmt.Errorf("compliance: policy %q: %w", name, err)
			}
			env.Policies = append(env.Policies, p)
		}
	}
	toks, err := s.host.Tokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("compliance: tokens: %w", err)
	}
	env.Tokens = toks
	if env.Entities, err = s.host.Entities(); err != nil {
		return nil, fmt.Errorf("compliance: entities: %w", err)
	}
	if br := s.opts.Audit.Broker(); br != nil {
		env.AuditRequired = br.Required()
		env.RequireAudit = br.RequireDurable()
		for _, d := range br.Devices() {
			failed, msg := d.Failed()
			ad := AuditDevice{Name: d.Name(), Type: d.Config.Type, Path: d.Config.Path,
				Failed: failed, Error: msg, RetainDays: d.Config.RetainDays, MaxBackups: d.Config.MaxBackups, Durable: d.Durable()}
			if d.Config.Type == audit.TypeFile {
				ad.Fsync = audit.FsyncName(d.Config.Fsync)
			}
			env.Devices = append(env.Devices, ad)
		}
	}
	if w := s.opts.Audit.Watcher(); w != nil {
		env.Disk = w.States()
	}
	if s.opts.Streams != nil {
		env.Streams, env.StreamsKnown = s.opts.Streams.Statuses(), true
	}
	if v, err := s.opts.Audit.LastVerification(ctx); err != nil {
		return nil, fmt.Errorf("compliance: last verification: %w", err)
	} else if v != nil {
		env.Verification = v
	}
	env.Mounts = s.host.Mounts("secret")
	var save core.SnapshotSaveRecord
	if ok, err := storage.GetJSON(ctx, b, core.SnapshotSaveKey, &save); err != nil {
		return nil, err
	} else if ok {
		env.LastSnapshot = &save
	}
	var test core.SnapshotTestRecord
	if ok, err := storage.GetJSON(ctx, b, core.SnapshotTestKey, &test); err != nil {
		return nil, err
	} else if ok {
		env.LastRestore = &test
	}
	if env.Backups, err = gatherBackups(ctx, b); err != nil {
		return nil, err
	}
	if cfg, err := s.host.SealShares(ctx); err == nil && cfg.SecretShares > 0 {
		env.Seal = &cfg
		kc, err := s.host.KeyCustody(ctx)
		if err != nil {
			return nil, fmt.Errorf("compliance: key custody: %w", err)
		}
		env.KeyCustody = kc
	}
	rp, err := s.RecoveryProcedure(ctx)
	if err != nil {
		return nil, err
	}
	env.Recovery = rp
	return env, nil
}

// Run gathers the evidence and runs every check with th (zero fields: the
// subsystem's thresholds, then the defaults).
func (s *Subsystem) Run(ctx context.Context, th Thresholds) (*Result, error) {
	env, err := s.Gather(ctx)
	if err != nil {
		return nil, err
	}
	return Run(env, mergeThresholds(th, s.opts.Thresholds)), nil
}

func mergeThresholds(over, base Thresholds) Thresholds {
	pick := func(a, b Duration) Duration {
		if a > 0 {
			return a
		}
		return b
	}
	out := base
	out.MaxTokenTTL = pick(over.MaxTokenTTL, base.MaxTokenTTL)
	out.OrphanMaxAge = pick(over.OrphanMaxAge, base.OrphanMaxAge)
	out.VerifyMaxAge = pick(over.VerifyMaxAge, base.VerifyMaxAge)
	out.MaxShipLag = pick(over.MaxShipLag, base.MaxShipLag)
	out.SnapshotMaxAge = pick(over.SnapshotMaxAge, base.SnapshotMaxAge)
	out.RestoreTestMaxAge = pick(over.RestoreTestMaxAge, base.RestoreTestMaxAge)
	out.ReviewMaxAge = pick(over.ReviewMaxAge, base.ReviewMaxAge)
	out.DrillMaxAge = pick(over.DrillMaxAge, base.DrillMaxAge)
	out.KeyDrillMaxAge = pick(over.KeyDrillMaxAge, base.KeyDrillMaxAge)
	if over.MinDiskFreePercent > 0 {
		out.MinDiskFreePercent = over.MinDiskFreePercent
	}
	return out.WithDefaults()
}

// RecoveryProcedure returns the recorded procedure (nil when none).
func (s *Subsystem) RecoveryProcedure(ctx context.Context) (*RecoveryProcedure, error) {
	var rp RecoveryProcedure
	ok, err := storage.GetJSON(ctx, s.host.Storage(), RecoveryProcedureKey, &rp)
	if err != nil || !ok {
		return nil, err
	}
	return &rp, nil
}

type routes struct{ s *Subsystem }

func (r routes) Routes() []framework.Route {
	str := &framework.FieldSchema{Type: framework.TypeString}
	return []framework.Route{
		{Pattern: `compliance/checks/?`, Fields: map[string]*framework.FieldSchema{
			"max_token_ttl": str, "orphan_max_age": str, "verify_max_age": str, "min_disk_free_percent": str,
			"max_ship_lag": str, "snapshot_max_age": str, "restore_test_max_age": str, "review_max_age": str,
			"drill_max_age": str, "key_drill_max_age": str,
		}, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.checks},
			Help: "Run the compliance checks: findings with severity, object, control and fix."},
		{Pattern: `compliance/controls/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.controls},
			Help: "The HIPAA and NRB controls catalogue with citation confidence labels."},
		{Pattern: `compliance/recovery-procedure/?`, Fields: map[string]*framework.FieldSchema{
			"document_url": str, "owner": str, "last_reviewed": str,
		}, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.getRecovery, core.OpUpdate: r.putRecovery, core.OpDelete: r.deleteRecovery},
			Help: "The documented unseal-key recovery procedure (a metadata record)."},
	}
}

// ParseThresholds reads threshold overrides from string values (durations
// such as "72h" or "30d"; a plain number for the disk percentage).
func ParseThresholds(get func(key string) string) (Thresholds, error) {
	var th Thresholds
	durs := map[string]*Duration{"max_token_ttl": &th.MaxTokenTTL, "orphan_max_age": &th.OrphanMaxAge, "verify_max_age": &th.VerifyMaxAge,
		"max_ship_lag": &th.MaxShipLag, "snapshot_max_age": &th.SnapshotMaxAge, "restore_test_max_age": &th.RestoreTestMaxAge, "review_max_age": &th.ReviewMaxAge,
		"drill_max_age": &th.DrillMaxAge, "key_drill_max_age": &th.KeyDrillMaxAge}
	for k, p := range durs {
		v := strings.TrimSpace(get(k))
		if v == "" {
			continue
		}
		d, err := ParseDays(v)
		if err != nil {
			return th, core.Invalid("%s: %v", k, err)
		}
		*p = Duration(d)
	}
	if v := strings.TrimSpace(get("min_disk_free_percent")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f >= 100 {
			return th, core.Invalid("min_disk_free_percent: want a number between 0 and 100, got %q", v)
		}
		th.MinDiskFreePercent = f
	}
	return th, nil
}

// ParseDays parses a Go duration, also accepting a "d" (days) suffix.
func ParseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil || f <= 0 {
			return 0, fmt.Errorf("invalid duration %q", v)
		}
		return time.Duration(f * float64(day)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid duration %q", v)
	}
	return d, nil
}

func (r routes) checks(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	th, err := ParseThresholds(d.String)
	if err != nil {
		return nil, err
	}
	res, err := r.s.RunIn(ctx, req.NS(), th)
	if err != nil {
		return nil, err
	}
	return dataOf(res)
}

func (r routes) controls(context.Context, *core.Request, *framework.FieldData) (*core.Response, error) {
	return dataOf(map[string]any{"controls": Controls(), "checks": Checks(), "hipaa_caveat": HIPAACaveat, "nrb_caveat": NRBCaveat})
}

func (r routes) getRecovery(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	rp, err := r.s.RecoveryProcedure(ctx)
	if err != nil {
		return nil, err
	}
	if rp == nil {
		return nil, core.ErrNotFound
	}
	return dataOf(rp)
}

func (r routes) putRecovery(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	rp := RecoveryProcedure{DocumentURL: strings.TrimSpace(d.String("document_url")), Owner: strings.TrimSpace(d.String("owner")),
		UpdatedAt: r.s.now().UTC()}
	if rp.DocumentURL == "" {
		return nil, core.Invalid("document_url is required")
	}
	if rp.Owner == "" {
		return nil, core.Invalid("owner is required")
	}
	if v := strings.TrimSpace(d.String("last_reviewed")); v != "" {
		t, err := parseDate(v)
		if err != nil {
			return nil, core.Invalid("last_reviewed: %v", err)
		}
		if t.After(r.s.now().Add(24 * time.Hour)) {
			return nil, core.Invalid("last_reviewed %s is in the future", v)
		}
		rp.LastReviewed = t
	}
	if err := storage.PutJSON(ctx, r.s.host.Storage(), RecoveryProcedureKey, rp); err != nil {
		return nil, err
	}
	return dataOf(rp)
}

func (r routes) deleteRecovery(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	return nil, r.s.host.Storage().Delete(ctx, RecoveryProcedureKey)
}

func parseDate(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, fmt.Errorf("want YYYY-MM-DD or RFC 3339, got %q", v)
	}
	return t, nil
}

// dataOf turns a JSON-able value into response data.
func dataOf(v any) (*core.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &core.Response{Data: m}, nil
}

// maxTaggedSecrets bounds how many tagged secrets a report scopes to; tag
// the mount when more of its secrets are regulated.
const maxTaggedSecrets = 10000

// TaggedSecret is a KV v2 secret tagged phi=true or regulated=true in its
// custom_metadata.
type TaggedSecret struct {
	Mount string `json:"mount"` // "secret/"
	Key   string `json:"key"`   // "patients/123"
}

// ActorScope is the internal principal of the requests that find the
// tagged secrets a report scopes to.
const ActorScope = "compliance-scope"

// TaggedSecrets lists the KV v2 secrets whose custom_metadata tags them as
// regulated, on mounts not tagged as a whole (at most maxTaggedSecrets;
// truncated says more exist). It asks each mount through the Dispatcher
// (an internal read of core.TaggedKeysPath by ActorScope), so the reads are
// in the audit trail and nothing is read when the trail cannot record it.
func (s *Subsystem) TaggedSecrets(ctx context.Context) (out []TaggedSecret, truncated bool, err error) {
	if s.host == nil {
		return nil, false, errors.New("compliance: not provisioned")
	}
	if s.host.Sealed() {
		return nil, false, core.ErrSealed
	}
	for _, m := range s.host.Mounts("secret") {
		if m.Type != "kv" || m.Options["version"] != "2" || core.TrueTag(m.Options, core.ScopeTags()) {
			continue
		}
		resp, err := s.host.Handle(ctx, &core.Request{Operation: core.OpRead, Path: m.Path + core.TaggedKeysPath,
			Internal: true, InternalActor: ActorScope, Time: s.now(),
			Data: map[string]any{"tags": core.ScopeTags(), "limit": maxTaggedSecrets - len(out) + 1}})
		if err != nil {
			return nil, false, fmt.Errorf("compliance: tagged secrets on %s: %w", m.Path, err)
		}
		var keys []string
		if resp != nil {
			keys, _ = resp.Data["keys"].([]string)
		}
		for _, k := range keys {
			if len(out) == maxTaggedSecrets {
				return out, true, nil
			}
			out = append(out, TaggedSecret{Mount: m.Path, Key: k})
		}
	}
	return out, false, nil
}
