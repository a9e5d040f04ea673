package approle

import (
	"context"
	"crypto/hmac"
	"slices"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

var errBadLogin = core.Invalid("invalid role or secret ID")

// login exchanges a role ID (and, when the role binds one, a secret ID) for
// a token. Address checks come before a secret ID's use is consumed: the
// role's secret_id_bound_cidrs, the secret ID's cidr_list, then the token
// CIDRs the token would carry (a token that could not be used from here is
// refused now). Each is a 403 naming the list.
func (b *Backend) login(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	roleID, sid := d.String("role_id"), d.String("secret_id")
	if roleID == "" {
		return nil, core.Invalid("missing role_id")
	}
	nameB, err := b.env.Storage.Get(ctx, roleIDKey(roleID))
	if err != nil {
		return nil, err
	}
	if nameB == nil {
		return nil, errBadLogin
	}
	name := string(nameB)
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil || !hmac.Equal([]byte(hashID("role", r.RoleID)), []byte(hashID("role", roleID))) {
		return nil, errBadLogin
	}
	meta := map[string]string{"role_name": name}
	tokenCIDRs := r.BoundCIDRs
	var s secretID
	key := ""
	if r.BindSecretID {
		if sid == "" {
			return nil, core.Invalid("missing secret_id")
		}
		key = secretKey(name, hashID("secret", sid))
		ok, err := storage.GetJSON(ctx, b.env.Storage, key, &s)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errBadLogin
		}
		if !s.Expires.IsZero() && !b.env.Now().Before(s.Expires) {
			_ = b.env.Storage.Delete(ctx, key)
			return nil, errBadLogin
		}
		if !tokenutil.AddrAllowed(req.RemoteAddr, s.CIDRList) {
			return nil, tokenutil.ErrOutsideCIDRs(req.RemoteAddr, "the secret ID's cidr_list")
		}
		if len(s.TokenBoundCIDRs) > 0 {
			tokenCIDRs = s.TokenBoundCIDRs
		}
		for k, v := range s.Metadata {
			meta[k] = v
		}
	}
	if !tokenutil.AddrAllowed(req.RemoteAddr, r.SecretIDBoundCIDRs) {
		return nil, tokenutil.ErrOutsideCIDRs(req.RemoteAddr, "the role's secret_id_bound_cidrs")
	}
	if !tokenutil.AddrAllowed(req.RemoteAddr, tokenCIDRs) {
		return nil, tokenutil.ErrOutsideCIDRs(req.RemoteAddr, "token_bound_cidrs")
	}
	if key != "" && s.NumUses > 0 {
		s.NumUses--
		s.LastUpdated = b.env.Now().UTC()
		if s.NumUses == 0 {
			err = b.env.Storage.Delete(ctx, key)
		} else {
			err = storage.PutJSON(ctx, b.env.Storage, key, &s)
		}
		if err != nil {
			return nil, err
		}
	}
	a := r.Params.Auth(name, meta)
	a.BoundCIDRs = slices.Clone(tokenCIDRs)
	// The role id names the workload's entity alias, as in Vault.
	a.Alias = &core.Alias{Name: r.RoleID, Metadata: map[string]string{"role_name": name}}
	return &core.Response{Auth: a}, nil
}
