package system

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/storage"
)

// migrationPrefix keeps the outcome of each sys/remount (in the sys/ view).
const migrationPrefix = "remount/"

type migration struct {
	ID     string    `json:"migration_id"`
	Source string    `json:"source_mount"`
	Target string    `json:"target_mount"`
	Status string    `json:"status"` // "success" or "failure"
	Error  string    `json:"error,omitempty"`
	Start  time.Time `json:"start_time"`
	End    time.Time `json:"end_time"`
	// NamespaceID is the namespace the remount was made in ("" for the
	// root): its status is shown there only.
	NamespaceID string `json:"namespace_id,omitempty"`
}

// remountRoute is sys/remount (sudo) and sys/remount/status/:migration_id.
// Vigil moves the mount within the request (its data is keyed by the
// mount's UUID, so nothing is copied; leases and token paths are re-keyed),
// then answers with a migration ID as Vault does; the status endpoint
// reports the outcome at once, so vault/api's Remount returns after one
// poll.
func (b *Backend) remountRoute() framework.Route {
	return framework.Route{Pattern: `remount(/status/(?P<migration_id>[^/]+))?`, Sudo: true,
		Fields: map[string]*framework.FieldSchema{
			"from":         {Type: framework.TypeString},
			"to":           {Type: framework.TypeString},
			"migration_id": {Type: framework.TypeString},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.remount, core.OpRead: b.remountStatus},
		Help:       "Move a mount to another path."}
}

func (b *Backend) remount(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	if d.String("migration_id") != "" {
		return nil, core.ErrUnsupportedOp
	}
	from, to := d.String("from"), d.String("to")
	if from == "" || to == "" {
		return nil, core.Invalid("both from and to are required")
	}
	src, err := router.NormalizePath(from)
	if err != nil {
		return nil, err
	}
	dst, err := router.NormalizePath(to)
	if err != nil {
		return nil, err
	}
	mig := migration{ID: uuid.NewString(), Source: src, Target: dst, Start: b.d.Now().UTC()}
	// In a namespace both paths are its own: a mount never moves to
	// another namespace (the router refuses it).
	ns := req.NS()
	if !ns.IsRoot() {
		mig.NamespaceID = ns.ID
	}
	if err := b.ownMount(ns, src); err != nil {
		return nil, err
	}
	err = b.d.Router.Remount(ctx, ns.Path+src, ns.Path+dst, b.d.Core.MovePrefix)
	if core.CodeOf(err) == core.CodeInvalid {
		return nil, err // refused before anything moved: no migration happened
	}
	mig.End, mig.Status = b.d.Now().UTC(), "success"
	if err != nil {
		mig.Status, mig.Error = "failure", core.ClientMessage(err)
	}
	if perr := storage.PutJSON(ctx, b.storage, migrationPrefix+mig.ID, mig); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"migration_id": mig.ID}, Legacy: true,
		Warnings: []string{"Mount moved. Its outcome is also available at sys/remount/status/" + mig.ID}}, nil
}

func (b *Backend) remountStatus(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	id := d.String("migration_id")
	if id == "" {
		return nil, core.ErrUnsupportedOp
	}
	var mig migration
	ok, err := storage.GetJSON(ctx, b.storage, migrationPrefix+id, &mig)
	if err != nil {
		return nil, err
	}
	if want := req.NS(); !ok || mig.NamespaceID != "" && mig.NamespaceID != want.ID || mig.NamespaceID == "" && !want.IsRoot() {
		return nil, core.Invalid("no remount with migration ID %q", id)
	}
	info := map[string]any{"source_mount": mig.Source, "target_mount": mig.Target, "status": mig.Status,
		"start_time": mig.Start.Format(time.RFC3339Nano), "end_time": mig.End.Format(time.RFC3339Nano)}
	if mig.Error != "" {
		info["error"] = mig.Error
	}
	return &core.Response{Data: map[string]any{"migration_id": mig.ID, "migration_info": info}}, nil
}
