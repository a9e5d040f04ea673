package transit

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// Export types (the first path segment of export/).
const (
	exportEncryption = "encryption-key"
	exportSigning    = "signing-key"
	exportHMAC       = "hmac-key"
	exportPublic     = "public-key"
)

func (b *Backend) exportRoute() framework.Route {
	return framework.Route{
		Pattern: "export/" + framework.GenericNameRegex("type") + "/" + framework.GenericNameRegex("name") + "(/" + framework.GenericNameRegex("version") + ")?",
		Fields: map[string]*framework.FieldSchema{
			"type":    {Type: framework.TypeString, Description: "encryption-key, signing-key, hmac-key or public-key."},
			"name":    nameField(),
			"version": {Type: framework.TypeString, Description: `Version to export: a number, "v<N>" or "latest"; all retained versions when absent.`},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.export},
		Help:       "Export the key material of an exportable key (public keys need no exportable flag).",
	}
}

// export handles export/:type/:name(/:version). It answers 404 for a
// missing key and a CodeInvalid error for a key that is not exportable
// (public-key excepted) or whose type has no such key.
func (b *Backend) export(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	kind := d.String("type")
	switch kind {
	case exportEncryption, exportSigning, exportHMAC, exportPublic:
	default:
		return nil, core.Invalid("invalid export type: %s", kind)
	}
	p, err := b.load(ctx, st, d.String("name"))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.ErrNotFound
	}
	switch {
	case kind != exportPublic && !p.Exportable:
		return nil, core.Invalid("private key material is not exportable; create the key with exportable=true or set it with keys/%s/config", p.Name)
	case kind == exportEncryption && !p.Type.encryption():
		return nil, core.Invalid("encryption not supported for the key")
	case (kind == exportSigning || kind == exportPublic) && !p.Type.signing():
		return nil, core.Invalid("signing not supported for the key")
	}
	versions := map[int]*keyEntry{}
	if v := d.String("version"); v == "" {
		for ver, e := range p.Keys {
			if ver >= p.MinDecryptionVersion {
				versions[ver] = e
			}
		}
	} else {
		ver := p.LatestVersion
		if v != "latest" {
			if ver, err = strconv.Atoi(strings.TrimPrefix(v, "v")); err != nil {
				return nil, core.Invalid("invalid key version")
			}
		}
		if ver < p.MinDecryptionVersion {
			return nil, core.Invalid("version for export is below minimum decryption version")
		}
		e := p.Keys[ver]
		if e == nil {
			return nil, core.Invalid("version does not exist or cannot be found")
		}
		versions[ver] = e
	}
	keys := make(map[string]string, len(versions))
	for ver, e := range versions {
		s, err := exportKey(p, e, kind)
		if err != nil {
			return nil, err
		}
		keys[strconv.Itoa(ver)] = s
	}
	return &core.Response{Data: map[string]any{"name": p.Name, "type": p.Type.String(), "keys": keys}}, nil
}

// exportKey renders one version's material as Vault exports it: base64 raw
// keys, the 64-byte Ed25519 private key in base64, PEM "EC PRIVATE KEY"
// (SEC 1) and "RSA PRIVATE KEY" (PKCS#1) private keys, PEM public keys.
func exportKey(p *policy, e *keyEntry, kind string) (string, error) {
	switch {
	case kind == exportHMAC:
		if p.Type == typeHMAC {
			return base64.StdEncoding.EncodeToString(e.Key), nil
		}
		return base64.StdEncoding.EncodeToString(e.HMACKey), nil
	case kind == exportPublic:
		return e.publicKey, nil
	case p.Type.aead(), p.Type == typeEd25519:
		return base64.StdEncoding.EncodeToString(e.Key), nil
	case p.Type.isECDSA():
		der, err := x509.MarshalECPrivateKey(e.ec)
		if err != nil {
			return "", fmt.Errorf("transit: export: %w", err)
		}
		return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))), nil
	case p.Type.isRSA():
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(e.rsa)})), nil
	}
	return "", core.Invalid("unknown key type %s for export type %s", p.Type, kind)
}
