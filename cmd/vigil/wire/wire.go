// Package wire is the explicit list of what a Vigil server is built from:
// its secrets engines, auth methods and subsystems. The binary and the
// integration tests use the same list.
package wire

import (
	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/kafka"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core/auth/approle"
	"github.com/vigilsec/vigil/core/auth/userpass"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/engine/database"
	"github.com/vigilsec/vigil/core/engine/kv"
	"github.com/vigilsec/vigil/core/engine/pki"
	"github.com/vigilsec/vigil/core/engine/ssh"
	"github.com/vigilsec/vigil/core/engine/totp"
	"github.com/vigilsec/vigil/core/engine/transit"
	"github.com/vigilsec/vigil/core/lease"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/reports"
	"github.com/vigilsec/vigil/reports/dashboard"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// Engines is the explicit list of mountable secrets engines.
func Engines() map[string]router.Factory {
	return map[string]router.Factory{
		"kv":       kv.New,
		"pki":      pki.New,
		"database": database.New,
		"transit":  transit.New,
		"ssh":      ssh.New,
		"totp":     totp.New,
	}
}

// AuthMethods is the explicit list of auth methods.
func AuthMethods() map[string]router.Factory {
	return map[string]router.Factory{
		"userpass": userpass.New,
		"approle":  approle.New,
	}
}

// Tuning adjusts subsystems for tests and tools; the zero value is what
// the server runs with.
type Tuning struct {
	// Query tunes the audit query subsystem (its Audit field is set here).
	Query querysvc.Options
	// Audit tunes the audit subsystem.
	Audit audit.Options
}

// Subsystems lists the pluggable server parts, in start order.
func Subsystems(cfg *config.Config) ([]server.Subsystem, error) {
	return SubsystemsWith(cfg, Tuning{})
}

// SubsystemsWith is Subsystems with tuning applied.
func SubsystemsWith(cfg *config.Config, t Tuning) ([]server.Subsystem, error) {
	auditSub := audit.NewSubsystem(t.Audit)
	authzSub := authz.NewSubsystem()
	shipSub := ship.NewSubsystem(ship.Options{Audit: auditSub, Sinks: map[string]ship.Factory{
		"kafka": kafka.New, "clickhouse": clickhouse.New}})
	qo := t.Query
	qo.Audit = auditSub
	querySub := querysvc.NewSubsystem(qo)
	compSub := compliance.NewSubsystem(compliance.Options{Audit: auditSub, Authz: authzSub, Streams: shipSub})
	repSub := reports.NewSubsystem(reports.Options{Compliance: compSub, Audit: auditSub, Query: querySub.Backend, CatchUp: querySub.CatchUp})
	return []server.Subsystem{
		// Before audit: GET sys/audit/query must be matched before audit's
		// sys/audit/:path routes. Its backend starts once the devices open.
		querySub,
		auditSub, // devices open before the others start and close last
		authzSub,
		lease.NewSubsystem(),
		// Streams tail the audit device; they stop (saving cursors) before it closes.
		shipSub,
		compSub,
		repSub,
	}, nil
}

// Options returns server options with everything wired for cfg.
func Options(cfg *config.Config) (server.Options, error) {
	return OptionsWith(cfg, Tuning{})
}

// OptionsWith is Options with tuning applied.
func OptionsWith(cfg *config.Config, t Tuning) (server.Options, error) {
	subs, err := SubsystemsWith(cfg, t)
	if err != nil {
		return server.Options{}, err
	}
	o := server.Options{Config: cfg, Engines: Engines(), AuthMethods: AuthMethods(), Subsystems: subs}
	if cfg.UI {
		o.UI = dashboard.Handler()
	}
	return o, nil
}
