package totp

import (
	"context"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) codeRoute() framework.Route {
	return framework.Route{
		Pattern: `code/` + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the key."},
			"code": {Type: framework.TypeString, Description: "Code to validate."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.generateCode),
			core.OpUpdate: b.handler(b.validateCode),
		},
		Help: "Generate (read) or validate (write) a code.",
	}
}

func (st *state) mustKey(ctx context.Context, name string) (*keyEntry, error) {
	k, err := st.getKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, core.Invalid("unknown key: %s", name)
	}
	return k, nil
}

func (b *Backend) generateCode(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	k, err := st.mustKey(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	code, err := totp.GenerateCodeCustom(k.Key, st.now(), k.opts())
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "totp: generate code: %w", err)
	}
	return &core.Response{Data: map[string]any{"code": code}}, nil
}

// validateCode checks a code and, when valid, records it as used for as
// long as it could still validate, so that a code observed in transit
// cannot be replayed.
func (b *Backend) validateCode(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("name")
	k, err := st.mustKey(ctx, name)
	if err != nil {
		return nil, err
	}
	code := d.String("code")
	if code == "" {
		return nil, core.Invalid("the code value is required")
	}
	if len(code) != k.Digits.Length() {
		return nil, core.Invalid("invalid number of digits for the code")
	}
	now := st.now()
	usedKey := name + "\x00" + code
	b.usedMu.Lock()
	defer b.usedMu.Unlock()
	for key, until := range b.used {
		if !now.Before(until) {
			delete(b.used, key)
		}
	}
	if _, used := b.used[usedKey]; used {
		return nil, core.Invalid("code already used; wait until the next time period")
	}
	valid, err := totp.ValidateCustom(code, k.Key, now, k.opts())
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "totp: validate code: %w", err)
	}
	if valid {
		b.used[usedKey] = now.Add(time.Duration((k.Skew*2)+2) * time.Duration(k.Period) * time.Second)
	}
	return &core.Response{Data: map[string]any{"valid": valid}}, nil
}
