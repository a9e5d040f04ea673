package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// caGenFields are the fields shared by root and intermediate generation.
func caGenFields() map[string]*framework.FieldSchema {
	return mergeFields(nameFields(), subjectFields(), map[string]*framework.FieldSchema{
		"exported":              {Type: framework.TypeString, Description: `"internal" or "exported" (returns the private key).`},
		"key_type":              {Type: framework.TypeLowerCaseString, Default: keyRSA, Description: "rsa, ec or ed25519."},
		"key_bits":              {Type: framework.TypeInt, Description: "Key size (0: 2048 for rsa, 256 for ec)."},
		"key_name":              {Type: framework.TypeString, Description: "Name of the new key."},
		"signature_bits":        {Type: framework.TypeInt, Description: "Hash size of RSA signatures (256, 384, 512)."},
		"max_path_length":       {Type: framework.TypeInt, Default: -1, Description: "Max path length of the CA (-1: unlimited)."},
		"permitted_dns_domains": {Type: framework.TypeCommaStringSlice, Description: "Name constraints: permitted DNS domains."},
		"issuer_name":           {Type: framework.TypeString, Description: "Name of the new issuer."},
		"not_before_duration":   {Type: framework.TypeDurationSecond, Default: 30, Description: "How far NotBefore is backdated."},
		"add_basic_constraints": {Type: framework.TypeBool, Description: "intermediate/generate: add CA:TRUE basic constraints to the CSR."},
	})
}

// exportedParam validates the :exported path segment.
func exportedParam(d *framework.FieldData) (bool, error) {
	switch d.String("exported") {
	case "internal":
		return false, nil
	case "exported":
		return true, nil
	}
	return false, core.Invalid(`invalid type %q: must be "internal" or "exported"`, d.String("exported"))
}

var errCNRequired = core.Invalid(`the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`)

// rootGenerateRoute is root/generate/(internal|exported).
func (b *Backend) rootGenerateRoute() framework.Route {
	return framework.Route{
		Pattern: `root/generate/` + framework.GenericNameRegex("exported"),
		Fields:  caGenFields(),
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: b.handler(b.generateRoot),
		},
		Help: "Generate a self-signed root CA and its key.",
	}
}

func (b *Backend) generateRoot(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	exported, err := exportedParam(d)
	if err != nil {
		return nil, err
	}
	cn := strings.TrimSpace(d.String("common_name"))
	if cn == "" {
		return nil, errCNRequired
	}
	typ, bits, err := checkKeyParams(d.String("key_type"), d.Int("key_bits"), false)
	if err != nil {
		return nil, err
	}
	p, err := caNames(d, cn)
	if err != nil {
		return nil, err
	}
	if err := st.checkIssuerName(ctx, d.String("issuer_name"), ""); err != nil {
		return nil, err
	}
	p.subject = subjectFromRequest(d, cn)
	p.isCA, p.maxPathLen = true, d.Int("max_path_length")
	p.keyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	p.permittedDNSDomains = d.Strings("permitted_dns_domains")
	p.signatureBits = d.Int("signature_bits")
	var warnings []string
	p.notBefore, p.notAfter, warnings, err = st.validity(lifetime{requested: d.Duration("ttl"), notAfter: d.String("not_after"),
		notBeforeDur: d.Duration("not_before_duration")}, nil)
	if err != nil {
		return nil, err
	}
	key, err := generateKey(typ, bits)
	if err != nil {
		return nil, err
	}
	cert, err := createCert(p, key.Public(), nil, key)
	if err != nil {
		return nil, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	ke, err := b.createKey(ctx, st, key, d.String("key_name"))
	if err != nil {
		return nil, err
	}
	ie, _, err := b.importIssuer(ctx, st, cert, ke.ID, d.String("issuer_name"))
	if err != nil {
		return nil, err
	}
	if err := st.storeCert(ctx, cert, ie.ID); err != nil {
		return nil, err
	}
	if err := b.buildCRLsLocked(ctx, st); err != nil {
		return nil, err
	}
	data := map[string]any{"serial_number": formatSerial(cert.SerialNumber), "expiration": cert.NotAfter.Unix(),
		"issuer_id": ie.ID, "issuer_name": ie.Name, "key_id": ke.ID, "key_name": ke.Name}
	if err := caCertData(data, cert, key, exported, d.String("format"), d.String("private_key_format")); err != nil {
		return nil, err
	}
	return &core.Response{Data: data, Warnings: warnings}, nil
}

// caCertData fills certificate, issuing_ca and, when exported, the private
// key of a self-signed CA in Vault's formats.
func caCertData(data map[string]any, cert *x509.Certificate, key crypto.Signer, exported bool, format, keyFormat string) error {
	keyPEM, keyDER, keyType, err := marshalPrivateKey(key, keyFormat)
	if err != nil {
		return err
	}
	certPEM := encodeCertPEM(cert.Raw)
	switch format {
	case "der":
		data["certificate"] = base64.StdEncoding.EncodeToString(cert.Raw)
		data["issuing_ca"] = data["certificate"]
		if exported {
			data["private_key"] = base64.StdEncoding.EncodeToString(keyDER)
		}
	case "pem_bundle":
		data["certificate"], data["issuing_ca"] = certPEM, certPEM
		if exported {
			data["certificate"] = keyPEM + "\n" + certPEM
			data["private_key"] = keyPEM
		}
	default:
		data["certificate"], data["issuing_ca"] = certPEM, certPEM
		if exported {
			data["private_key"] = keyPEM
		}
	}
	if exported {
		data["private_key_type"] = keyType
	}
	return nil
}

// intermediateGenerateRoute is intermediate/generate/(internal|exported).
func (b *Backend) intermediateGenerateRoute() framework.Route {
	return framework.Route{
		Pattern: `intermediate/generate/` + framework.GenericNameRegex("exported"),
		Fields:  caGenFields(),
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: b.handler(b.generateIntermediate),
		},
		Help: "Generate a key and a CSR for an intermediate CA.",
	}
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

func (b *Backend) generateIntermediate(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	exported, err := exportedParam(d)
	if err != nil {
		return nil, err
	}
	cn := strings.TrimSpace(d.String("common_name"))
	if cn == "" {
		return nil, errCNRequired
	}
	typ, bits, err := checkKeyParams(d.String("key_type"), d.Int("key_bits"), false)
	if err != nil {
		return nil, err
	}
	p, err := caNames(d, cn)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: subjectFromRequest(d, cn), DNSNames: p.dnsNames, EmailAddresses: p.emails,
		IPAddresses: p.ips, URIs: p.uris}
	if d.Bool("add_basic_constraints") {
		v, err := asn1.Marshal(struct {
			IsCA bool `asn1:"optional"`
		}{IsCA: true})
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidBasicConstraints, Critical: true, Value: v})
	}
	key, err := generateKey(typ, bits)
	if err != nil {
		return nil, err
	}
	if tmpl.SignatureAlgorithm, err = signatureAlgorithm(key.Public(), d.Int("signature_bits")); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, core.Invalid("unable to create the CSR: %v", err)
	}
	b.mu.Lock()
	ke, err := b.createKey(ctx, st, key, d.String("key_name"))
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	keyPEM, keyDER, keyType, err := marshalPrivateKey(key, d.String("private_key_format"))
	if err != nil {
		return nil, err
	}
	csrPEM := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})))
	data := map[string]any{"key_id": ke.ID}
	switch d.String("format") {
	case "der":
		data["csr"] = base64.StdEncoding.EncodeToString(der)
		if exported {
			data["private_key"] = base64.StdEncoding.EncodeToString(keyDER)
		}
	case "pem_bundle":
		data["csr"] = csrPEM
		if exported {
			data["csr"] = keyPEM + "\n" + csrPEM
			data["private_key"] = keyPEM
		}
	default:
		data["csr"] = csrPEM
		if exported {
			data["private_key"] = keyPEM
		}
	}
	if exported {
		data["private_key_type"] = keyType
	}
	return &core.Response{Data: data}, nil
}
