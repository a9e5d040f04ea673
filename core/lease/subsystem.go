package lease

import (
	"context"
	"log/slog"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Host is what the lease subsystem uses of the server.
type Host interface {
	Storage() storage.Storage
	Handle(ctx context.Context, req *core.Request) (*core.Response, error)
	MountTTLs(path string) (def, max time.Duration)
	Now() time.Time
	Logger() *slog.Logger
	AddPostHook(core.PostHook)
	AddSysPart(framework.Part)
	OnTokenRevoke(f func(ctx context.Context, hashes []string) error)
	AddPrefixRevoker(f func(ctx context.Context, prefix string) error)
	AddPrefixMover(f func(ctx context.Context, from, to string) error)
	// TokenExpiry follows the tokens behind token leases (see Tokens).
	TokenExpiry(ctx context.Context, hash string) (expire time.Time, renewable, ok bool, err error)
	// ConfirmLeader returns nil while this node leads the cluster,
	// confirmed by a quorum (see Config.Confirm).
	ConfirmLeader(ctx context.Context) error
}

// Subsystem plugs the lease manager into a server.
type Subsystem struct {
	M *Manager
}

// NewSubsystem returns the lease subsystem.
func NewSubsystem() *Subsystem { return &Subsystem{} }

func (l *Subsystem) Name() string { return "lease" }

// Provision wires the manager: storage, dispatch, TTLs, hooks and sys routes.
func (l *Subsystem) Provision(h Host) error {
	l.M = New(Config{
		Storage:  h.Storage(),
		Dispatch: h.Handle,
		TTLs:     h.MountTTLs,
		Tokens:   h,
		Confirm:  h.ConfirmLeader,
		Now:      h.Now,
		Logger:   h.Logger().With("component", "lease"),
	})
	h.AddPostHook(l.M.Register)
	h.AddSysPart(l.M)
	h.OnTokenRevoke(l.M.RevokeByTokens)
	h.AddPrefixRevoker(func(ctx context.Context, prefix string) error { return l.M.RevokePrefix(ctx, prefix, false) })
	h.AddPrefixMover(l.M.MovePrefix)
	return nil
}

func (l *Subsystem) Unsealed(ctx context.Context) error { return l.M.Start(ctx) }
func (l *Subsystem) Sealing(context.Context)            { l.M.Stop() }
