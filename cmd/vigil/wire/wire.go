// Package wire is the explicit list of what a Vigil server is built from:
// its secrets engines, auth methods and subsystems. The binary and the
// integration tests use the same list.
package wire

import (
	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/kafka"
	"github.com/vigilsec/vigil/core/auth/approle"
	"github.com/vigilsec/vigil/core/auth/userpass"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/engine/database"
	"github.com/vigilsec/vigil/core/engine/kv"
	"github.com/vigilsec/vigil/core/engine/pki"
	"github.com/vigilsec/vigil/core/engine/transit"
	"github.com/vigilsec/vigil/core/lease"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/server"
)

// Engines is the explicit list of mountable secrets engines.
func Engines() map[string]router.Factory {
	return map[string]router.Factory{
		"kv":       kv.New,
		"pki":      pki.New,
		"database": database.New,
		"transit":  transit.New,
	}
}

// AuthMethods is the explicit list of auth methods.
func AuthMethods() map[string]router.Factory {
	return map[string]router.Factory{
		"userpass": userpass.New,
		"approle":  approle.New,
	}
}

// Subsystems lists the pluggable server parts, in start order.
func Subsystems(cfg *config.Config) ([]server.Subsystem, error) {
	auditSub := audit.NewSubsystem(audit.Options{})
	return []server.Subsystem{
		auditSub, // first: devices open before the others start and close last
		authz.NewSubsystem(),
		lease.NewSubsystem(),
		// Streams tail the audit device; they stop (saving cursors) before it closes.
		ship.NewSubsystem(ship.Options{Audit: auditSub, Sinks: map[string]ship.Factory{
			"kafka": kafka.New, "clickhouse": clickhouse.New}}),
	}, nil
}

// Options returns server options with everything wired for cfg.
func Options(cfg *config.Config) (server.Options, error) {
	subs, err := Subsystems(cfg)
	if err != nil {
		return server.Options{}, err
	}
	return server.Options{Config: cfg, Engines: Engines(), AuthMethods: AuthMethods(), Subsystems: subs}, nil
}
