package lease

import (
	"context"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/server"
)

// Subsystem plugs the lease manager into a server.
type Subsystem struct {
	M *Manager
}

var _ server.Subsystem = (*Subsystem)(nil)

// NewSubsystem returns the lease subsystem.
func NewSubsystem() *Subsystem { return &Subsystem{} }

func (l *Subsystem) Name() string { return "lease" }

// Attach wires the manager: storage, dispatch, TTLs, hooks and sys routes.
func (l *Subsystem) Attach(s *server.Server) error {
	l.M = New(Config{
		Storage: s.Barrier(),
		Dispatch: func(ctx context.Context, req *core.Request) (*core.Response, error) {
			return s.Dispatcher().Handle(ctx, req)
		},
		TTLs:   s.Router().Effective,
		Tokens: s.Tokens(),
		Now:    s.Now,
		Logger: s.Logger().With("component", "lease"),
	})
	s.AddPostHook(l.M.Register)
	s.AddSysPart(l.M)
	s.Tokens().SetOnRevoke(l.M.RevokeByTokens)
	s.AddPrefixRevoker(func(ctx context.Context, prefix string) error { return l.M.RevokePrefix(ctx, prefix, false) })
	s.AddPrefixMover(l.M.MovePrefix)
	return nil
}

func (l *Subsystem) Unsealed(ctx context.Context) error { return l.M.Start(ctx) }
func (l *Subsystem) Sealing(context.Context)            { l.M.Stop() }
