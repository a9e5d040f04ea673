package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/token"
)

// otpLength is the length of a root token ("hvs." and 24 characters), and
// so of the one-time pad that encodes it, as in Vault.
const otpLength = 28

type genRootOp struct {
	otp   string
	round seal.Round
}

// generateRootRoutes are Vault's sys/generate-root/* with the OTP flow:
// attempt (start with an OTP, or let the server make one), update (one
// held share each), and the encoded token that `vigil operator
// generate-root -decode` (or Vault's CLI) turns back into the token. Like
// rekey they need no token and every call is audited without the share.
func (p sealPart) generateRootRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `generate-root/attempt`, Unauthenticated: true,
			Fields: map[string]*framework.FieldSchema{"otp": {Type: framework.TypeString, Withheld: true}, "pgp_key": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{
				core.OpRead: p.genRootStatus, core.OpUpdate: p.genRootInit, core.OpDelete: p.genRootCancel,
			}, Help: "Start, inspect or cancel a root token generation."},
		{Pattern: `generate-root/update`, Unauthenticated: true,
			Fields:     map[string]*framework.FieldSchema{"key": {Type: framework.TypeString, Withheld: true}, "nonce": {Type: framework.TypeString}},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: p.genRootUpdate},
			Help:       "Provide one held key share to the root token generation."},
	}
}

func (p sealPart) genRootData(op *genRootOp, required int) map[string]any {
	m := map[string]any{"nonce": "", "started": false, "progress": 0, "required": required, "complete": false,
		"encoded_token": "", "encoded_root_token": "", "pgp_fingerprint": "", "otp": "", "otp_length": otpLength}
	if op != nil {
		m["nonce"], m["started"], m["progress"] = op.round.Nonce(), true, op.round.Len()
	}
	return m
}

func (p sealPart) genRootStatus(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	_, t, err := p.s.seal.HeldThreshold(ctx)
	if err != nil {
		return nil, err
	}
	p.s.ops.mu.Lock()
	defer p.s.ops.mu.Unlock()
	return &core.Response{Bare: true, Data: p.genRootData(p.s.ops.genRoot, t)}, nil
}

func (p sealPart) genRootInit(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if d.String("pgp_key") != "" {
		return nil, core.Invalid("PGP-encrypted root tokens are not supported: use the OTP flow")
	}
	if p.s.barrier.Sealed() {
		return nil, core.ErrSealed
	}
	_, t, err := p.s.seal.HeldThreshold(ctx)
	if err != nil {
		return nil, err
	}
	otp := d.String("otp")
	generated := otp == ""
	if generated {
		if otp, err = randomBase62(otpLength); err != nil {
			return nil, err
		}
	} else if len(otp) != otpLength {
		return nil, core.Invalid("OTP string is wrong length: want %d characters", otpLength)
	}
	p.s.ops.mu.Lock()
	defer p.s.ops.mu.Unlock()
	if p.s.ops.genRoot != nil {
		return nil, core.Invalid("root generation already in progress (nonce %s); cancel it first", p.s.ops.genRoot.round.Nonce())
	}
	op := &genRootOp{otp: otp}
	op.round.Start()
	p.s.ops.genRoot = op
	summary := p.genRootData(op, t)
	body := p.genRootData(op, t)
	if generated {
		body["otp"] = otp // to the client only: the audit log never sees the pad
	}
	return rawJSON(summary, body)
}

func (p sealPart) genRootCancel(context.Context, *core.Request, *framework.FieldData) (*core.Response, error) {
	p.s.ops.mu.Lock()
	defer p.s.ops.mu.Unlock()
	if op := p.s.ops.genRoot; op != nil {
		op.round.Reset()
	}
	p.s.ops.genRoot = nil
	return nil, nil
}

func (p sealPart) genRootUpdate(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	key, err := shareKey(d)
	if err != nil {
		return nil, err
	}
	n, t, err := p.s.seal.HeldThreshold(ctx)
	if err != nil {
		return nil, err
	}
	p.s.ops.mu.Lock()
	defer p.s.ops.mu.Unlock()
	op := p.s.ops.genRoot
	if op == nil {
		return nil, core.Invalid("no root generation in progress")
	}
	if d.String("nonce") != op.round.Nonce() {
		return nil, core.Invalid("incorrect nonce")
	}
	share, err := p.s.decodeHeld(ctx, key)
	if err != nil {
		return nil, err
	}
	c, ok, err := p.s.identify(ctx, share)
	if err != nil {
		clear(share)
		return nil, fmt.Errorf("generate-root: %w", err)
	}
	if err := op.round.Add(share); err != nil {
		clear(share)
		return nil, err
	}
	data := p.genRootData(op, t)
	addShareInfo(data, c, ok)
	if op.round.Len() < t {
		return &core.Response{Bare: true, Data: data}, nil
	}
	// The round ends here whatever the outcome.
	p.s.ops.genRoot = nil
	defer op.round.Reset()
	_ = n
	if err := p.s.seal.VerifyHeldShares(ctx, op.round.Shares()); err != nil {
		return nil, err
	}
	raw, _, err := p.s.tokens.Create(ctx, token.CreateParams{Policies: []string{"root"}, DisplayName: "root", NoExpiry: true, Path: "auth/token/root", Orphan: true})
	if err != nil {
		return nil, fmt.Errorf("generate-root: create root token: %w", err)
	}
	enc := xorEncode(raw, op.otp)
	data["complete"], data["progress"], data["encoded_token"], data["encoded_root_token"] = true, t, enc, enc
	return &core.Response{Bare: true, Data: data}, nil
}

// xorEncode is Vault's encoding of a generated root token: the token XORed
// with the one-time pad, in unpadded standard base64.
func xorEncode(tok, otp string) string {
	out := make([]byte, len(tok))
	for i := range out {
		out[i] = tok[i] ^ otp[i%len(otp)]
	}
	return base64.RawStdEncoding.EncodeToString(out)
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomBase62(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(base62)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = base62[v.Int64()]
	}
	return string(b), nil
}
