package auditsvc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/core"
)

// errAPIDisabled refuses sys/audit changes when the configuration says so.
var errAPIDisabled = &core.Error{Code: core.CodePermissionDenied, Msg: "audit devices cannot be changed through the API: audit_settings { allow_api_changes = false } (the default outside -dev) in the server configuration"}

// Enable enables a device through the API and persists it. The device must
// open, and must record req's request entry (so the device being enabled
// records the change, as every other device does): an error (bad options, a
// path outside audit_settings { allowed_dirs }, an unwritable file) leaves
// nothing enabled.
func (a *Subsystem) Enable(ctx context.Context, req *core.Request, name, typ, description string, opts map[string]string, local bool) error {
	if !a.settings.AllowAPIChanges {
		return errAPIDisabled
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := audit.ValidName(name); err != nil {
		return err
	}
	if a.broker.Device(name) != nil {
		return core.Invalid("path already in use: an audit device is enabled at %q", name+"/")
	}
	dc, err := audit.ParseDeviceOptions(name, typ, opts, nil)
	if err != nil {
		return err
	}
	dc.Description, dc.Local = description, local
	if dc.Type == audit.TypeFile {
		if err := a.allowedPath(dc.Path); err != nil {
			return err
		}
		if dc.ReserveBytes > audit.DefaultReserveBytes {
			return core.Invalid("audit device %q: reserve_bytes above %d cannot be set through the API", name, audit.DefaultReserveBytes)
		}
	}
	for _, d := range a.broker.Devices() {
		if dc.Path != "" && d.Config.Path == dc.Path {
			return core.Invalid("audit device %q already writes %s", d.Name(), dc.Path)
		}
	}
	api, err := a.st.devices(ctx)
	if err != nil {
		return err
	}
	sink, fopts, err := a.openBoundedOpts(ctx, dc, false)
	if err != nil {
		_ = a.st.deleteSalt(ctx, name)
		return core.Invalid("audit device %q cannot be enabled: %v", name, err)
	}
	d := audit.NewDevice(dc, "api", fopts, sink, nil)
	if req != nil {
		if err := a.broker.WriteTo(ctx, d, &core.AuditEvent{Type: "request", Time: a.now(), Request: req}); err != nil {
			a.closeBounded([]*audit.Device{d})
			_ = a.st.deleteSalt(ctx, name)
			return core.Invalid("audit device %q cannot be enabled: it could not record this request: %v", name, err)
		}
	}
	// The "ever enabled" marker goes first: if persisting the device then
	// fails, the marker alone makes audit required after a restart (fail
	// closed), whereas a device persisted without the marker could be lost
	// with audit silently optional.
	api[name] = apiDevice{Type: typ, Description: description, Options: opts, Local: local}
	err = a.st.setEverEnabled(ctx)
	if err == nil {
		err = a.st.putDevices(ctx, api)
	}
	if err != nil {
		a.closeBounded([]*audit.Device{d})
		_ = a.st.deleteSalt(ctx, name)
		return fmt.Errorf("audit: persist device %q: %w", name, err)
	}
	a.broker.Add(d)
	a.broker.SetRequired(true)
	if dc.Type == audit.TypeFile {
		a.watch.Add(a.target(d))
	}
	a.log.Info("audit device enabled", "device", name, "type", typ)
	return nil
}

// allowedPath checks that a file device enabled through the API writes
// under one of audit_settings { allowed_dirs }, following symbolic links
// (a link inside an allowed folder must not lead out of it), and that the
// file is not itself a link.
func (a *Subsystem) allowedPath(p string) error {
	if len(a.settings.AllowedDirs) == 0 {
		return core.Invalid("audit file devices enabled through the API must write under audit_settings { allowed_dirs = [...] }, and none is configured")
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return core.Invalid("audit device file %s is a symbolic link", p)
	}
	real, err := resolveExisting(filepath.Dir(p))
	if err != nil {
		return core.Invalid("audit device file %s: %v", p, err)
	}
	for _, d := range a.settings.AllowedDirs {
		rd, err := resolveExisting(d)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(rd, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil
		}
	}
	return core.Invalid("audit device file %s is not under an allowed directory (audit_settings { allowed_dirs = %q })", p, a.settings.AllowedDirs)
}

// resolveExisting resolves symbolic links in the longest existing prefix of
// the absolute path p and appends the rest.
func resolveExisting(p string) (string, error) {
	p = filepath.Clean(p)
	rest := ""
	for {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// Disable disables an API-enabled device. The device being disabled
// records req's response entry before it closes (the Dispatcher records it
// on every other device), so the change is on every device. Disabling the
// last device while audit is required, or the last durable device while
// require_audit is on, is refused: every later request would fail closed,
// including the one that could enable a new device.
func (a *Subsystem) Disable(ctx context.Context, req *core.Request, name string) error {
	if !a.settings.AllowAPIChanges {
		return errAPIDisabled
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.broker.Device(name)
	if d == nil {
		return nil // Vault: disabling a missing device succeeds
	}
	if d.Source == "config" {
		return core.Invalid("audit device %q is declared in the server configuration; remove it there", name)
	}
	devs := a.broker.Devices()
	if a.broker.Required() && len(devs) == 1 {
		return core.Invalid("cannot disable %q: it is the last audit device and audit is required (requests would fail closed); enable another device first", name)
	}
	if a.broker.RequireDurable() && d.Durable() {
		others := 0
		for _, x := range devs {
			if x != d && x.Durable() {
				others++
			}
		}
		if others == 0 {
			return core.Invalid("cannot disable %q: it is the last durable audit device and audit_settings { require_audit = true } (requests would be refused); enable another durable device first", name)
		}
	}
	api, err := a.st.devices(ctx)
	if err != nil {
		return err
	}
	delete(api, name)
	if err := a.st.putDevices(ctx, api); err != nil {
		return err
	}
	a.broker.Remove(name)
	a.watch.Remove(name)
	if req != nil {
		if err := a.broker.WriteTo(ctx, d, &core.AuditEvent{Type: "response", Time: a.now(), Request: req}); err != nil {
			a.log.Error("the disabled audit device could not record its own disabling", "device", name, "error", err)
		}
	}
	a.closeBounded([]*audit.Device{d})
	a.refMu.Lock()
	delete(a.refused, name)
	a.refMu.Unlock()
	err = errors.Join(a.st.deleteSalt(ctx, name), a.st.s.Delete(ctx, checkpointKey(a.nodeID, name)))
	a.log.Info("audit device disabled", "device", name)
	return err
}
