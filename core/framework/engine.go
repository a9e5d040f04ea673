package framework

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
)

// Engine is a secrets engine or auth method. It is declared here, beside
// Route and Env, so that an engine depends on this toolkit only and never
// on the router that mounts it. Optional capabilities (lease revocation,
// renewal, periodic work) are the separate small interfaces below, found by
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

// Periodic is implemented by engines with background work (key auto-rotation,
// static credential rotation, tidy). It is called about once a minute on the
// active node.
type Periodic interface {
	Periodic(ctx context.Context) error
}

// Factory makes a new, unconfigured engine.
type Factory func() Engine
