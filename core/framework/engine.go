package framework

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
)

// Engine is a secrets engine or auth method. It is declared here, beside
// Route and Env, so that an engine depends on this toolkit only and never
// on the router that mounts it. Optional capabilities (lease revocation,
// renewal, scheduled work) are the separate small interfaces below, found by
// type assertion.
type Engine interface {
	// Routes lists the engine's paths. Called once, after Setup.
	Routes() []Route
	// Setup prepares the engine for a mount. env.Storage is private to it.
	Setup(ctx context.Context, env Env) error
	// Close releases resources when the mount is disabled or Vigil seals.
	Close(ctx context.Context) error
}

// SecretRevoker is implemented by engines that issue leased secrets.
// RevokeSecret must be idempotent: revoking twice is not an error.
type SecretRevoker interface {
	RevokeSecret(ctx context.Context, req *core.Request, s *core.Secret) error
}

// SecretRenewer is implemented by engines whose leases can be renewed. It
// returns the new TTL granted (capped by the engine's own limits).
type SecretRenewer interface {
	RenewSecret(ctx context.Context, req *core.Request, s *core.Secret, increment time.Duration) (time.Duration, error)
}

// Scheduler is implemented by engines with background work (key
// auto-rotation, static credential rotation, CRL refresh), and by a
// subsystem's sys/ Part (automated snapshots: the sys/ mount lists the
// jobs of its Parts). The work is done
// by Internal routes, so every change it makes goes through the Dispatcher
// and is in the audit trail: about once a minute, on the active node, the
// server reads each job's Scan path with an internal request made by the
// job's principal, and then updates every mount-relative path listed in the
// "due" member ([]string) of that response, again as the job's principal.
// Scanning must not change state; the due routes must re-check that their
// work is still due.
type Scheduler interface {
	ScheduledJobs() []Job
}

// Job is one kind of scheduled work of an engine.
type Job struct {
	// Name names the job in the audit trail (the internal principal of its
	// requests), e.g. "transit-auto-rotate".
	Name string
	// Scan is the mount-relative path of the Internal route listing the
	// work that is due.
	Scan string
}

// Factory makes a new, unconfigured engine.
type Factory func() Engine
