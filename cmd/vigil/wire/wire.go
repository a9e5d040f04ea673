// Package wire is the explicit list of what a Vigil server is built from:
// its secrets engines, auth methods and subsystems. The binary and the
// integration tests use the same list.
package wire

import (
	"fmt"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/audit/ship/clickhouse"
	"github.com/vigilsec/vigil/audit/ship/kafka"
	"github.com/vigilsec/vigil/audit/ship/syslog"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core/auth/approle"
	"github.com/vigilsec/vigil/core/auth/awsauth"
	"github.com/vigilsec/vigil/core/auth/cert"
	"github.com/vigilsec/vigil/core/auth/jwtauth"
	"github.com/vigilsec/vigil/core/auth/kubernetes"
	"github.com/vigilsec/vigil/core/auth/ldap"
	"github.com/vigilsec/vigil/core/auth/userpass"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/autosnapshot"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/engine/database"
	"github.com/vigilsec/vigil/core/engine/kv"
	"github.com/vigilsec/vigil/core/engine/pki"
	"github.com/vigilsec/vigil/core/engine/ssh"
	"github.com/vigilsec/vigil/core/engine/totp"
	"github.com/vigilsec/vigil/core/engine/transit"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/lease"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/awskms"
	"github.com/vigilsec/vigil/core/seal/pkcs11"
	transitseal "github.com/vigilsec/vigil/core/seal/transit"
	"github.com/vigilsec/vigil/core/server"
	"github.com/vigilsec/vigil/reports"
	"github.com/vigilsec/vigil/reports/dashboard"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// Engines is the explicit list of mountable secrets engines.
func Engines() map[string]framework.Factory {
	return map[string]framework.Factory{
		"kv":       kv.New,
		"pki":      pki.New,
		"database": database.New,
		"transit":  transit.New,
		"ssh":      ssh.New,
		"totp":     totp.New,
	}
}

// AuthMethods is the explicit list of auth methods.
func AuthMethods() map[string]framework.Factory {
	return map[string]framework.Factory{
		"userpass": userpass.New,
		"approle":  approle.New,
		// One implementation under both of Vault's names.
		"jwt":        jwtauth.New,
		"oidc":       jwtauth.New,
		"kubernetes": kubernetes.New,
		"aws":        awsauth.New,
		"ldap":       ldap.New,
		"cert":       cert.New,
	}
}

// Seals is the explicit list of auto-unseal seal types (Shamir needs no
// entry). pkcs11 is always listed; a binary built without cgo refuses to
// start it and says why.
func Seals() map[string]seal.Factory {
	return map[string]seal.Factory{
		awskms.Type:      awskms.Factory,
		pkcs11.Type:      pkcs11.Factory,
		transitseal.Type: transitseal.Factory,
	}
}

// Tuning adjusts subsystems for tests and tools; the zero value is what
// the server runs with.
type Tuning struct {
	// Query tunes the audit query subsystem (its Audit field is set here).
	Query querysvc.Options
	// Audit tunes the audit subsystem.
	Audit auditsvc.Options
}

// Subsystems lists the pluggable server parts, in start order.
func Subsystems(cfg *config.Config) ([]server.Plug, error) {
	return SubsystemsWith(cfg, Tuning{})
}

// SubsystemsWith is Subsystems with tuning applied.
//
// The order is the start order (Unsealed in list order, Sealing in
// reverse), and it carries these dependencies, which TestStartOrder holds:
// the audit devices open before every other subsystem starts and close
// after they stop; streams stop (saving their cursors) before the devices
// close. Route precedence does not depend on it: the router picks the most
// specific route.
func SubsystemsWith(cfg *config.Config, t Tuning) ([]server.Plug, error) {
	auditSub := auditsvc.NewSubsystem(t.Audit)
	authzSub := authz.NewSubsystem()
	shipSub := ship.NewSubsystem(ship.Options{Audit: auditSub, Sinks: map[string]ship.Factory{
		"kafka": kafka.New, "clickhouse": clickhouse.New, "syslog": syslog.New}})
	qo := t.Query
	qo.Audit = auditSub
	querySub := querysvc.NewSubsystem(qo)
	compSub := compliance.NewSubsystem(compliance.Options{Audit: auditSub, Authz: authzSub, Streams: shipSub})
	repSub := reports.NewSubsystem(reports.Options{Compliance: compSub, Audit: auditSub, Signer: auditSub, Keys: auditSub, Query: querySub.Backend, CatchUp: querySub.CatchUp})
	return Plugs(
		auditSub, // devices open before the others start and close last
		authzSub,
		lease.NewSubsystem(),
		shipSub, // streams tail the audit device; they stop before it closes
		querySub,
		compSub,
		repSub,
		autosnapshot.New(),
	), nil
}

// Plugs pairs each subsystem with its provisioning (see Plug).
func Plugs(subs ...server.Subsystem) []server.Plug {
	out := make([]server.Plug, len(subs))
	for i, s := range subs {
		out[i] = Plug(s)
	}
	return out
}

// Plug pairs a subsystem with its Provision. Each subsystem takes its own
// small Host interface; the closure here is where the compiler checks that
// *server.Host provides what that interface asks for. A subsystem type not
// listed here gets a Provision that fails naming it.
func Plug(sub server.Subsystem) server.Plug {
	var p func(h *server.Host) error
	switch s := sub.(type) {
	case *auditsvc.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	case *authz.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	case *lease.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	case *ship.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	case *querysvc.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	case *compliance.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	case *reports.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	case *autosnapshot.Subsystem:
		p = func(h *server.Host) error { return s.Provision(h) }
	default:
		p = func(*server.Host) error { return fmt.Errorf("wire: no provisioning known for %T", sub) }
	}
	return server.Plug{Subsystem: sub, Provision: p}
}

// The audit subsystem provides what its consumers declare.
var (
	_ ship.AuditLog       = (*auditsvc.Subsystem)(nil)
	_ querysvc.AuditLog   = (*auditsvc.Subsystem)(nil)
	_ compliance.AuditLog = (*auditsvc.Subsystem)(nil)
	_ reports.Verifier    = (*auditsvc.Subsystem)(nil)
	_ reports.Signer      = (*auditsvc.Subsystem)(nil)
)

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
	o := server.Options{Config: cfg, Engines: Engines(), AuthMethods: AuthMethods(), Subsystems: subs, Seals: Seals()}
	if cfg.UI {
		o.UI = dashboard.Handler()
	}
	return o, nil
}
