package auditsvc

import (
	"context"
	"slices"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Routes of the audit settings, relative to sys/ (the broker exempts them
// from the durable-device gate, see audit.GateExempt).
const (
	settingsPath       = audit.SettingsPath
	settingsRecordPath = audit.SettingsRecordPath
)

// ActorConfiguration is the internal principal that records a change of
// audit_settings found at unseal.
const ActorConfiguration = "server-configuration"

// keySettingsApplied keeps the audit settings last recorded in the trail.
const keySettingsApplied = "sys/audit/config/settings-applied"

// AppliedSettings are the audit settings that decide what is refused and
// where devices may write; a change to any of them is recorded.
type AppliedSettings struct {
	RequireAudit    bool     `json:"require_audit"`
	AllowAPIChanges bool     `json:"allow_api_changes"`
	AllowedDirs     []string `json:"allowed_dirs"`
}

func (s Settings) applied() AppliedSettings {
	dirs := append([]string{}, s.AllowedDirs...)
	return AppliedSettings{RequireAudit: s.RequireAudit, AllowAPIChanges: s.AllowAPIChanges, AllowedDirs: dirs}
}

func (x AppliedSettings) equal(y AppliedSettings) bool {
	return x.RequireAudit == y.RequireAudit && x.AllowAPIChanges == y.AllowAPIChanges && slices.Equal(x.AllowedDirs, y.AllowedDirs)
}

// recordSettings sends, when the effective audit settings differ from those
// last recorded (the production defaults when none were), an internal
// update of sys/audit/settings/record made by ActorConfiguration: a change
// such as require_audit = false is then in the audit trail like any other
// request, and stored as the new reference. A failure is logged and the
// change is recorded at the next unseal. Caller holds a.mu.
func (a *Subsystem) recordSettings(ctx context.Context) {
	want := a.settings.applied()
	last := ProductionSettings().applied()
	if _, err := storage.GetJSON(ctx, a.st.s, keySettingsApplied, &last); err != nil {
		a.log.Error("audit settings: cannot read the last recorded settings", "error", err)
		return
	}
	if want.equal(last) {
		return
	}
	req := &core.Request{Operation: core.OpUpdate, Path: "sys/" + settingsRecordPath, Internal: true, InternalActor: ActorConfiguration,
		Time: a.now(), Data: map[string]any{"require_audit": want.RequireAudit, "allow_api_changes": want.AllowAPIChanges, "allowed_dirs": want.AllowedDirs}}
	if _, err := a.dispatch(ctx, req); err != nil {
		a.log.Error("audit settings changed but the change could not be recorded; retried at the next unseal", "error", err)
		return
	}
	if !want.RequireAudit && !a.dev {
		a.log.Warn("audit_settings { require_audit = false }: requests are served even when no durable audit device records them")
	}
}

func (r routes) settingsRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: settingsPath + `/?`, Sudo: true,
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: r.readSettings},
			Help:       "The effective audit settings and which devices are durable."},
		{Pattern: settingsRecordPath, Internal: true, Fields: map[string]*framework.FieldSchema{
			"require_audit": {Type: framework.TypeBool}, "allow_api_changes": {Type: framework.TypeBool},
			"allowed_dirs": {Type: framework.TypeCommaStringSlice},
		}, Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.recordSettings},
			Help: "Internal: record a change of the audit settings."},
	}
}

func (r routes) readSettings(context.Context, *core.Request, *framework.FieldData) (*core.Response, error) {
	s := r.a.settings
	durable, other := []string{}, []string{}
	for _, d := range r.a.broker.Devices() {
		if d.Durable() {
			durable = append(durable, d.Name())
		} else {
			other = append(other, d.Name())
		}
	}
	return &core.Response{Data: map[string]any{"require_audit": s.RequireAudit, "allow_api_changes": s.AllowAPIChanges,
		"allowed_dirs": append([]string{}, s.AllowedDirs...), "request_headers": append([]string{}, s.RequestHeaders...),
		"durable_devices": durable, "non_durable_devices": other}}, nil
}

func (r routes) recordSettings(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	x := AppliedSettings{RequireAudit: d.Bool("require_audit"), AllowAPIChanges: d.Bool("allow_api_changes"), AllowedDirs: d.Strings("allowed_dirs")}
	if x.AllowedDirs == nil {
		x.AllowedDirs = []string{}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := storage.PutJSON(sctx, r.a.st.s, keySettingsApplied, x); err != nil {
		return nil, err
	}
	return nil, nil
}
