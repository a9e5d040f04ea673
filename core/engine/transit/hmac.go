package transit

import (
	"context"
	"crypto"
	"crypto/hmac"
	"encoding/base64"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) hmacRoute() framework.Route {
	return framework.Route{
		Pattern: "hmac/" + framework.GenericNameRegex("name") + "(/" + framework.GenericNameRegex("urlalgorithm") + ")?",
		Fields: map[string]*framework.FieldSchema{
			"name":         nameField(),
			"urlalgorithm": {Type: framework.TypeString, Description: "Hash algorithm, from the path."},
			"algorithm":    {Type: framework.TypeString, Default: "sha2-256", Description: "sha1, sha2-224, sha2-256, sha2-384, sha2-512 or sha3-224..512."},
			"input":        {Type: framework.TypeString, Description: "Base64 input."},
			"key_version":  {Type: framework.TypeInt, Description: "Version to use (0 = latest); not below min_encryption_version."},
			"batch_input":  batchField(),
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.hmac},
		// Reads the key and changes nothing.
		SideEffectFree: []core.Operation{core.OpUpdate},
		Help:           "HMAC base64 input with a named key.",
	}
}

// hmacHash resolves the algorithm of hmac and HMAC verification: the path
// segment, else hash_algorithm (verify), else algorithm.
func hmacHash(d *framework.FieldData) (crypto.Hash, error) {
	name := d.String("urlalgorithm")
	if name == "" && d.Schema["hash_algorithm"] != nil && d.Has("hash_algorithm") {
		name = d.String("hash_algorithm")
	}
	if name == "" {
		name = d.String("algorithm")
	}
	if name == "" {
		name = "sha2-256"
	}
	h, ok := signHashes[name]
	if !ok || h == 0 {
		return 0, core.Invalid("unsupported algorithm %q", name)
	}
	return h, nil
}

// hmac handles hmac/:name(/:algorithm). Every key type can HMAC: hmac keys
// with their key, the others with their per-version HMAC key.
func (b *Backend) hmac(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	h, err := hmacHash(d)
	if err != nil {
		return nil, err
	}
	items, batch, err := batchInput(d)
	if err != nil {
		return nil, err
	}
	if !batch {
		if !d.Has("input") {
			return nil, core.Invalid("missing input for HMAC")
		}
		items = []map[string]any{singleItem(d, "input")}
	}
	p, err := b.load(ctx, st, d.String("name"))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.Invalid("encryption key not found")
	}
	ver := d.Int("key_version")
	switch {
	case ver == 0:
		ver = p.LatestVersion
	case ver < 0:
		return nil, core.Invalid("key version does not exist (cannot be negative)")
	case ver > p.LatestVersion:
		return nil, core.Invalid("key version does not exist; latest key version is %d", p.LatestVersion)
	case ver < p.MinEncryptionVersion, ver < p.MinDecryptionVersion:
		return nil, core.Invalid("cannot generate HMAC: version is too old (disallowed by policy)")
	}
	key, err := p.hmacKey(ver)
	if err != nil {
		return nil, err
	}
	f := func(it map[string]any) (map[string]any, error) {
		s, ok, err := itemString(it, "input")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, core.Invalid("missing input for HMAC")
		}
		input, err := decode64(s, "input")
		if err != nil {
			return nil, err
		}
		m := hmac.New(h.New, key)
		m.Write(input)
		return map[string]any{"hmac": prefix(ver) + base64.StdEncoding.EncodeToString(m.Sum(nil))}, nil
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

// verifyHMAC answers verify/:name for HMACs (the "hmac" member of the
// request or of every batch item).
func (b *Backend) verifyHMAC(p *policy, items []map[string]any, batch bool, d *framework.FieldData) (*core.Response, error) {
	h, err := hmacHash(d)
	if err != nil {
		return nil, err
	}
	f := func(it map[string]any) (map[string]any, error) {
		s, ok, err := itemString(it, "input")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, core.Invalid("missing input")
		}
		input, err := decode64(s, "input")
		if err != nil {
			return nil, err
		}
		mac, _, err := itemString(it, "hmac")
		if err != nil {
			return nil, err
		}
		ver, payload, err := parseVersioned(mac, "HMAC")
		if err != nil {
			return nil, err
		}
		if ver > p.LatestVersion {
			return nil, core.Invalid("invalid HMAC: version is too new")
		}
		if ver < p.MinDecryptionVersion {
			return nil, core.Invalid("cannot verify HMAC: version is too old (disallowed by policy)")
		}
		want, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			return nil, core.Invalid("unable to decode verification HMAC as base64: %v", err)
		}
		key, err := p.hmacKey(ver)
		if err != nil {
			return nil, err
		}
		m := hmac.New(h.New, key)
		m.Write(input)
		return map[string]any{"valid": hmac.Equal(m.Sum(nil), want)}, nil
	}
	return verifyRespond(items, batch, f)
}
