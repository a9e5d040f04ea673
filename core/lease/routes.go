package lease

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Routes are the sys/leases/* routes (and Vault's legacy sys/renew,
// sys/revoke aliases), contributed to the sys/ mount.
func (m *Manager) Routes() []framework.Route {
	idField := map[string]*framework.FieldSchema{
		"lease_id": {Type: framework.TypeString}, "url_lease_id": {Type: framework.TypeString},
		"increment": {Type: framework.TypeDurationSecond}, "sync": {Type: framework.TypeBool, Default: true},
	}
	prefixField := map[string]*framework.FieldSchema{"prefix": {Type: framework.TypeString}, "sync": {Type: framework.TypeBool}}
	upd := func(h framework.HandlerFunc) map[core.Operation]framework.HandlerFunc {
		return map[core.Operation]framework.HandlerFunc{core.OpUpdate: h}
	}
	return []framework.Route{
		{Pattern: `leases/lookup`, Fields: idField, Operations: upd(m.hLookup)},
		{Pattern: `leases/lookup/(?P<prefix>.*)`, Fields: prefixField, Sudo: true, Operations: map[core.Operation]framework.HandlerFunc{core.OpList: m.hList}},
		{Pattern: `(leases/)?renew(/(?P<url_lease_id>.+))?`, Fields: idField, Operations: upd(m.hRenew)},
		{Pattern: `(leases/)?revoke(/(?P<url_lease_id>.+))?`, Fields: idField, Operations: upd(m.hRevoke)},
		{Pattern: `(leases/)?revoke-prefix/(?P<prefix>.+)`, Fields: prefixField, Sudo: true, Operations: upd(m.hRevokePrefix(false))},
		{Pattern: `(leases/)?revoke-force/(?P<prefix>.+)`, Fields: prefixField, Sudo: true, Operations: upd(m.hRevokePrefix(true))},
		{Pattern: `leases/tidy`, Operations: upd(m.hTidy)},
		{Pattern: `leases/count`, Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: m.hCount}},
	}
}

func leaseID(d *framework.FieldData) (string, error) {
	id := d.String("url_lease_id")
	if id == "" {
		id = d.String("lease_id")
	}
	if id == "" {
		return "", core.Invalid("lease_id must be specified")
	}
	return id, nil
}

func (m *Manager) hLookup(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	id, err := leaseID(d)
	if err != nil {
		return nil, err
	}
	e, err := m.lookupIn(ctx, req, id)
	if err != nil {
		return nil, err
	}
	ttl := int64(e.ExpireTime.Sub(m.cfg.Now()).Round(time.Second) / time.Second)
	if ttl < 0 {
		ttl = 0
	}
	var last any
	if !e.LastRenewal.IsZero() {
		last = e.LastRenewal.UTC().Format(time.RFC3339Nano)
	}
	return &core.Response{Data: map[string]any{
		"id": e.LeaseID, "issue_time": e.IssueTime.UTC().Format(time.RFC3339Nano),
		"expire_time": e.ExpireTime.UTC().Format(time.RFC3339Nano), "last_renewal": last,
		"renewable": e.Renewable, "ttl": ttl,
		"revoke_attempts": e.RevokeAttempts, "last_revoke_error": e.LastError, "irrevocable": e.Irrevocable,
	}}, nil
}

func (m *Manager) hList(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	prefix := req.NS().Path + d.String("prefix")
	ids, err := m.listIn(ctx, req, prefix)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var keys []string
	for _, id := range ids {
		rest := strings.TrimPrefix(id, prefix)
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		if !seen[rest] {
			seen[rest] = true
			keys = append(keys, rest)
		}
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

func (m *Manager) hRenew(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	id, err := leaseID(d)
	if err != nil {
		return nil, err
	}
	if _, err := m.lookupIn(ctx, req, id); err != nil {
		return nil, err
	}
	e, err := m.Renew(ctx, id, d.Duration("increment"))
	if err != nil {
		return nil, err
	}
	return &core.Response{Secret: &core.Secret{LeaseID: e.LeaseID, TTL: e.TTL, Renewable: e.Renewable}}, nil
}

func (m *Manager) hRevoke(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	id, err := leaseID(d)
	if err != nil {
		return nil, err
	}
	if e, err := m.get(ctx, id); err != nil {
		return nil, err
	} else if e == nil || e.NamespaceID != nsID(req.NS()) {
		return nil, nil // as for any unknown lease
	}
	return nil, m.Revoke(ctx, id)
}

func (m *Manager) hRevokePrefix(force bool) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		// In the root namespace too: "hospital-a/" there names no lease of
		// the root's, and hospital-a/'s leases are revoked from inside it.
		ns := req.NS()
		return nil, m.revokePrefixIn(ctx, ns, ns.Path+d.String("prefix"), force)
	}
}

// hTidy serves sys/leases/tidy. Vigil tidies before answering (it is quick:
// one pass over the lease index), but answers as Vault does, 202 Accepted
// with its warning, so clients that expect that shape work unchanged.
func (m *Manager) hTidy(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	if !req.NS().IsRoot() {
		return nil, core.Invalid("lease tidy covers every namespace and runs in the root namespace only")
	}
	n, err := m.Tidy(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{StatusCode: http.StatusAccepted, Data: map[string]any{"fixed": n},
		Warnings: []string{"Tidy operation successfully started. Any information from the operation will be printed to Vigil's server logs."}}, nil
}

func (m *Manager) hCount(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	ids, err := m.listIn(ctx, req, req.NS().Path)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"lease_count": len(ids), "scheduled": m.Count()}}, nil
}
