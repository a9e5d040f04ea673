package wrapping

import (
	"context"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/cubbyhole"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/token"
)

// wrappingToken is the token an unwrap or rewrap names: the body's
// "token" (a third party unwraps), else the client token itself.
func wrappingToken(req *core.Request, d *framework.FieldData) (tok string, thirdParty bool) {
	if t := d.String("token"); t != "" {
		return t, true
	}
	if p := req.Principal; p != nil {
		return p.ClientToken, false
	}
	return req.ClientToken, false
}

// labelWrap records on req what was wrapped and by whom.
func labelWrap(req *core.Request, rec *wrapRecord) {
	req.Label(core.LabelWrapRequestID, rec.RequestID)
	req.Label(core.LabelWrapCreationPath, rec.CreationPath)
	if rec.Actor != "" {
		req.Label(core.LabelWrappedBy, rec.Actor)
	}
	if rec.EntityID != "" {
		req.Label(core.LabelWrappedByEntityID, rec.EntityID)
	}
}

// unwrap answers sys/wrapping/unwrap: the wrapped response, once. The
// token is spent under the token store's lock, so of two concurrent
// unwraps one gets the response and the other ErrInvalidToken. A token
// that is not a wrapping token is refused and left alone. A control-group
// token executes its approved request instead (see execute).
func (s *Service) unwrap(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	tok, third := wrappingToken(req, d)
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
	var cg cgRecord
	if ok, err := s.load(ctx, e.Hash, controlGroupKey, &cg); err != nil {
		return nil, err
	} else if ok {
		return s.execute(ctx, req, tok, third, &cg)
	}
	var rec wrapRecord
	var stored storedResponse
	found, err := s.cfg.Tokens.Claim(ctx, tok, func(e *tokenEntry) error {
		if !e.IsWrapping() {
			return ErrInvalidToken
		}
		if ok, err := s.load(ctx, e.Hash, cubbyhole.WrapInfoKey, &rec); err != nil || !ok {
			return orInvalid(err)
		}
		if ok, err := s.load(ctx, e.Hash, cubbyhole.ResponseKey, &stored); err != nil || !ok {
			return orInvalid(err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrInvalidToken
	}
	labelWrap(req, &rec)
	return stored.restore(), nil
}

// orInvalid is err, or ErrInvalidToken when there is none (the token holds
// nothing to unwrap).
func orInvalid(err error) error {
	if err != nil {
		return err
	}
	return ErrInvalidToken
}
