package namespace

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Host is what the sys/namespaces routes need of the server.
type Host interface {
	// MountConflict returns the path of a mount that would be hidden by a
	// namespace at the full path p, "" when there is none.
	MountConflict(p string) string
	// Initialize prepares a namespace just created (its default policy).
	Initialize(ctx context.Context, ns core.Namespace) error
	// Purge removes everything inside a namespace that has no child left:
	// it revokes its tokens (and their leases), disables its mounts and
	// auth methods (revoking their leases, deleting their data), and
	// deletes its identity objects and policies. It is safe to run again
	// after a failure.
	Purge(ctx context.Context, ns core.Namespace) error
	// Sudo reports whether req's caller holds sudo on req's path.
	Sudo(ctx context.Context, req *core.Request) bool
}

// Routes are Vault's sys/namespaces endpoints, served in every namespace
// for its children:
//
//	LIST   sys/namespaces                      the namespace's children
//	GET    sys/namespaces/:name                one child
//	POST   sys/namespaces/:name                create it (or set its custom_metadata)
//	PATCH  sys/namespaces/:name                merge-patch its custom_metadata
//	DELETE sys/namespaces/:name                delete it and everything inside
//	POST   sys/namespaces/api-lock/lock[/:path]     lock this namespace (or a descendant)
//	POST   sys/namespaces/api-lock/unlock[/:path]   unlock it with unlock_key (or sudo)
type Routes struct {
	s *Store
	h Host
}

// NewRoutes returns the sys/namespaces routes over s.
func NewRoutes(s *Store, h Host) *Routes { return &Routes{s: s, h: h} }

var _ framework.Part = (*Routes)(nil)

// Routes implements framework.Part.
func (r *Routes) Routes() []framework.Route {
	nameField := map[string]*framework.FieldSchema{
		"path":            {Type: framework.TypeString},
		"custom_metadata": {Type: framework.TypeMap},
	}
	return []framework.Route{
		{Pattern: `namespaces/?`, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: r.list}},
		{Pattern: `namespaces/api-lock/lock(?:/(?P<path>.+))?`, Fields: map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.lock}},
		{Pattern: `namespaces/api-lock/unlock(?:/(?P<path>.+))?`,
			Fields:     map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}, "unlock_key": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: r.unlock}},
		{Pattern: `namespaces/(?P<path>.+)`, Fields: nameField, Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: r.read, core.OpUpdate: r.set, core.OpPatch: r.patch, core.OpDelete: r.delete}},
	}
}

// Data is the API shape of a namespace (Vault's and OpenBao's).
func Data(e *Entry) map[string]any {
	meta := map[string]any{}
	for k, v := range e.CustomMetadata {
		meta[k] = v
	}
	return map[string]any{"id": e.ID, "uuid": e.UUID, "path": e.Path, "locked": e.Locked(), "tainted": e.Tainted, "custom_metadata": meta}
}

// child returns the full path of the child name of req's namespace.
func child(req *core.Request, d *framework.FieldData) (string, string, error) {
	name := strings.Trim(d.String("path"), "/")
	if err := ValidName(name); err != nil {
		return "", "", err
	}
	return name, req.NS().Path + name + "/", nil
}

func (r *Routes) list(_ context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	ns := req.NS()
	keys := []any{}
	info := map[string]any{}
	for _, e := range r.s.Children(ns, false) {
		rel := strings.TrimPrefix(e.Path, ns.Path)
		keys = append(keys, rel)
		info[rel] = Data(e)
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys, "key_info": info}}, nil
}

func (r *Routes) read(_ context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	_, full, err := child(req, d)
	if err != nil {
		return nil, err
	}
	e, ok := r.s.ByPath(full)
	if !ok {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: Data(e)}, nil
}

func stringMap(raw map[string]any) (map[string]string, error) {
	if raw == nil {
		return nil, nil
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, core.Invalid("custom_metadata values must be strings")
		}
		out[k] = s
	}
	return out, nil
}

func (r *Routes) set(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name, _, err := child(req, d)
	if err != nil {
		return nil, err
	}
	var meta map[string]string
	if d.Has("custom_metadata") {
		if meta, err = stringMap(d.Map("custom_metadata")); err != nil {
			return nil, err
		}
		if meta == nil {
			meta = map[string]string{}
		}
	}
	e, created, err := r.s.Create(ctx, req.NS(), name, meta, r.h.MountConflict)
	if err != nil {
		return nil, err
	}
	if created {
		if err := r.h.Initialize(ctx, e.Namespace()); err != nil {
			if rerr := r.s.Remove(ctx, e.ID); rerr != nil {
				return nil, fmt.Errorf("namespace %s: initialise: %w (and removing it failed: %v)", e.Path, err, rerr)
			}
			return nil, fmt.Errorf("namespace %s: initialise: %w", e.Path, err)
		}
	}
	return &core.Response{Data: Data(e)}, nil
}

func (r *Routes) patch(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	_, full, err := child(req, d)
	if err != nil {
		return nil, err
	}
	raw, present := req.Data["custom_metadata"]
	if !present {
		return nil, core.Invalid(`missing required field "custom_metadata"`)
	}
	patch, ok := raw.(map[string]any)
	if raw != nil && !ok {
		return nil, core.Invalid("custom_metadata must be an object")
	}
	cur, ok := r.s.ByPath(full)
	if !ok {
		return nil, core.ErrNotFound
	}
	meta := maps.Clone(cur.CustomMetadata)
	if meta == nil || raw == nil {
		meta = map[string]string{}
	}
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(meta, k)
		case string:
			meta[k] = v
		default:
			return nil, core.Invalid("metadata patch can only have string or null values, got %T", v)
		}
	}
	e, err := r.s.SetMetadata(ctx, full, meta)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: Data(e)}, nil
}

func (r *Routes) delete(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	_, full, err := child(req, d)
	if err != nil {
		return nil, err
	}
	e, ok := r.s.ByPath(full)
	if !ok {
		return &core.Response{Warnings: []string{"requested namespace does not exist"}}, nil
	}
	if kids := r.s.Children(e.Namespace(), false); len(kids) > 0 {
		return nil, core.Invalid("cannot delete namespace (%q) containing child namespaces", e.Path)
	}
	if _, err := r.s.Taint(ctx, full); err != nil {
		return nil, err
	}
	if err := r.h.Purge(ctx, e.Namespace()); err != nil {
		return nil, fmt.Errorf("delete namespace %s: %w (it stays marked as being deleted; delete it again to finish)", e.Path, err)
	}
	if err := r.s.Remove(ctx, e.ID); err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"status": "deleted"}}, nil
}

// target is the namespace a lock or unlock acts on: req's namespace, or
// the descendant named by the path capture.
func (r *Routes) target(req *core.Request, d *framework.FieldData) (string, error) {
	full := req.NS().Path + Canonical(d.String("path"))
	if full == "" {
		return "", core.Invalid("root namespace cannot be locked/unlocked")
	}
	if _, ok := r.s.ByPath(full); !ok {
		return "", core.Invalid("requested namespace does not exist")
	}
	return full, nil
}

func (r *Routes) lock(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	full, err := r.target(req, d)
	if err != nil {
		return nil, err
	}
	key, err := r.s.Lock(ctx, full)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"unlock_key": key}}, nil
}

func (r *Routes) unlock(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	full, err := r.target(req, d)
	if err != nil {
		return nil, err
	}
	key := d.String("unlock_key")
	sudo := key == "" && r.h.Sudo(ctx, req)
	if err := r.s.Unlock(ctx, full, key, sudo); err != nil {
		return nil, err
	}
	if key == "" {
		return &core.Response{Warnings: []string{"Namespace unlocked using sudo capabilities"}}, nil
	}
	return nil, nil
}
