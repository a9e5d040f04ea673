package wrapping

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/token"
)

// rewrap answers sys/wrapping/rewrap: the wrapped response moves to a new
// wrapping token with the original creation path and TTL, and the old
// token is spent. The new token is made first and the old one spent last,
// so a failure never loses the response; if the old token was spent
// meanwhile, the new one is revoked. Control-group tokens cannot be
// rewrapped.
func (s *Service) rewrap(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	tok, _ := wrappingToken(req, d)
	if tok == "" {
		return nil, core.Invalid("missing \"token\" value in input")
	}
	e, err := s.cfg.Tokens.Lookup(ctx, tok)
	if err != nil {
		return nil, err
	}
	if e == nil || !e.IsWrapping() || !token.InNamespace(e, req.NS()) {
		return nil, ErrInvalidToken
	}
	var rec wrapRecord
	var stored storedResponse
	var cg cgRecord
	if ok, err := s.load(ctx, e.Hash, controlGroupKey, &cg); err != nil {
		return nil, err
	} else if ok {
		return nil, core.Invalid("control group request %s cannot be rewrapped", cg.ID)
	}
	if ok, err := s.load(ctx, e.Hash, cubbyhole.WrapInfoKey, &rec); err != nil || !ok {
		return nil, orInvalid(err)
	}
	if ok, err := s.load(ctx, e.Hash, cubbyhole.ResponseKey, &stored); err != nil || !ok {
		return nil, orInvalid(err)
	}
	ttl := time.Duration(rec.CreationTTL) * time.Second
	raw, ne, err := s.newToken(ctx, req, rec.CreationPath, ttl)
	if err != nil {
		return nil, err
	}
	nrec := rec
	nrec.CreationTime = ne.CreationTime
	if err := s.keep(ctx, ne, nrec, stored, nil); err != nil {
		return nil, err
	}
	found, err := s.cfg.Tokens.Claim(ctx, tok, func(*tokenEntry) error { return nil })
	if err != nil || !found {
		if rerr := s.cfg.Tokens.Revoke(ctx, ne.Hash); rerr != nil {
			s.cfg.Logger.Error("revoke the new wrapping token of a failed rewrap", "error", rerr)
		}
		return nil, orInvalid(err)
	}
	labelWrap(req, &rec)
	// As for Wrap: the client gets the new wrap_info only, the audit entry
	// the (HMAC'd) response too. It stays Restored: no post hook may issue
	// a lease for the token or secret it holds a second time.
	out := stored.restore()
	out.WrapInfo = &core.WrapInfo{Token: raw, Accessor: ne.Accessor, TTL: int(rec.CreationTTL), CreationTime: ne.CreationTime, CreationPath: rec.CreationPath}
	if out.Auth != nil {
		out.WrapInfo.WrappedAccessor = out.Auth.Accessor
	}
	return out, nil
}
