package transit

import (
	"context"
	"encoding/base64"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// signFields are the fields shared by sign and verify.
func signFields(extra map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"name":                 nameField(),
		"input":                {Type: framework.TypeString, Description: "Base64 input."},
		"context":              {Type: framework.TypeString, Description: "Base64 context for key derivation (derived ed25519 keys)."},
		"urlalgorithm":         {Type: framework.TypeString, Description: "Hash algorithm, from the path."},
		"hash_algorithm":       {Type: framework.TypeString, Default: "sha2-256", Description: "sha1, sha2-224, sha2-256, sha2-384, sha2-512, sha3-224..512, or none (prehashed pkcs1v15 only). Ignored by ed25519."},
		"algorithm":            {Type: framework.TypeString, Description: `Deprecated: use "hash_algorithm".`},
		"prehashed":            {Type: framework.TypeBool, Description: "The input is already a digest made with hash_algorithm (ECDSA and RSA)."},
		"signature_algorithm":  {Type: framework.TypeString, Description: `RSA only: "pss" (default) or "pkcs1v15".`},
		"marshaling_algorithm": {Type: framework.TypeString, Default: "asn1", Description: `"asn1" (default) or "jws" (r||s for ECDSA, unpadded base64url).`},
		"salt_length":          {Type: framework.TypeString, Default: "auto", Description: `RSA PSS salt length: "auto", "hash" or a byte count.`},
		"batch_input":          batchField(),
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func (b *Backend) signRoute() framework.Route {
	return framework.Route{
		Pattern: "sign/" + framework.GenericNameRegex("name") + "(/" + framework.GenericNameRegex("urlalgorithm") + ")?",
		Fields: signFields(map[string]*framework.FieldSchema{
			"key_version": {Type: framework.TypeInt, Description: "Version to sign with (0 = latest); not below min_encryption_version."},
		}),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.sign},
		// Reads the key and changes nothing.
		SideEffectFree: []core.Operation{core.OpUpdate},
		Help:           "Sign base64 input with a named ed25519, ECDSA or RSA key.",
	}
}

func (b *Backend) verifyRoute() framework.Route {
	return framework.Route{
		Pattern: "verify/" + framework.GenericNameRegex("name") + "(/" + framework.GenericNameRegex("urlalgorithm") + ")?",
		Fields: signFields(map[string]*framework.FieldSchema{
			"signature": {Type: framework.TypeString, Description: "The vault:v<N>:... signature to verify."},
			"hmac":      {Type: framework.TypeString, Description: "The vault:v<N>:... HMAC to verify."},
		}),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.verify},
		// Reads the key and changes nothing.
		SideEffectFree: []core.Operation{core.OpUpdate},
		Help:           "Verify a signature or an HMAC made with a named key.",
	}
}

// signOpts reads the signing knobs of a sign or verify request.
func signOpts(d *framework.FieldData) (signOptions, error) {
	name := d.String("urlalgorithm")
	if name == "" {
		name = d.String("hash_algorithm")
		if !d.Has("hash_algorithm") && d.Has("algorithm") {
			name = d.String("algorithm")
		}
	}
	h, ok := signHashes[name]
	if !ok {
		return signOptions{}, core.Invalid("invalid hash algorithm %q", name)
	}
	o := signOptions{hash: h, prehashed: d.Bool("prehashed"), rsaAlg: d.String("signature_algorithm")}
	switch m := d.String("marshaling_algorithm"); m {
	case "asn1":
	case "jws":
		o.jws = true
	default:
		return signOptions{}, core.Invalid("invalid marshaling type %q", m)
	}
	switch o.rsaAlg {
	case "":
		o.rsaAlg = "pss"
	case "pss", "pkcs1v15":
	default:
		return signOptions{}, core.Invalid("unsupported rsa signature algorithm %s", o.rsaAlg)
	}
	salt, err := parseSaltLength(d.String("salt_length"))
	if err != nil {
		return signOptions{}, err
	}
	o.saltLength = salt
	if h == 0 && (!o.prehashed || o.rsaAlg != "pkcs1v15") {
		return signOptions{}, core.Invalid("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")
	}
	return o, nil
}

// itemInputs reads the base64 input and context of a sign or verify item.
func itemInputs(it map[string]any, batch bool) (input, keyCtx []byte, err error) {
	s, ok, err := itemString(it, "input")
	if err != nil {
		return nil, nil, err
	}
	if !ok && batch {
		return nil, nil, core.Invalid("missing input")
	}
	if input, err = decode64(s, "input"); err != nil {
		return nil, nil, err
	}
	keyCtx, err = item64(it, "context")
	return input, keyCtx, err
}

// sign handles sign/:name(/:algorithm).
func (b *Backend) sign(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	o, err := signOpts(d)
	if err != nil {
		return nil, err
	}
	items, batch, err := batchInput(d)
	if err != nil {
		return nil, err
	}
	if !batch {
		items = []map[string]any{singleItem(d, "input", "context")}
	}
	p, err := b.load(ctx, st, d.String("name"))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.Invalid("signing key not found")
	}
	if !p.Type.signing() {
		return nil, core.Invalid("key type %s does not support signing", p.Type)
	}
	ver := d.Int("key_version")
	f := func(it map[string]any) (map[string]any, error) {
		input, keyCtx, err := itemInputs(it, batch)
		if err != nil {
			return nil, err
		}
		sig, used, pub, err := p.sign(ver, keyCtx, input, o)
		if err != nil {
			return nil, err
		}
		res := map[string]any{"signature": sig, "key_version": used}
		if pub != nil {
			res["public_key"] = base64.StdEncoding.EncodeToString(pub)
		}
		return res, nil
	}
	if batch {
		return runBatchOK(items, f)
	}
	data, err := f(items[0])
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: data}, nil
}

// verify handles verify/:name(/:algorithm): signatures, or HMACs when the
// request (every batch item) carries "hmac" instead of "signature".
func (b *Backend) verify(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	items, batch, err := batchInput(d)
	if err != nil {
		return nil, err
	}
	if !batch {
		if d.Has("signature") && d.Has("hmac") {
			return nil, core.Invalid("provide one of 'signature' or 'hmac'")
		}
		items = []map[string]any{singleItem(d, "input", "context", "signature", "hmac")}
	}
	sigs, macs, missing := 0, 0, 0
	for _, it := range items {
		switch {
		case it["signature"] != nil:
			sigs++
		case it["hmac"] != nil:
			macs++
		default:
			missing++
		}
	}
	switch {
	case !batch && missing > 0:
		return nil, core.Invalid("neither a 'signature' nor an 'hmac' were given to verify")
	case sigs > 0 && macs > 0:
		return nil, core.Invalid("elements of batch_input must all provide 'signature' or all provide 'hmac'")
	case missing > 0 && sigs > 0:
		return nil, core.Invalid("some elements of batch_input are missing 'signature'")
	case missing > 0 && macs > 0:
		return nil, core.Invalid("some elements of batch_input are missing 'hmac'")
	case missing > 0:
		return nil, core.Invalid("no batch_input elements have 'signature' or 'hmac'")
	}
	p, err := b.load(ctx, st, d.String("name"))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.Invalid("signature verification key not found")
	}
	if macs > 0 {
		return b.verifyHMAC(p, items, batch, d)
	}
	if !p.Type.signing() {
		return nil, core.Invalid("key type %s does not support verification", p.Type)
	}
	o, err := signOpts(d)
	if err != nil {
		return nil, err
	}
	return verifyRespond(items, batch, func(it map[string]any) (map[string]any, error) {
		input, keyCtx, err := itemInputs(it, batch)
		if err != nil {
			return nil, err
		}
		sig, _, err := itemString(it, "signature")
		if err != nil {
			return nil, err
		}
		valid, err := p.verify(sig, keyCtx, input, o)
		if err != nil {
			return nil, err
		}
		return map[string]any{"valid": valid}, nil
	})
}

// verifyRespond answers a verification: the single result, or the batch
// results, where a failed item is {"valid": false, "error": ...}.
func verifyRespond(items []map[string]any, batch bool, f func(map[string]any) (map[string]any, error)) (*core.Response, error) {
	if !batch {
		data, err := f(items[0])
		if err != nil {
			return nil, err
		}
		return &core.Response{Data: data}, nil
	}
	return runBatchOK(items, func(it map[string]any) (map[string]any, error) {
		res, err := f(it)
		if core.CodeOf(err) == core.CodeInvalid {
			return map[string]any{"valid": false, "error": core.ClientMessage(err)}, nil
		}
		return res, err
	})
}
