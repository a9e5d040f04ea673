package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// certRecord is a stored certificate.
type certRecord struct {
	Certificate []byte `json:"certificate"` // DER
	IssuerID    string `json:"issuer_id,omitempty"`
}

// issueRoute is issue/:role: a new key and a certificate for it.
func (b *Backend) issueRoute() framework.Route {
	return framework.Route{
		Pattern: `issue/` + framework.GenericNameRegex("role"),
		Fields: mergeFields(nameFields(), map[string]*framework.FieldSchema{
			"role": {Type: framework.TypeString, Description: "The role to issue for."},
		}),
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: b.handler(b.issue),
		},
		Help: "Issue a certificate and private key for a role.",
	}
}

// signRoute is sign/:role: a certificate for the key of a CSR.
func (b *Backend) signRoute() framework.Route {
	return framework.Route{
		Pattern: `sign/` + framework.GenericNameRegex("role"),
		Fields: mergeFields(nameFields(), map[string]*framework.FieldSchema{
			"role": {Type: framework.TypeString, Description: "The role to sign for."},
			"csr":  {Type: framework.TypeString, Description: "PEM certificate signing request."},
		}),
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: b.handler(b.sign),
		},
		Help: "Sign a CSR for a role.",
	}
}

func (b *Backend) issue(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	role, err := st.roleForIssue(ctx, d.String("role"))
	if err != nil {
		return nil, err
	}
	if role.KeyType == keyAny {
		return nil, core.Invalid(`role key type "any" not allowed for issuing certificates, only signing`)
	}
	bundle, err := b.signingBundle(ctx, st, role.IssuerRef)
	if err != nil {
		return nil, err
	}
	p, warnings, err := st.leafParams(ctx, role, d, nil, bundle)
	if err != nil {
		return nil, err
	}
	key, err := generateKey(role.KeyType, role.KeyBits)
	if err != nil {
		return nil, err
	}
	adjustKeyUsage(p, key.Public())
	return b.finishLeaf(ctx, st, role, d, p, key.Public(), key, bundle, warnings)
}

func (b *Backend) sign(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	role, err := st.roleForIssue(ctx, d.String("role"))
	if err != nil {
		return nil, err
	}
	csr, err := parseCSR(d.String("csr"))
	if err != nil {
		return nil, err
	}
	if err := role.checkCSRKey(csr.PublicKey); err != nil {
		return nil, err
	}
	bundle, err := b.signingBundle(ctx, st, role.IssuerRef)
	if err != nil {
		return nil, err
	}
	p, warnings, err := st.leafParams(ctx, role, d, csr, bundle)
	if err != nil {
		return nil, err
	}
	adjustKeyUsage(p, csr.PublicKey)
	return b.finishLeaf(ctx, st, role, d, p, csr.PublicKey, nil, bundle, warnings)
}

// roleForIssue loads a role, or fails with Vault's "unknown role" 400.
func (st *state) roleForIssue(ctx context.Context, name string) (*roleEntry, error) {
	role, err := st.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, core.Invalid("unknown role: %s", name)
	}
	return role, nil
}

// finishLeaf signs, stores and answers a leaf certificate (key is nil for
// sign/:role), leasing it when the role says so.
func (b *Backend) finishLeaf(ctx context.Context, st *state, role *roleEntry, d *framework.FieldData, p *certParams,
	pub crypto.PublicKey, key crypto.Signer, bundle *caBundle, warnings []string) (*core.Response, error) {
	cert, err := createCert(p, pub, bundle, nil)
	if err != nil {
		return nil, err
	}
	if !role.NoStore {
		if err := st.storeCert(ctx, cert, bundle.issuer.ID); err != nil {
			return nil, err
		}
	}
	data, err := certResponse(cert, bundle, key, d.String("format"), d.String("private_key_format"))
	if err != nil {
		return nil, err
	}
	resp := &core.Response{Data: data, Warnings: warnings}
	if role.GenerateLease {
		// Until NotAfter, rounded up to the second (leases count whole
		// seconds; NotAfter was truncated to one).
		ttl := cert.NotAfter.Sub(st.now())
		if r := ttl % time.Second; r != 0 {
			ttl += time.Second - r
		}
		resp.Secret = &core.Secret{TTL: ttl, Renewable: false,
			InternalData: map[string]any{"serial_number": formatSerial(cert.SerialNumber)}}
	}
	return resp, nil
}

// storeCert records an issued certificate under its serial.
func (st *state) storeCert(ctx context.Context, cert *x509.Certificate, issuerID string) error {
	return storage.PutJSON(ctx, st.storage, certsPrefix+storageSerial(formatSerial(cert.SerialNumber)),
		&certRecord{Certificate: cert.Raw, IssuerID: issuerID})
}

// leafParams checks a request against the role and builds the leaf's
// parameters: subject, SANs, validity, usages and AIA URLs. csr is nil for
// issue/:role. Errors are CodeInvalid with Vault's texts.
func (st *state) leafParams(ctx context.Context, role *roleEntry, d *framework.FieldData, csr *x509.CertificateRequest, bundle *caBundle) (*certParams, []string, error) {
	var cn string
	if csr != nil && role.UseCSRCommonName {
		cn = csr.Subject.CommonName
	}
	if cn == "" {
		cn = strings.TrimSpace(d.String("common_name"))
	}
	if cn == "" && role.RequireCN {
		return nil, nil, core.Invalid(`the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`)
	}
	p := &certParams{}
	fromCSR := csr != nil && role.UseCSRSANs
	var err error
	if fromCSR {
		p.dnsNames, p.emails = append([]string(nil), csr.DNSNames...), append([]string(nil), csr.EmailAddresses...)
	} else if p.dnsNames, p.emails, err = splitNames(d.Strings("alt_names")); err != nil {
		return nil, nil, err
	}
	if cn != "" && !d.Bool("exclude_cn_from_sans") {
		if strings.Contains(cn, "@") {
			p.emails = append([]string{cn}, p.emails...)
		} else if validHostname(cn, true) {
			p.dnsNames = append([]string{cn}, p.dnsNames...)
		}
	}
	p.dnsNames, p.emails = dedup(p.dnsNames), dedup(p.emails)
	if cn != "" && !role.allowedName(cn) {
		return nil, nil, core.Invalid("common name %s not allowed by this role", cn)
	}
	for _, n := range p.dnsNames {
		if !role.allowedName(n) {
			return nil, nil, core.Invalid("subject alternate name %s not allowed by this role", n)
		}
	}
	for _, n := range p.emails {
		if !role.allowedName(n) {
			return nil, nil, core.Invalid("email address %s not allowed by this role", n)
		}
	}
	if err := role.leafIPsAndURIs(p, d, csr, fromCSR); err != nil {
		return nil, nil, err
	}
	if len(d.Strings("other_sans")) > 0 {
		return nil, nil, core.Invalid("other_sans are not supported")
	}
	p.subject = pkix.Name{CommonName: cn, OrganizationalUnit: role.OU, Organization: role.Organization, Country: role.Country,
		Locality: role.Locality, Province: role.Province, StreetAddress: role.StreetAddress, PostalCode: role.PostalCode}
	var warnings []string
	p.notBefore, p.notAfter, warnings, err = st.validity(lifetime{requested: d.Duration("ttl"), notAfter: d.String("not_after"),
		defTTL: role.TTL, maxTTL: role.MaxTTL, notBeforeDur: role.NotBeforeDuration}, bundle)
	if err != nil {
		return nil, nil, err
	}
	if p.keyUsage, err = role.keyUsage(); err != nil {
		return nil, nil, err
	}
	if p.extKeyUsage, p.extKeyOIDs, err = role.extKeyUsage(); err != nil {
		return nil, nil, err
	}
	p.basicConstraintsNonCA = role.BasicConstraintsNonCA
	p.signatureBits = role.SignatureBits
	if p.urls, err = st.getURLs(ctx); err != nil {
		return nil, nil, err
	}
	return p, warnings, nil
}

// leafIPsAndURIs fills the IP and URI SANs, from the CSR or the request.
func (r *roleEntry) leafIPsAndURIs(p *certParams, d *framework.FieldData, csr *x509.CertificateRequest, fromCSR bool) error {
	via := "the API"
	if fromCSR {
		via = "CSR"
		p.ips, p.uris = csr.IPAddresses, csr.URIs
		if len(p.ips) > 0 && !r.AllowIPSANs {
			return core.Invalid("IP Subject Alternative Names are not allowed in this role, but was provided some via CSR")
		}
	} else {
		ipReq := d.Strings("ip_sans")
		if len(ipReq) > 0 && !r.AllowIPSANs {
			return core.Invalid("IP Subject Alternative Names are not allowed in this role, but was provided %s", ipReq)
		}
		var err error
		if p.ips, err = parseIPs(ipReq); err != nil {
			return err
		}
		if p.uris, err = parseURIs(d.Strings("uri_sans")); err != nil {
			return err
		}
	}
	if len(p.uris) > 0 && len(r.AllowedURISANs) == 0 {
		return core.Invalid("URI Subject Alternative Names are not allowed in this role, but were provided via %s", via)
	}
	for _, u := range p.uris {
		ok := false
		for _, pat := range r.AllowedURISANs {
			if globMatch(pat, u.String()) {
				ok = true
				break
			}
		}
		if !ok {
			return core.Invalid("URI Subject Alternative Names were provided via %s which are not valid for this role", via)
		}
	}
	return nil
}

// checkCSRKey enforces the role's key_type and key_bits on a CSR's key.
func (r *roleEntry) checkCSRKey(pub crypto.PublicKey) error {
	typ, bits := publicKeyType(pub)
	if typ == "" {
		return core.Invalid("unsupported key type in the CSR")
	}
	if r.KeyType == keyAny {
		if typ == keyRSA && bits < 2048 {
			return core.Invalid("RSA keys under 2048 bits are not accepted, but CSR's key is %d bits", bits)
		}
		return nil
	}
	if typ != r.KeyType {
		return core.Invalid("role requires keys of type %s", r.KeyType)
	}
	if r.KeyBits > 0 && bits < r.KeyBits {
		return core.Invalid("role requires a minimum of a %d-bit key, but CSR's key is %d bits", r.KeyBits, bits)
	}
	return nil
}

// adjustKeyUsage drops key usages a key cannot have: key and data
// encipherment need RSA, key agreement needs EC (RFC 8410 forbids both for
// Ed25519).
func adjustKeyUsage(p *certParams, pub crypto.PublicKey) {
	typ, _ := publicKeyType(pub)
	if typ != keyRSA {
		p.keyUsage &^= x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment
	}
	if typ == keyEd25519 {
		p.keyUsage &^= x509.KeyUsageKeyAgreement
	}
}

// parseCSR decodes and verifies a PEM certificate request. Errors are
// CodeInvalid.
func parseCSR(s string) (*x509.CertificateRequest, error) {
	if strings.TrimSpace(s) == "" {
		return nil, core.Invalid("missing csr: a PEM certificate signing request is required")
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, core.Invalid("certificate request could not be parsed: no PEM data found")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, core.Invalid("certificate request could not be parsed: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, core.Invalid("request signature invalid: %v", err)
	}
	return csr, nil
}

// certResponse is the data of an issued certificate in Vault's shape:
// certificate, issuing_ca, ca_chain, serial_number, expiration, and
// private_key/private_key_type when key is set, in format pem (default),
// der (base64 DER) or pem_bundle (key, certificate and chain in one PEM text).
func certResponse(cert *x509.Certificate, bundle *caBundle, key crypto.Signer, format, keyFormat string) (map[string]any, error) {
	chain := bundle.chainPEMs()
	data := map[string]any{
		"serial_number": formatSerial(cert.SerialNumber),
		"expiration":    cert.NotAfter.Unix(),
	}
	var keyPEM string
	var keyDER []byte
	if key != nil {
		var typ string
		var err error
		if keyPEM, keyDER, typ, err = marshalPrivateKey(key, keyFormat); err != nil {
			return nil, err
		}
		data["private_key_type"] = typ
	}
	certPEM := encodeCertPEM(cert.Raw)
	switch format {
	case "der":
		data["certificate"] = base64.StdEncoding.EncodeToString(cert.Raw)
		data["issuing_ca"] = base64.StdEncoding.EncodeToString(bundle.cert.Raw)
		ders := make([]string, 0, len(chain))
		for _, c := range chain {
			if pc, err := parseCertPEM(c); err == nil {
				ders = append(ders, base64.StdEncoding.EncodeToString(pc.Raw))
			}
		}
		data["ca_chain"] = ders
		if key != nil {
			data["private_key"] = base64.StdEncoding.EncodeToString(keyDER)
		}
		return data, nil
	case "pem_bundle":
		parts := []string{}
		if key != nil {
			parts = append(parts, keyPEM)
		}
		parts = append(parts, certPEM)
		parts = append(parts, chain...)
		data["certificate"] = strings.Join(parts, "\n")
	default:
		data["certificate"] = certPEM
	}
	data["issuing_ca"] = bundle.issuer.Certificate
	data["ca_chain"] = chain
	if key != nil {
		data["private_key"] = keyPEM
	}
	return data, nil
}
