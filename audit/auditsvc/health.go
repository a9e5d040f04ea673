package auditsvc

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/core"
)

// Audit health states, as sys/health and X-Vigil-Audit-Status report them.
const (
	StatusOK = "ok"
	// StatusDegraded: a non-durable device failed, a file device does not
	// fsync every entry, no durable device is enabled while requests are
	// still served, require_audit is off (outside -dev), or a disk is above
	// its warn threshold.
	StatusDegraded = "degraded"
	// StatusCritical: requests fail closed or are refused (a durable device
	// failed, nothing records, no durable device while require_audit is
	// on), audit is unconfigured, or a disk is critical or full.
	StatusCritical = "critical"
)

// HeaderStatus is the response header carrying the audit status.
const HeaderStatus = "X-Vigil-Audit-Status"

func (a *Subsystem) health(_ context.Context, hi *core.HealthInfo) {
	if !a.unsealed.Load() {
		return
	}
	st, detail := a.Status()
	hi.AuditStatus, hi.AuditDetail = st, redactPaths(detail).(map[string]any)
}

// redactPaths drops filesystem locations from the health detail:
// sys/health is unauthenticated, and where the audit files live is for
// operators (sys/audit lists it to authorised callers).
func redactPaths(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			switch k {
			case "path", "dir":
				continue
			case "held_segment":
				if s, ok := e.(string); ok {
					out[k] = filepath.Base(s)
					continue
				}
			}
			out[k] = redactPaths(e)
		}
		return out
	}
	return v
}

// header sets X-Vigil-Audit-Status on every response while unsealed. It
// only reads atomics: it runs on every request.
func (a *Subsystem) header(h http.Header) {
	if !a.unsealed.Load() {
		return
	}
	h.Set(HeaderStatus, a.quickStatus())
}

func (a *Subsystem) quickStatus() string {
	devs := a.broker.Devices()
	if len(devs) == 0 {
		return StatusCritical
	}
	failed, durable, failedDurable, weakFiles := 0, 0, 0, 0
	for _, d := range devs {
		f, _ := d.Failed()
		if f {
			failed++
		}
		switch {
		case d.Durable():
			durable++
			if f {
				failedDurable++
			}
		case d.Config.Type == audit.TypeFile:
			weakFiles++
		}
	}
	lvl := diskwatch.Level(a.diskLevel.Load())
	switch {
	case failed == len(devs) || failedDurable > 0 || lvl >= diskwatch.LevelCritical:
		return StatusCritical
	case durable == 0 && a.broker.RequireDurable():
		return StatusCritical
	case failed > 0 || lvl == diskwatch.LevelWarn || weakFiles > 0 || durable == 0 || a.requireAuditOff():
		return StatusDegraded
	}
	return StatusOK
}

// requireAuditOff reports require_audit = false outside -dev.
func (a *Subsystem) requireAuditOff() bool { return !a.settings.RequireAudit && !a.dev }

// Status returns the audit status and the details sys/health shows: each
// device's state, each device folder's disk pressure (naming a shipper that
// holds a segment retention would delete), and why audit is unconfigured.
func (a *Subsystem) Status() (string, map[string]any) {
	status := a.quickStatus()
	devs := a.broker.Devices()
	detail := map[string]any{"required": a.broker.Required(), "configured": len(devs) > 0, "require_audit": a.settings.RequireAudit}
	var reasons []string
	if a.requireAuditOff() {
		reasons = append(reasons, "audit_settings { require_audit = false }: requests are served even when no durable audit device records them")
	}
	dm := map[string]any{}
	durable := 0
	for _, d := range devs {
		e := map[string]any{"type": d.Config.Type, "source": d.Source, "status": StatusOK, "durable": d.Durable()}
		if d.Config.Path != "" {
			e["path"] = d.Config.Path
		}
		if d.Config.Type == audit.TypeFile {
			e["fsync"] = audit.FsyncName(d.Config.Fsync)
		}
		if d.Durable() {
			durable++
		} else if d.Config.Type == audit.TypeFile {
			reasons = append(reasons, "device "+d.Name()+" is not durable (fsync = \""+audit.FsyncName(d.Config.Fsync)+"\"): it never acknowledges an entry, and a power loss can lose the entries it has not synced")
		}
		if f, msg := d.Failed(); f {
			e["status"], e["error"] = "failed", msg
			reasons = append(reasons, "device "+d.Name()+" failed: "+msg)
		}
		dm[d.Name()] = e
	}
	detail["durable_devices"] = durable
	switch {
	case durable > 0:
	case a.broker.RequireDurable():
		reasons = append(reasons, "no durable audit device (a file device with fsync = \"always\"): only seal, unseal, health and the sys/audit device configuration are served")
	case len(devs) > 0:
		reasons = append(reasons, "no durable audit device (a file device with fsync = \"always\"): entries are acknowledged by devices that may lose them")
	case a.broker.Required():
		reasons = append(reasons, "no audit device is enabled but audit is required: requests fail closed")
	default:
		reasons = append(reasons, "no audit device configured: requests are served unaudited")
	}
	detail["devices"] = dm
	disk := map[string]any{}
	for _, s := range a.watch.States() {
		e := map[string]any{"dir": s.Dir, "level": s.Level.String(), "free_bytes": s.Usage.Avail,
			"free_percent": s.Usage.FreePercent(), "reserve_bytes": s.ReserveHeld}
		if s.Err != "" {
			e["error"] = s.Err
		}
		if s.Holder != "" {
			e["held_by"], e["held_segment"] = s.Holder, s.HeldPath
			reasons = append(reasons, "shipper "+s.Holder+" holds segment "+filepath.Base(s.HeldPath)+" on "+s.Name+"'s disk")
		}
		if s.Level >= diskwatch.LevelWarn {
			reasons = append(reasons, "device "+s.Name+" disk "+s.Level.String())
		}
		disk[s.Name] = e
	}
	if len(disk) > 0 {
		detail["disk"] = disk
	}
	if len(reasons) > 0 {
		detail["reason"] = strings.Join(reasons, "; ")
	}
	return status, detail
}
