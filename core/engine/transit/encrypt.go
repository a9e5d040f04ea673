package transit

import (
	"context"
	"encoding/base64"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// cryptFields are the fields shared by encrypt, decrypt and rewrap.
func cryptFields(extra map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"name":                          nameField(),
		"context":                       {Type: framework.TypeString, Description: "Base64 context for key derivation; required for derived keys."},
		"nonce":                         {Type: framework.TypeString, Description: "Not supported: nonces are random, or derived for convergent keys."},
		"associated_data":               {Type: framework.TypeString, Description: "Base64 associated data, authenticated but not encrypted (AEAD key types only)."},
		"batch_input":                   batchField(),
		"partial_failure_response_code": partialFailureField(),
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func (b *Backend) encryptRoute() framework.Route {
	return framework.Route{
		Pattern: "encrypt/" + framework.GenericNameRegex("name"),
		Fields: cryptFields(map[string]*framework.FieldSchema{
			"plaintext":             {Type: framework.TypeString, Description: "Base64 plaintext to encrypt."},
			"key_version":           {Type: framework.TypeInt, Description: "Version to encrypt with (0 = latest); not below min_encryption_version."},
			"type":                  {Type: framework.TypeString, Default: string(defaultType), Description: "Type of the key created when it does not exist yet."},
			"convergent_encryption": {Type: framework.TypeBool, Description: "Create the missing key with convergent encryption (needs context)."},
		}),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.encrypt},
		// Key creation happens only as OpCreate (the existence check), so
		// OpUpdate reads the key and changes nothing.
		SideEffectFree: []core.Operation{core.OpUpdate},
		ExistenceCheck: b.keyExists,
		Help:           "Encrypt base64 plaintext (or a batch) with a named key, creating the key on first use.",
	}
}

// warnCreatedBeforehand is Vault's warning for an encrypt that was to
// create its key when another request had just created it.
const warnCreatedBeforehand = "Attempted creation of the key during the encrypt operation, but it was created beforehand"

// keyExists reports whether the key named in the path exists. It makes a
// write to a missing key an OpCreate, which encrypt answers by creating it.
func (b *Backend) keyExists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	st, err := b.state()
	if err != nil {
		return false, err
	}
	raw, err := st.storage.Get(ctx, policyPrefix+d.String("name"))
	if err != nil {
		return false, err
	}
	return raw != nil, nil
}

// singleItem turns the top-level fields of a non-batch request into the
// one batch item it stands for.
func singleItem(d *framework.FieldData, fields ...string) map[string]any {
	it := map[string]any{}
	for _, k := range fields {
		if d.Has(k) {
			it[k] = d.Get(k)
		}
	}
	return it
}

// item64 returns the base64-decoded member k of an item (nil when absent
// or empty).
func item64(it map[string]any, k string) ([]byte, error) {
	s, _, err := itemString(it, k)
	if err != nil || s == "" {
		return nil, err
	}
	return decode64(s, k)
}

// itemCommon reads the members shared by encrypt, decrypt and rewrap items.
func itemCommon(it map[string]any) (keyCtx, aad []byte, err error) {
	if nonce, _, err := itemString(it, "nonce"); err != nil || nonce != "" {
		if err == nil {
			err = core.Invalid("provided nonce not allowed for this key")
		}
		return nil, nil, err
	}
	if keyCtx, err = item64(it, "context"); err != nil {
		return nil, nil, err
	}
	aad, err = item64(it, "associated_data")
	return keyCtx, aad, err
}

// contextAllOrNone enforces Vault's rule that a batch sets context in
// every item or in none; it returns whether context is set.
func contextAllOrNone(items []map[string]any) (bool, error) {
	set := func(it map[string]any) bool { s, _, _ := itemString(it, "context"); return s != "" }
	first := set(items[0])
	for _, it := range items[1:] {
		if set(it) != first {
			return false, core.Invalid("context should be set either in all the request blocks or in none")
		}
	}
	return first, nil
}

// encrypt handles encrypt/:name. On OpCreate (the key does not exist) it
// creates the key first, derived when the request carries context.
func (b *Backend) encrypt(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	items, batch, err := batchInput(d)
	if err != nil {
		return nil, err
	}
	if !batch {
		if !d.Has("plaintext") {
			return nil, core.Invalid("missing plaintext to encrypt")
		}
		items = []map[string]any{singleItem(d, "plaintext", "context", "nonce", "key_version", "associated_data")}
	}
	contextSet, err := contextAllOrNone(items)
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	p, err := b.load(ctx, st, name)
	if err != nil {
		return nil, err
	}
	var warning string
	if req.Operation == core.OpCreate {
		warning = warnCreatedBeforehand
	}
	if p == nil {
		if req.Operation != core.OpCreate {
			return nil, core.Invalid("encryption key not found")
		}
		if p, warning, err = b.upsertForEncrypt(ctx, st, name, d, contextSet); err != nil {
			return nil, err
		}
	}
	f := func(it map[string]any) (map[string]any, error) {
		s, ok, err := itemString(it, "plaintext")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, core.Invalid("missing plaintext to encrypt")
		}
		plaintext, err := decode64(s, "plaintext")
		if err != nil {
			return nil, err
		}
		keyCtx, aad, err := itemCommon(it)
		if err != nil {
			return nil, err
		}
		kv, err := itemInt(it, "key_version")
		if err != nil {
			return nil, err
		}
		ct, ver, err := p.encrypt(kv, keyCtx, plaintext, aad, b.randReader())
		if err != nil {
			return nil, err
		}
		return map[string]any{"ciphertext": ct, "key_version": ver}, nil
	}
	resp, err := respond(items, batch, d, f)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		resp.AddWarning(warning)
	}
	return resp, nil
}

// upsertForEncrypt creates the key an encrypt request names. It returns
// the warning to give when another request created it first.
func (b *Backend) upsertForEncrypt(ctx context.Context, st *state, name string, d *framework.FieldData, contextSet bool) (*policy, string, error) {
	typeName := d.String("type")
	t, ok := parseKeyType(typeName)
	switch {
	case !ok:
		return nil, "", core.Invalid("unknown key type %s", typeName)
	case !t.encryption():
		return nil, "", core.Invalid("key type %s not supported for this operation", t)
	}
	o := createOptions{derived: contextSet, convergent: d.Bool("convergent_encryption")}
	if o.convergent && !contextSet {
		return nil, "", core.Invalid("convergent encryption requires derivation to be enabled, so context is required")
	}
	if err := o.check(t); err != nil {
		return nil, "", err
	}
	p, created, err := b.upsert(ctx, st, name, t, o)
	if err != nil || created {
		return p, "", err
	}
	return p, warnCreatedBeforehand, nil
}

func (b *Backend) decryptRoute() framework.Route {
	return framework.Route{
		Pattern: "decrypt/" + framework.GenericNameRegex("name"),
		Fields: cryptFields(map[string]*framework.FieldSchema{
			"ciphertext": {Type: framework.TypeString, Description: "The vault:v<N>:... ciphertext to decrypt."},
		}),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.decrypt},
		// Decrypting reads the key and changes nothing.
		SideEffectFree: []core.Operation{core.OpUpdate},
		Help:           "Decrypt a ciphertext (or a batch) with a named key; the plaintext comes back base64-encoded.",
	}
}

func (b *Backend) rewrapRoute() framework.Route {
	return framework.Route{
		Pattern: "rewrap/" + framework.GenericNameRegex("name"),
		Fields: cryptFields(map[string]*framework.FieldSchema{
			"ciphertext":  {Type: framework.TypeString, Description: "The vault:v<N>:... ciphertext to re-encrypt."},
			"key_version": {Type: framework.TypeInt, Description: "Version to re-encrypt with (0 = latest)."},
		}),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.rewrap},
		Help:       "Re-encrypt a ciphertext with the latest (or a given) key version without revealing the plaintext.",
	}
}

// cryptItems returns the items of a decrypt or rewrap request.
func cryptItems(d *framework.FieldData, op string, fields ...string) ([]map[string]any, bool, error) {
	items, batch, err := batchInput(d)
	if err != nil || batch {
		return items, batch, err
	}
	if !d.Has("ciphertext") {
		return nil, false, core.Invalid("missing ciphertext to %s", op)
	}
	return []map[string]any{singleItem(d, fields...)}, false, nil
}

// itemDecrypt decrypts one decrypt or rewrap item.
func itemDecrypt(p *policy, it map[string]any, op string) (plain, keyCtx, aad []byte, err error) {
	ct, ok, err := itemString(it, "ciphertext")
	if err != nil {
		return nil, nil, nil, err
	}
	if !ok {
		return nil, nil, nil, core.Invalid("missing ciphertext to %s", op)
	}
	if keyCtx, aad, err = itemCommon(it); err != nil {
		return nil, nil, nil, err
	}
	plain, err = p.decrypt(ct, keyCtx, aad)
	return plain, keyCtx, aad, err
}

// respond runs f on the single item, or on each item of a batch.
func respond(items []map[string]any, batch bool, d *framework.FieldData, f func(map[string]any) (map[string]any, error)) (*core.Response, error) {
	if batch {
		return runBatch(items, d, f)
	}
	data, err := f(items[0])
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: data}, nil
}

// decrypt handles decrypt/:name.
func (b *Backend) decrypt(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	items, batch, err := cryptItems(d, "decrypt", "ciphertext", "context", "nonce", "associated_data")
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
	return respond(items, batch, d, func(it map[string]any) (map[string]any, error) {
		plain, _, _, err := itemDecrypt(p, it, "decrypt")
		if err != nil {
			return nil, err
		}
		return map[string]any{"plaintext": base64.StdEncoding.EncodeToString(plain)}, nil
	})
}

// rewrap handles rewrap/:name: decrypt, then encrypt with key_version.
func (b *Backend) rewrap(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	items, batch, err := cryptItems(d, "rewrap", "ciphertext", "context", "nonce", "associated_data", "key_version")
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
	return respond(items, batch, d, func(it map[string]any) (map[string]any, error) {
		plain, keyCtx, aad, err := itemDecrypt(p, it, "rewrap")
		if err != nil {
			return nil, err
		}
		kv, err := itemInt(it, "key_version")
		if err != nil {
			return nil, err
		}
		ct, ver, err := p.encrypt(kv, keyCtx, plain, aad, b.randReader())
		if err != nil {
			return nil, err
		}
		return map[string]any{"ciphertext": ct, "key_version": ver}, nil
	})
}
