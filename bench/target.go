package bench

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Target is a server under test: started (or reached) once, driven through
// the Vault HTTP API, stopped at the end.
type Target interface {
	// Start starts or reaches the server. A *SkipError means this arm
	// cannot run here (a service it needs is unreachable, a subsystem is
	// missing from the build); any other error aborts the benchmark.
	Start(ctx context.Context) error
	// Stop stops a server the harness started (no-op otherwise).
	Stop(ctx context.Context) error
	// URL is the base address (http://host:port).
	URL() string
	// Token is an admin (root) token.
	Token() string
	// PID is the server's process id when the harness started it, else 0.
	PID() int
	// Info describes the arm for the report.
	Info() ArmInfo
	// VigilMetrics reports whether the target serves Vigil's audit
	// metrics (only Vigil does).
	VigilMetrics() bool
	// Streams lists the audit streams the target ships to ("kafka",
	// "clickhouse"), whose lag the harness waits out after each run.
	Streams() []string
}

// ArmInfo describes one arm in the report.
type ArmInfo struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // vigil, vault, openbao, external
	Audit    string   `json:"audit,omitempty"`
	Addr     string   `json:"addr,omitempty"`
	Version  string   `json:"version,omitempty"`
	Binary   string   `json:"binary,omitempty"`
	Args     []string `json:"args,omitempty"`
	DataDir  string   `json:"data_dir,omitempty"`
	AuditLog string   `json:"audit_log,omitempty"`
	Config   string   `json:"config,omitempty"`
	Devices  []string `json:"audit_devices,omitempty"`
	Streams  []string `json:"audit_streams,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Skipped  string   `json:"skipped,omitempty"`
}

// serverVersion reads "version" from sys/seal-status (Vault, OpenBao and
// Vigil all report it there).
func serverVersion(ctx context.Context, api *API) string {
	m, err := api.DoNoToken(ctx, "GET", "sys/seal-status", nil)
	if err != nil {
		return ""
	}
	v, _ := m["version"].(string)
	return v
}

// auditDevices lists the enabled audit devices ("file/ (file)").
func auditDevices(ctx context.Context, api *API) ([]string, error) {
	m, err := api.Do(ctx, "GET", "sys/audit", nil)
	if err != nil {
		return nil, err
	}
	src := data(m)
	if src == nil {
		src = m
	}
	var out []string
	for k, v := range src {
		d, ok := v.(map[string]any)
		if !ok || !strings.HasSuffix(k, "/") {
			continue
		}
		t, _ := d["type"].(string)
		out = append(out, fmt.Sprintf("%s (%s)", k, t))
	}
	sort.Strings(out)
	return out, nil
}

// ExternalTarget is a server someone else runs (--addr, --token).
type ExternalTarget struct {
	Addr     string
	AdminTok string
	Insecure bool
	info     ArmInfo
}

// Start checks the address answers and the token is valid.
func (t *ExternalTarget) Start(ctx context.Context) error {
	t.Addr = strings.TrimRight(t.Addr, "/")
	api := &API{Base: t.Addr, Token: t.AdminTok, Tag: "setup", HTTP: &http.Client{Transport: newTransport(2, t.Insecure), Timeout: 30 * time.Second}}
	t.info = ArmInfo{Name: "external", Kind: "external", Addr: t.Addr}
	if _, err := api.Do(ctx, "GET", "auth/token/lookup-self", nil); err != nil {
		return fmt.Errorf("external server %s: token check: %w", t.Addr, err)
	}
	t.info.Version = serverVersion(ctx, api)
	if devs, err := auditDevices(ctx, api); err == nil {
		t.info.Devices = devs
		if len(devs) == 0 {
			t.info.Audit = "none enabled"
		} else {
			t.info.Audit = strings.Join(devs, ", ")
		}
	}
	return nil
}

func (t *ExternalTarget) Stop(context.Context) error { return nil }
func (t *ExternalTarget) URL() string                { return t.Addr }
func (t *ExternalTarget) Token() string              { return t.AdminTok }
func (t *ExternalTarget) PID() int                   { return 0 }
func (t *ExternalTarget) Info() ArmInfo              { return t.info }

// VigilMetrics: an external server may be Vigil; the harness tries and
// reports whatever audit metrics it finds.
func (t *ExternalTarget) VigilMetrics() bool { return true }
func (t *ExternalTarget) Streams() []string  { return nil }
