package pki

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// roleEntry is a stored role. JSON names are Vault's.
type roleEntry struct {
	TTL                       time.Duration `json:"ttl"`
	MaxTTL                    time.Duration `json:"max_ttl"`
	AllowLocalhost            bool          `json:"allow_localhost"`
	AllowedDomains            []string      `json:"allowed_domains"`
	AllowBareDomains          bool          `json:"allow_bare_domains"`
	AllowSubdomains           bool          `json:"allow_subdomains"`
	AllowGlobDomains          bool          `json:"allow_glob_domains"`
	AllowWildcardCertificates bool          `json:"allow_wildcard_certificates"`
	AllowAnyName              bool          `json:"allow_any_name"`
	EnforceHostnames          bool          `json:"enforce_hostnames"`
	AllowIPSANs               bool          `json:"allow_ip_sans"`
	AllowedURISANs            []string      `json:"allowed_uri_sans"`
	ServerFlag                bool          `json:"server_flag"`
	ClientFlag                bool          `json:"client_flag"`
	CodeSigningFlag           bool          `json:"code_signing_flag"`
	EmailProtectionFlag       bool          `json:"email_protection_flag"`
	KeyType                   string        `json:"key_type"`
	KeyBits                   int           `json:"key_bits"`
	SignatureBits             int           `json:"signature_bits"`
	KeyUsage                  []string      `json:"key_usage"`
	ExtKeyUsage               []string      `json:"ext_key_usage"`
	ExtKeyUsageOIDs           []string      `json:"ext_key_usage_oids"`
	UseCSRCommonName          bool          `json:"use_csr_common_name"`
	UseCSRSANs                bool          `json:"use_csr_sans"`
	OU                        []string      `json:"ou"`
	Organization              []string      `json:"organization"`
	Country                   []string      `json:"country"`
	Locality                  []string      `json:"locality"`
	Province                  []string      `json:"province"`
	StreetAddress             []string      `json:"street_address"`
	PostalCode                []string      `json:"postal_code"`
	GenerateLease             bool          `json:"generate_lease"`
	NoStore                   bool          `json:"no_store"`
	RequireCN                 bool          `json:"require_cn"`
	BasicConstraintsNonCA     bool          `json:"basic_constraints_valid_for_non_ca"`
	NotBeforeDuration         time.Duration `json:"not_before_duration"`
	IssuerRef                 string        `json:"issuer_ref"`
}

// roleFields is the role schema, with Vault's defaults.
func roleFields() map[string]*framework.FieldSchema {
	b := func(def bool, desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeBool, Default: def, Description: desc}
	}
	list := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: desc}
	}
	return map[string]*framework.FieldSchema{
		"name":                               {Type: framework.TypeString, Description: "Name of the role."},
		"ttl":                                {Type: framework.TypeDurationSecond, Description: "Default lifetime of issued certificates (0: the mount's default lease TTL)."},
		"max_ttl":                            {Type: framework.TypeDurationSecond, Description: "Maximum lifetime (0: the mount's max lease TTL)."},
		"allow_localhost":                    b(true, "Allow localhost and localdomain as names."),
		"allowed_domains":                    list("Domains the role may issue for (see the allow_* flags)."),
		"allow_bare_domains":                 b(false, "Allow the allowed domains themselves."),
		"allow_subdomains":                   b(false, "Allow subdomains of the allowed domains."),
		"allow_glob_domains":                 b(false, "Treat '*' in allowed domains as a glob."),
		"allow_wildcard_certificates":        b(true, "Allow wildcard names (*.example.com)."),
		"allow_any_name":                     b(false, "Allow any name (enforce_hostnames still applies)."),
		"enforce_hostnames":                  b(true, "Require names to be valid host names."),
		"allow_ip_sans":                      b(true, "Allow IP SANs."),
		"allowed_uri_sans":                   list("Glob patterns of allowed URI SANs."),
		"server_flag":                        b(true, "Add the serverAuth extended key usage."),
		"client_flag":                        b(true, "Add the clientAuth extended key usage."),
		"code_signing_flag":                  b(false, "Add the codeSigning extended key usage."),
		"email_protection_flag":              b(false, "Add the emailProtection extended key usage."),
		"key_type":                           {Type: framework.TypeLowerCaseString, Default: keyRSA, Description: "rsa, ec, ed25519, or any (sign only)."},
		"key_bits":                           {Type: framework.TypeInt, Description: "Key size (0: 2048 for rsa, 256 for ec)."},
		"signature_bits":                     {Type: framework.TypeInt, Description: "Hash size of RSA signatures (256, 384, 512)."},
		"key_usage":                          {Type: framework.TypeCommaStringSlice, Default: []any{"DigitalSignature", "KeyAgreement", "KeyEncipherment"}, Description: "Key usages."},
		"ext_key_usage":                      list("Extended key usages, by name."),
		"ext_key_usage_oids":                 list("Extended key usages, by OID."),
		"use_csr_common_name":                b(true, "sign: take the common name from the CSR."),
		"use_csr_sans":                       b(true, "sign: take the SANs from the CSR."),
		"ou":                                 list("OU values of issued certificates."),
		"organization":                       list("O values of issued certificates."),
		"country":                            list("C values of issued certificates."),
		"locality":                           list("L values of issued certificates."),
		"province":                           list("ST values of issued certificates."),
		"street_address":                     list("Street address values of issued certificates."),
		"postal_code":                        list("Postal code values of issued certificates."),
		"generate_lease":                     b(false, "Lease issued certificates (revoked with the lease)."),
		"no_store":                           b(false, "Do not store issued certificates (they cannot be listed or revoked by serial)."),
		"require_cn":                         b(true, "Require a common name."),
		"basic_constraints_valid_for_non_ca": b(false, "Mark leaves with CA:FALSE basic constraints."),
		"not_before_duration":                {Type: framework.TypeDurationSecond, Default: 30, Description: "How far NotBefore is backdated."},
		"issuer_ref":                         issuerRefField(),
	}
}

// rolesListRoute is LIST roles.
func (b *Backend) rolesListRoute() framework.Route {
	return framework.Route{
		Pattern: `roles/?`,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpList: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				keys, err := st.storage.List(ctx, rolesPrefix)
				if err != nil {
					return nil, err
				}
				return listResponse(keys)
			}),
		},
		Help: "List roles.",
	}
}

// roleRoute is roles/:name: read, create/update (POST replaces the role,
// unset fields taking their defaults), patch (only the fields sent) and delete.
func (b *Backend) roleRoute() framework.Route {
	return framework.Route{
		Pattern: `roles/` + framework.GenericNameRegex("name"),
		Fields:  roleFields(),
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.handler(b.readRole),
			core.OpUpdate: b.handler(b.writeRole),
			core.OpPatch:  b.handler(b.writeRole),
			core.OpDelete: b.handler(func(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
				return nil, st.storage.Delete(ctx, rolesPrefix+d.String("name"))
			}),
		},
		ExistenceCheck: func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
			st, err := b.state()
			if err != nil {
				return false, err
			}
			r, err := st.getRole(ctx, d.String("name"))
			return r != nil, err
		},
		Help: "Manage the roles certificates are issued for.",
	}
}

func (st *state) getRole(ctx context.Context, name string) (*roleEntry, error) {
	var r roleEntry
	ok, err := storage.GetJSON(ctx, st.storage, rolesPrefix+name, &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

// roleFromFields builds a role from r (a copy of the stored one for PATCH,
// the defaults otherwise) and the fields present in d. Errors are CodeInvalid.
func roleFromFields(d *framework.FieldData, r *roleEntry, onlyPresent bool) (*roleEntry, error) {
	set := func(k string) bool { return !onlyPresent || d.Has(k) }
	bools := map[string]*bool{
		"allow_localhost": &r.AllowLocalhost, "allow_bare_domains": &r.AllowBareDomains, "allow_subdomains": &r.AllowSubdomains,
		"allow_glob_domains": &r.AllowGlobDomains, "allow_wildcard_certificates": &r.AllowWildcardCertificates,
		"allow_any_name": &r.AllowAnyName, "enforce_hostnames": &r.EnforceHostnames, "allow_ip_sans": &r.AllowIPSANs,
		"server_flag": &r.ServerFlag, "client_flag": &r.ClientFlag, "code_signing_flag": &r.CodeSigningFlag,
		"email_protection_flag": &r.EmailProtectionFlag, "use_csr_common_name": &r.UseCSRCommonName, "use_csr_sans": &r.UseCSRSANs,
		"generate_lease": &r.GenerateLease, "no_store": &r.NoStore, "require_cn": &r.RequireCN,
		"basic_constraints_valid_for_non_ca": &r.BasicConstraintsNonCA,
	}
	for k, p := range bools {
		if set(k) {
			*p = d.Bool(k)
		}
	}
	lists := map[string]*[]string{
		"allowed_domains": &r.AllowedDomains, "allowed_uri_sans": &r.AllowedURISANs, "key_usage": &r.KeyUsage,
		"ext_key_usage": &r.ExtKeyUsage, "ext_key_usage_oids": &r.ExtKeyUsageOIDs, "ou": &r.OU, "organization": &r.Organization,
		"country": &r.Country, "locality": &r.Locality, "province": &r.Province, "street_address": &r.StreetAddress, "postal_code": &r.PostalCode,
	}
	for k, p := range lists {
		if set(k) {
			*p = nonNil(d.Strings(k))
		}
	}
	durs := map[string]*time.Duration{"ttl": &r.TTL, "max_ttl": &r.MaxTTL, "not_before_duration": &r.NotBeforeDuration}
	for k, p := range durs {
		if set(k) {
			*p = d.Duration(k)
		}
	}
	if set("signature_bits") {
		r.SignatureBits = d.Int("signature_bits")
	}
	if set("issuer_ref") {
		r.IssuerRef = d.String("issuer_ref")
	}
	if set("key_type") || set("key_bits") {
		typ, bits := r.KeyType, r.KeyBits
		if set("key_type") {
			typ, bits = d.String("key_type"), 0
		}
		if set("key_bits") {
			bits = d.Int("key_bits")
		}
		var err error
		if r.KeyType, r.KeyBits, err = checkKeyParams(typ, bits, true); err != nil {
			return nil, err
		}
	}
	return r, r.validate()
}

// validate checks a role's settings. Errors are CodeInvalid.
func (r *roleEntry) validate() error {
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return core.Invalid(`"ttl" value must be less than "max_ttl" value`)
	}
	if r.SignatureBits != 0 && r.SignatureBits != 256 && r.SignatureBits != 384 && r.SignatureBits != 512 {
		return core.Invalid("unsupported signature_bits %d: must be 256, 384 or 512", r.SignatureBits)
	}
	if _, err := r.keyUsage(); err != nil {
		return err
	}
	if _, _, err := r.extKeyUsage(); err != nil {
		return err
	}
	return nil
}

// keyUsage returns the role's key usage bits.
func (r *roleEntry) keyUsage() (x509.KeyUsage, error) {
	var ku x509.KeyUsage
	for _, n := range r.KeyUsage {
		bit, ok := keyUsageNames[usageKey(n)]
		if !ok {
			return 0, core.Invalid("unrecognized key_usage %q", n)
		}
		ku |= bit
	}
	return ku, nil
}

// extKeyUsage returns the role's extended key usages: the flags, then the
// named ones, and the OIDs.
func (r *roleEntry) extKeyUsage() ([]x509.ExtKeyUsage, []asn1.ObjectIdentifier, error) {
	var out []x509.ExtKeyUsage
	add := func(u x509.ExtKeyUsage) {
		for _, e := range out {
			if e == u {
				return
			}
		}
		out = append(out, u)
	}
	if r.ServerFlag {
		add(x509.ExtKeyUsageServerAuth)
	}
	if r.ClientFlag {
		add(x509.ExtKeyUsageClientAuth)
	}
	if r.CodeSigningFlag {
		add(x509.ExtKeyUsageCodeSigning)
	}
	if r.EmailProtectionFlag {
		add(x509.ExtKeyUsageEmailProtection)
	}
	for _, n := range r.ExtKeyUsage {
		u, ok := extKeyUsageNames[usageKey(n)]
		if !ok {
			return nil, nil, core.Invalid("unrecognized ext_key_usage %q", n)
		}
		add(u)
	}
	oids, err := parseOIDs(r.ExtKeyUsageOIDs)
	return out, oids, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (b *Backend) writeRole(ctx context.Context, st *state, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("name")
	base := &roleEntry{}
	patch := req.Operation == core.OpPatch
	if patch {
		old, err := st.getRole(ctx, name)
		if err != nil {
			return nil, err
		}
		if old == nil {
			return nil, core.Errorf(core.CodeNotFound, "role %q not found", name)
		}
		base = old
	}
	r, err := roleFromFields(d, base, patch)
	if err != nil {
		return nil, err
	}
	if err := storage.PutJSON(ctx, st.storage, rolesPrefix+name, r); err != nil {
		return nil, err
	}
	resp := &core.Response{Data: roleData(r)}
	if r.GenerateLease && r.NoStore {
		resp.AddWarning("generate_lease with no_store: certificates are not stored, so revoking their leases cannot revoke them")
	}
	return resp, nil
}

func (b *Backend) readRole(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	r, err := st.getRole(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: roleData(r)}, nil
}

// roleData is a role as Vault returns it (durations in seconds).
func roleData(r *roleEntry) map[string]any {
	secs := func(d time.Duration) int64 { return int64(d / time.Second) }
	return map[string]any{
		"ttl": secs(r.TTL), "max_ttl": secs(r.MaxTTL), "allow_localhost": r.AllowLocalhost,
		"allowed_domains": nonNil(r.AllowedDomains), "allow_bare_domains": r.AllowBareDomains,
		"allow_subdomains": r.AllowSubdomains, "allow_glob_domains": r.AllowGlobDomains,
		"allow_wildcard_certificates": r.AllowWildcardCertificates, "allow_any_name": r.AllowAnyName,
		"enforce_hostnames": r.EnforceHostnames, "allow_ip_sans": r.AllowIPSANs, "allowed_uri_sans": nonNil(r.AllowedURISANs),
		"server_flag": r.ServerFlag, "client_flag": r.ClientFlag, "code_signing_flag": r.CodeSigningFlag,
		"email_protection_flag": r.EmailProtectionFlag, "key_type": r.KeyType, "key_bits": r.KeyBits,
		"signature_bits": r.SignatureBits, "key_usage": nonNil(r.KeyUsage), "ext_key_usage": nonNil(r.ExtKeyUsage),
		"ext_key_usage_oids": nonNil(r.ExtKeyUsageOIDs), "use_csr_common_name": r.UseCSRCommonName,
		"use_csr_sans": r.UseCSRSANs, "ou": nonNil(r.OU), "organization": nonNil(r.Organization), "country": nonNil(r.Country),
		"locality": nonNil(r.Locality), "province": nonNil(r.Province), "street_address": nonNil(r.StreetAddress),
		"postal_code": nonNil(r.PostalCode), "generate_lease": r.GenerateLease, "no_store": r.NoStore,
		"require_cn": r.RequireCN, "basic_constraints_valid_for_non_ca": r.BasicConstraintsNonCA,
		"not_before_duration": secs(r.NotBeforeDuration), "issuer_ref": r.IssuerRef,
	}
}
