package auditsvc

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/core"
)

// Audit health states, as sys/health and X-Vigil-Audit-Status report them.
const (
	StatusOK       = "ok"
	StatusDegraded = "degraded" // a device failed but another records, or disk above the warn threshold
	StatusCritical = "critical" // nothing records (or audit is unconfigured), or disk critical/full
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
	failed := 0
	for _, d := range devs {
		if f, _ := d.Failed(); f {
			failed++
		}
	}
	lvl := diskwatch.Level(a.diskLevel.Load())
	switch {
	case failed == len(devs) || lvl >= diskwatch.LevelCritical:
		return StatusCritical
	case failed > 0 || lvl == diskwatch.LevelWarn:
		return StatusDegraded
	}
	return StatusOK
}

// Status returns the audit status and the details sys/health shows: each
// device's state, each device folder's disk pressure (naming a shipper that
// holds a segment retention would delete), and why audit is unconfigured.
func (a *Subsystem) Status() (string, map[string]any) {
	status := a.quickStatus()
	devs := a.broker.Devices()
	detail := map[string]any{"required": a.broker.Required(), "configured": len(devs) > 0}
	if len(devs) == 0 {
		if a.broker.Required() {
			detail["reason"] = "no audit device is enabled but audit is required: requests fail closed"
		} else {
			detail["reason"] = "no audit device configured: requests are served unaudited"
		}
	}
	dm := map[string]any{}
	var reasons []string
	for _, d := range devs {
		e := map[string]any{"type": d.Config.Type, "source": d.Source, "status": StatusOK}
		if d.Config.Path != "" {
			e["path"] = d.Config.Path
		}
		if f, msg := d.Failed(); f {
			e["status"], e["error"] = "failed", msg
			reasons = append(reasons, "device "+d.Name()+" failed: "+msg)
		}
		dm[d.Name()] = e
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
