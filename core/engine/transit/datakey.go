package transit

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) datakeyRoute() framework.Route {
	return framework.Route{
		Pattern: "datakey/" + framework.GenericNameRegex("plaintext") + "/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":            nameField(),
			"plaintext":       {Type: framework.TypeString, Description: `"plaintext" returns the data key and its ciphertext, "wrapped" only the ciphertext.`},
			"context":         {Type: framework.TypeString, Description: "Base64 context for key derivation; required for derived keys."},
			"nonce":           {Type: framework.TypeString, Description: "Not supported."},
			"bits":            {Type: framework.TypeInt, Default: 256, Description: "Data key length in bits: 128, 256 or 512."},
			"key_version":     {Type: framework.TypeInt, Description: "Version to encrypt the data key with (0 = latest)."},
			"associated_data": {Type: framework.TypeString, Description: "Base64 associated data (AEAD key types only)."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.datakey},
		Help:       "Generate a random data key encrypted with a named key.",
	}
}

// datakey handles datakey/(plaintext|wrapped)/:name: a fresh random key of
// bits bits, encrypted like encrypt/:name would, returned with (plaintext)
// or without (wrapped) its base64 value.
func (b *Backend) datakey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	kind := d.String("plaintext")
	if kind != "plaintext" && kind != "wrapped" {
		return nil, core.Invalid("Invalid path, must be 'plaintext' or 'wrapped'")
	}
	bits := d.Int("bits")
	if bits != 128 && bits != 256 && bits != 512 {
		return nil, core.Invalid("invalid bit length %d: must be 128, 256 or 512", bits)
	}
	keyCtx, aad, err := itemCommon(singleItem(d, "context", "nonce", "associated_data"))
	if err != nil {
		return nil, err
	}
	p, err := b.load(ctx, st, d.String("name"))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.Invalid("encryption key not found")
	}
	key := make([]byte, bits/8)
	if _, err := io.ReadFull(b.randReader(), key); err != nil {
		return nil, fmt.Errorf("transit: data key: %w", err)
	}
	ct, ver, err := p.encrypt(d.Int("key_version"), keyCtx, key, aad, b.randReader())
	if err != nil {
		return nil, err
	}
	data := map[string]any{"ciphertext": ct, "key_version": ver}
	if kind == "plaintext" {
		data["plaintext"] = base64.StdEncoding.EncodeToString(key)
	}
	return &core.Response{Data: data}, nil
}
