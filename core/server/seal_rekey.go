package server

import (
	"context"
	"fmt"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/seal"
)

// rekeyRoutes are Vault's sys/rekey/* (the Shamir unseal key) and
// sys/rekey-recovery-key/* (an auto seal's recovery key). As in Vault they
// need no token — the shares are the credential — and every call is
// audited: the request without the share (a Withheld field), the response
// with the share's number and holder and the progress. The new shares go to
// the client only, never into the audit log.
func (p sealPart) rekeyRoutes() []framework.Route {
	var out []framework.Route
	for _, t := range []struct {
		prefix   string
		recovery bool
	}{{"rekey", false}, {"rekey-recovery-key", true}} {
		rec := t.recovery
		out = append(out,
			framework.Route{Pattern: t.prefix + `/init`, Unauthenticated: true,
				Fields: map[string]*framework.FieldSchema{
					"secret_shares": {Type: framework.TypeInt}, "secret_threshold": {Type: framework.TypeInt},
					"pgp_keys": {Type: framework.TypeCommaStringSlice}, "backup": {Type: framework.TypeBool},
					"require_verification": {Type: framework.TypeBool}, "key_holders": {Type: framework.TypeCommaStringSlice},
					"nonce": {Type: framework.TypeString},
				},
				Operations: map[core.Operation]framework.HandlerFunc{
					core.OpRead: func(ctx context.Context, r *core.Request, d *framework.FieldData) (*core.Response, error) {
						return p.rekeyStatus(ctx, rec)
					},
					core.OpUpdate: func(ctx context.Context, r *core.Request, d *framework.FieldData) (*core.Response, error) {
						return p.rekeyInit(ctx, rec, d)
					},
					core.OpDelete: func(ctx context.Context, r *core.Request, d *framework.FieldData) (*core.Response, error) {
						return nil, p.s.seal.RekeyCancel(rec, d.String("nonce"))
					},
				}, Help: "Start, inspect or cancel a rekey."},
			framework.Route{Pattern: t.prefix + `/update`, Unauthenticated: true,
				Fields: map[string]*framework.FieldSchema{"key": {Type: framework.TypeString, Withheld: true}, "nonce": {Type: framework.TypeString}},
				Operations: map[core.Operation]framework.HandlerFunc{
					core.OpUpdate: func(ctx context.Context, r *core.Request, d *framework.FieldData) (*core.Response, error) {
						return p.rekeyUpdate(ctx, rec, d)
					},
				}, Help: "Provide one current key share to the rekey."},
		)
	}
	return out
}

func rekeyStatusData(nonce string, started bool, t, n, progress, required int) map[string]any {
	return map[string]any{"nonce": nonce, "started": started, "t": t, "n": n, "progress": progress, "required": required,
		"pgp_fingerprints": nil, "backup": false, "verification_required": false, "verification_nonce": ""}
}

func rekeyParams(d *framework.FieldData) seal.RekeyParams {
	return seal.RekeyParams{SecretShares: d.Int("secret_shares"), SecretThreshold: d.Int("secret_threshold"), Holders: d.Strings("key_holders")}
}

func (p sealPart) rekeyStatus(ctx context.Context, recovery bool) (*core.Response, error) {
	st, err := p.s.seal.RekeyStatus(ctx, recovery)
	if err != nil {
		return nil, err
	}
	return &core.Response{Bare: true, Data: rekeyStatusData(st.Nonce, st.Started, st.T, st.N, st.Progress, st.Required)}, nil
}

func (p sealPart) rekeyInit(ctx context.Context, recovery bool, d *framework.FieldData) (*core.Response, error) {
	if len(d.Strings("pgp_keys")) > 0 || d.Bool("backup") {
		return nil, core.Invalid("PGP-encrypted key shares and backups are not supported")
	}
	if d.Bool("require_verification") {
		return nil, core.Invalid("rekey verification is not supported")
	}
	st, err := p.s.seal.RekeyInit(ctx, recovery, rekeyParams(d))
	if err != nil {
		return nil, err
	}
	return &core.Response{Bare: true, Data: rekeyStatusData(st.Nonce, st.Started, st.T, st.N, st.Progress, st.Required)}, nil
}

func (p sealPart) rekeyUpdate(ctx context.Context, recovery bool, d *framework.FieldData) (*core.Response, error) {
	key, err := shareKey(d)
	if err != nil {
		return nil, err
	}
	share, err := p.s.decodeHeld(ctx, key)
	if err != nil {
		return nil, err
	}
	c, ok, err := p.s.identify(ctx, share)
	clear(share)
	if err != nil {
		return nil, fmt.Errorf("rekey: %w", err)
	}
	st, res, err := p.s.seal.RekeyUpdate(ctx, recovery, key, d.String("nonce"))
	if err != nil {
		return nil, err
	}
	if res == nil {
		data := rekeyStatusData(st.Nonce, st.Started, st.T, st.N, st.Progress, st.Required)
		addShareInfo(data, c, ok)
		return &core.Response{Bare: true, Data: data}, nil
	}
	hexKeys, b64Keys := encodeShares(res.Keys)
	n, t := res.Config.Held()
	summary := map[string]any{"nonce": st.Nonce, "complete": true, "new_shares": n, "new_threshold": t, "share_set": res.Shares.ID}
	addShareInfo(summary, c, ok)
	body := map[string]any{"nonce": st.Nonce, "complete": true, "keys": hexKeys, "keys_base64": b64Keys,
		"pgp_fingerprints": nil, "backup": false, "verification_required": false}
	if len(res.Config.Holders) > 0 {
		summary["key_holders"], body["key_holders"] = res.Config.Holders, res.Config.Holders
	}
	return rawJSON(summary, body)
}
