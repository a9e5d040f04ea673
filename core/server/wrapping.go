package server

import (
	"context"

	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/wrapping"
)

// initWrapping builds the cubbyhole and the response-wrapping and
// control-group service: tokens destroy their cubbyhole when revoked, and
// the sys/wrapping/ and sys/control-group/ routes join sys/.
func (s *Server) initWrapping() {
	s.cubby = cubbyhole.New()
	s.tokens.SetCubbyholes(s.cubby)
	s.wrapping = wrapping.New(wrapping.Config{Tokens: s.tokens, Cubbyholes: s.cubby, Now: s.now,
		Logger: s.log.With("component", "wrapping")})
	s.parts = append(s.parts, s.wrapping)
}

// mountCubbyhole mounts cubbyhole/ for every token, as Vault does: static
// (it cannot be disabled or moved) and local.
func (s *Server) mountCubbyhole(ctx context.Context) error {
	return s.router.MountStatic(ctx, &router.MountEntry{Path: "cubbyhole/", Type: "cubbyhole", Class: "secret", Local: true,
		Description: "per-token private secret storage"}, s.cubby, "sys/cubbyhole-backend/")
}
