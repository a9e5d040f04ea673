package totp

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"image/png"
	"net/url"
	"strconv"
	"strings"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// keyEntry is a stored key. Key is the base32 secret (never returned).
type keyEntry struct {
	Key         string        `json:"key"`
	Issuer      string        `json:"issuer"`
	AccountName string        `json:"account_name"`
	Period      uint          `json:"period"`
	Algorithm   otp.Algorithm `json:"algorithm"`
	Digits      otp.Digits    `json:"digits"`
	Skew        uint          `json:"skew"`
}

func (k *keyEntry) opts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: k.Period, Skew: k.Skew, Digits: k.Digits, Algorithm: k.Algorithm}
}

func (b *Backend) keysListRoute() framework.Route {
	return framework.Route{
		Pattern: `keys/?`,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpList: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				keys, err := st.storage.List(ctx, keysPrefix)
				if err != nil {
					return nil, err
				}
				if len(keys) == 0 {
					return nil, core.ErrNotFound
				}
				return &core.Response{Data: map[string]any{"keys": keys}}, nil
			}),
		},
		Help: "List keys.",
	}
}

func (b *Backend) keyRoute() framework.Route {
	return framework.Route{
		Pattern: `keys/` + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":         {Type: framework.TypeString, Description: "Name of the key."},
			"generate":     {Type: framework.TypeBool, Description: "Generate the key (this mount is the authenticator's source of truth)."},
			"exported":     {Type: framework.TypeBool, Default: true, Description: "Return the url and QR code of a generated key."},
			"key_size":     {Type: framework.TypeInt, Default: 20, Description: "Size in bytes of a generated secret."},
			"url":          {Type: framework.TypeString, Description: "otpauth:// url of a key to import."},
			"key":          {Type: framework.TypeString, Description: "Base32 secret of a key to import."},
			"issuer":       {Type: framework.TypeString, Description: "Issuer name."},
			"account_name": {Type: framework.TypeString, Description: "Account name."},
			"period":       {Type: framework.TypeDurationSecond, Default: 30, Description: "Seconds each code is valid for."},
			"algorithm":    {Type: framework.TypeString, Default: "SHA1", Description: "SHA1, SHA256 or SHA512."},
			"digits":       {Type: framework.TypeInt, Default: 6, Description: "6 or 8."},
			"skew":         {Type: framework.TypeInt, Default: 1, Description: "Periods of skew accepted either way: 0 or 1."},
			"qr_size":      {Type: framework.TypeInt, Default: 200, Description: "QR code size in pixels (0: no QR code)."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readKey),
			core.OpUpdate: b.handler(b.writeKey),
			core.OpDelete: b.handler(func(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				return nil, st.storage.Delete(ctx, keysPrefix+d.String("name"))
			}),
		},
		ExistenceCheck: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
			st, err := b.state()
			if err != nil {
				return false, err
			}
			k, err := st.getKey(ctx, d.String("name"))
			return k != nil, err
		},
		Help: "Generate, import, read and delete TOTP keys.",
	}
}

func (st *state) getKey(ctx context.Context, name string) (*keyEntry, error) {
	var k keyEntry
	ok, err := storage.GetJSON(ctx, st.storage, keysPrefix+name, &k)
	if err != nil || !ok {
		return nil, err
	}
	return &k, nil
}

func (b *Backend) readKey(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	k, err := st.getKey(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{
		"issuer":       k.Issuer,
		"account_name": k.AccountName,
		"period":       k.Period,
		"algorithm":    k.Algorithm.String(),
		"digits":       k.Digits.Length(),
	}}, nil
}

// keyParams are the key settings of a write, after the url (if any)
// overrode the fields it carries.
type keyParams struct {
	secret, issuer, account, algorithm string
	period, digits                     int
}

// fromURL applies an otpauth:// url's values, as Vault does: the url's
// issuer parameter, else the label's "issuer:" prefix; the label's account;
// secret, period, digits and algorithm when present.
func (p *keyParams) fromURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return core.Invalid("an error occurred while parsing url string")
	}
	if u.Scheme != "otpauth" || u.Host != "totp" {
		return core.Invalid("url must be an otpauth://totp/ url")
	}
	q := u.Query()
	label := strings.TrimPrefix(u.Path, "/")
	before, after, hasIssuer := strings.Cut(label, ":")
	switch {
	case q.Get("issuer") != "":
		p.issuer = q.Get("issuer")
	case hasIssuer:
		p.issuer = before
	}
	if hasIssuer {
		p.account = after
	} else {
		p.account = label
	}
	p.secret = q.Get("secret")
	if v := q.Get("period"); v != "" {
		if p.period, err = strconv.Atoi(v); err != nil {
			return core.Invalid("an error occurred while parsing period value in url")
		}
	}
	if v := q.Get("digits"); v != "" {
		if p.digits, err = strconv.Atoi(v); err != nil {
			return core.Invalid("an error occurred while parsing digits value in url")
		}
	}
	if v := q.Get("algorithm"); v != "" {
		p.algorithm = v
	}
	return nil
}

// writeKey generates or imports a key.
func (b *Backend) writeKey(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	generate := d.Bool("generate")
	p := keyParams{
		secret: d.String("key"), issuer: d.String("issuer"), account: d.String("account_name"),
		algorithm: d.String("algorithm"), period: int(d.Duration("period").Seconds()), digits: d.Int("digits"),
	}
	inputURL := d.String("url")
	if generate && p.secret != "" {
		return nil, core.Invalid("a key should not be passed if generate is true")
	}
	if generate && inputURL != "" {
		return nil, core.Invalid("a url should not be passed if generate is true")
	}
	if inputURL != "" {
		if err := p.fromURL(inputURL); err != nil {
			return nil, err
		}
	}
	e := &keyEntry{Issuer: p.issuer, AccountName: p.account}
	switch p.digits {
	case 6:
		e.Digits = otp.DigitsSix
	case 8:
		e.Digits = otp.DigitsEight
	default:
		return nil, core.Invalid("the digits value can only be 6 or 8")
	}
	switch strings.ToUpper(p.algorithm) {
	case "SHA1":
		e.Algorithm = otp.AlgorithmSHA1
	case "SHA256":
		e.Algorithm = otp.AlgorithmSHA256
	case "SHA512":
		e.Algorithm = otp.AlgorithmSHA512
	default:
		return nil, core.Invalid("the algorithm value is not valid")
	}
	if p.period <= 0 {
		return nil, core.Invalid("the period value must be greater than zero")
	}
	e.Period = uint(p.period)
	switch skew := d.Int("skew"); skew {
	case 0, 1:
		e.Skew = uint(skew)
	default:
		return nil, core.Invalid("the skew value must be 0 or 1")
	}
	qrSize, keySize := d.Int("qr_size"), d.Int("key_size")
	if qrSize < 0 {
		return nil, core.Invalid("the qr_size value must be greater than or equal to zero")
	}
	if keySize <= 0 {
		return nil, core.Invalid("the key_size value must be greater than zero")
	}

	var resp *core.Response
	if generate {
		if e.AccountName == "" {
			return nil, core.Invalid("the account_name value is required for generated keys")
		}
		if e.Issuer == "" {
			return nil, core.Invalid("the issuer value is required for generated keys")
		}
		k, err := totp.Generate(totp.GenerateOpts{Issuer: e.Issuer, AccountName: e.AccountName, Period: e.Period,
			Digits: e.Digits, Algorithm: e.Algorithm, SecretSize: uint(keySize), Rand: b.random()})
		if err != nil {
			return nil, core.Errorf(core.CodeInternal, "totp: generate key: %w", err)
		}
		e.Key = k.Secret()
		if d.Bool("exported") {
			data := map[string]any{"url": k.String()}
			if qrSize > 0 {
				img, err := k.Image(qrSize, qrSize)
				if err != nil {
					return nil, core.Invalid("qr_size %d is too small for this key's QR code: %v", qrSize, err)
				}
				var buf bytes.Buffer
				if err := png.Encode(&buf, img); err != nil {
					return nil, core.Errorf(core.CodeInternal, "totp: encode QR code: %w", err)
				}
				data["barcode"] = base64.StdEncoding.EncodeToString(buf.Bytes())
			}
			resp = &core.Response{Data: data}
		}
	} else {
		secret, err := normaliseSecret(p.secret)
		if err != nil {
			return nil, err
		}
		e.Key = secret
	}
	if err := storage.PutJSON(ctx, st.storage, keysPrefix+d.String("name"), e); err != nil {
		return nil, err
	}
	return resp, nil
}

// normaliseSecret checks an imported base32 secret (case and padding
// tolerated, as authenticator apps print them) and returns it upper-case
// with padding.
func normaliseSecret(s string) (string, error) {
	s = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	if s == "" {
		return "", core.Invalid("the key value is required")
	}
	if i := len(s) % 8; i != 0 {
		s += strings.Repeat("=", 8-i)
	}
	raw, err := base32.StdEncoding.DecodeString(s)
	if err != nil {
		return "", core.Invalid("invalid key value: not base32")
	}
	if len(raw) == 0 {
		return "", core.Invalid("the key value is required")
	}
	return s, nil
}
