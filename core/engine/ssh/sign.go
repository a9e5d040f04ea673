package ssh

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// certFields are the request fields shared by sign and issue.
func certFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"role":             {Type: framework.TypeString, Description: "Role to sign with."},
		"ttl":              {Type: framework.TypeDurationSecond, Description: "Requested lifetime (capped by the role's max_ttl; above it is an error)."},
		"valid_principals": {Type: framework.TypeString, Description: "Comma-separated principals (users, or host names for host certificates)."},
		"cert_type":        {Type: framework.TypeLowerCaseString, Default: "user", Description: "user or host."},
		"key_id":           {Type: framework.TypeString, Description: "Key id (only when the role allows user key ids)."},
		"critical_options": {Type: framework.TypeMap, Description: "Critical options (default: the role's)."},
		"extensions":       {Type: framework.TypeMap, Description: "Extensions (default: the role's)."},
	}
}

func (b *Backend) signRoute() framework.Route {
	f := certFields()
	f["public_key"] = &framework.FieldSchema{Type: framework.TypeString, Description: "SSH public key to sign (authorized_keys format)."}
	return framework.Route{
		Pattern:    `sign/` + framework.GenericNameRegex("role"),
		Fields:     f,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.handler(b.sign)},
		Help:       "Sign a public key with the CA under a role.",
	}
}

func (b *Backend) issueRoute() framework.Route {
	f := certFields()
	f["key_type"] = &framework.FieldSchema{Type: framework.TypeString, Default: "rsa", Description: "Generated key type: rsa, ec, ed25519."}
	f["key_bits"] = &framework.FieldSchema{Type: framework.TypeInt, Description: "Generated key size (0: 4096 for RSA, 256 for EC)."}
	return framework.Route{
		Pattern:    `issue/` + framework.GenericNameRegex("role"),
		Fields:     f,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.handler(b.issue)},
		Help:       "Generate a key pair and sign its public key under a role.",
	}
}

func (b *Backend) sign(ctx context.Context, st *state, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	text := strings.TrimSpace(d.String("public_key"))
	if text == "" {
		return nil, core.Invalid("missing public_key")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, core.Invalid("failed to parse public_key as SSH key: %v", err)
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		return nil, core.Invalid("public_key is a certificate; send the plain public key")
	}
	cert, err := b.certify(ctx, st, req, d, pub)
	if err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{
		"serial_number": strconv.FormatUint(cert.Serial, 16),
		"signed_key":    string(ssh.MarshalAuthorizedKey(cert)),
	}}, nil
}

func (b *Backend) issue(ctx context.Context, st *state, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	// Check the role before spending time on key generation.
	if _, err := st.mustRole(ctx, d.String("role")); err != nil {
		return nil, err
	}
	key, err := generateKey(b.random(), d.String("key_type"), d.Int("key_bits"))
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: %w", err)
	}
	cert, err := b.certify(ctx, st, req, d, signer.PublicKey())
	if err != nil {
		return nil, err
	}
	blk, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: marshal key: %w", err)
	}
	keyType := map[string]string{ssh.KeyAlgoRSA: "rsa", ssh.KeyAlgoED25519: "ed25519"}[signer.PublicKey().Type()]
	if keyType == "" {
		keyType = "ec"
	}
	return &core.Response{Data: map[string]any{
		"serial_number":    strconv.FormatUint(cert.Serial, 16),
		"signed_key":       string(ssh.MarshalAuthorizedKey(cert)),
		"private_key":      string(pem.EncodeToMemory(blk)),
		"private_key_type": keyType,
	}}, nil
}

func (st *state) mustRole(ctx context.Context, name string) (*roleEntry, error) {
	r, err := st.getRole(ctx, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("unknown role: %s", name)
	}
	return r, nil
}

// certify checks the request against the role and signs pub.
func (b *Backend) certify(ctx context.Context, st *state, req *core.Request, d *framework.FieldData, pub ssh.PublicKey) (*ssh.Certificate, error) {
	role, err := st.mustRole(ctx, d.String("role"))
	if err != nil {
		return nil, err
	}
	ca, err := st.getCA(ctx)
	if err != nil {
		return nil, err
	}
	if ca == nil {
		return nil, core.Invalid("backend not configured with a CA key pair")
	}
	if err := checkKeyLength(pub, role.AllowedUserKeyLengths); err != nil {
		return nil, err
	}
	certType, principals, err := principalsFor(d, role)
	if err != nil {
		return nil, err
	}
	keyID, err := keyIDFor(d, req, role, pub)
	if err != nil {
		return nil, err
	}
	ttl, err := ttlFor(d, role, st)
	if err != nil {
		return nil, err
	}
	critical, err := pickOptions("critical options", d.Map("critical_options"), role.DefaultCriticalOptions, role.AllowedCriticalOptions, true)
	if err != nil {
		return nil, err
	}
	exts, err := pickOptions("extensions", d.Map("extensions"), role.DefaultExtensions, role.AllowedExtensions, false)
	if err != nil {
		return nil, err
	}
	signer, err := ca.signer()
	if err != nil {
		return nil, err
	}
	now := st.now()
	serial, nonce := make([]byte, 8), make([]byte, 32)
	if _, err := io.ReadFull(b.random(), serial); err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: serial: %w", err)
	}
	if _, err := io.ReadFull(b.random(), nonce); err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: nonce: %w", err)
	}
	cert := &ssh.Certificate{
		Nonce:           nonce,
		Key:             pub,
		Serial:          binary.BigEndian.Uint64(serial),
		CertType:        certType,
		KeyId:           keyID,
		ValidPrincipals: principals,
		ValidAfter:      uint64(now.Add(-role.NotBeforeDuration).Unix()),
		ValidBefore:     uint64(now.Add(ttl).Unix()),
		Permissions:     ssh.Permissions{CriticalOptions: critical, Extensions: exts},
	}
	algSigner, err := signerFor(signer, role.AlgorithmSigner)
	if err != nil {
		return nil, err
	}
	if err := cert.SignCert(b.random(), algSigner); err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: sign certificate: %w", err)
	}
	return cert, nil
}

// signerFor picks the CA's signature algorithm. RSA CAs sign with
// rsa-sha2-256 by default: OpenSSH 8.8 and later refuse SHA-1 ("ssh-rsa")
// signatures on certificates.
func signerFor(s ssh.Signer, alg string) (ssh.Signer, error) {
	if s.PublicKey().Type() != ssh.KeyAlgoRSA {
		return s, nil
	}
	switch alg {
	case "", "default":
		alg = ssh.KeyAlgoRSASHA256
	case ssh.KeyAlgoRSA, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
	default:
		return nil, core.Invalid("unsupported algorithm_signer %q", alg)
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return nil, core.Errorf(core.CodeInternal, "ssh: CA signer cannot choose its algorithm")
	}
	ms, err := ssh.NewSignerWithAlgorithms(as, []string{alg})
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "ssh: %w", err)
	}
	return ms, nil
}

// principalsFor returns the certificate type and its principals, checked
// against the role.
func principalsFor(d *framework.FieldData, role *roleEntry) (uint32, []string, error) {
	var certType uint32
	var allowed, def string
	switch d.String("cert_type") {
	case "user":
		if !role.AllowUserCertificates {
			return 0, nil, core.Invalid("cert_type 'user' is not allowed by role")
		}
		certType, allowed, def = ssh.UserCert, role.AllowedUsers, role.DefaultUser
	case "host":
		if !role.AllowHostCertificates {
			return 0, nil, core.Invalid("cert_type 'host' is not allowed by role")
		}
		certType, allowed = ssh.HostCert, role.AllowedDomains
	default:
		return 0, nil, core.Invalid("cert_type must be either 'user' or 'host'")
	}
	requested := def
	if d.Has("valid_principals") {
		requested = d.String("valid_principals")
	}
	principals := splitList(requested)
	allowedList := splitList(allowed)
	switch {
	case len(principals) == 0:
		if !role.AllowEmptyPrincipals && allowed != "*" {
			return 0, nil, core.Invalid("refusing to issue unsafe, globally-valid certificate with no principals specified; set valid_principals or default_user")
		}
		return certType, nil, nil
	case allowed == "*":
		return certType, principals, nil
	case len(allowedList) == 0:
		return 0, nil, core.Invalid("role is not configured to allow any principals")
	}
	for _, p := range principals {
		ok := false
		if certType == ssh.UserCert {
			ok = slices.Contains(allowedList, p)
		} else {
			for _, dom := range allowedList {
				if (role.AllowBareDomains && p == dom) || (role.AllowSubdomains && strings.HasSuffix(p, "."+dom)) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return 0, nil, core.Invalid("%s is not a valid value for valid_principals", p)
		}
	}
	return certType, principals, nil
}

// keyIDFor returns the requested key id (when the role allows it) or the
// role's key_id_format rendered, by default
// "vault-<token display name>-<sha256 of the key>" as Vault writes it.
func keyIDFor(d *framework.FieldData, req *core.Request, role *roleEntry, pub ssh.PublicKey) (string, error) {
	if id := d.String("key_id"); id != "" {
		if !role.AllowUserKeyIDs {
			return "", core.Invalid("setting key_id is not allowed by role")
		}
		return id, nil
	}
	display := ""
	if req != nil && req.Principal != nil {
		display = req.Principal.DisplayName
	}
	format := role.KeyIDFormat
	if format == "" {
		format = "vault-{{token_display_name}}-{{public_key_hash}}"
		if display == "" {
			format = "vault-{{public_key_hash}}"
		}
	}
	sum := sha256.Sum256(pub.Marshal())
	return strings.NewReplacer(
		"{{token_display_name}}", display,
		"{{role_name}}", d.String("role"),
		"{{public_key_hash}}", hex.EncodeToString(sum[:]),
	).Replace(format), nil
}

// ttlFor is the certificate lifetime: the request's, else the role's, else
// the mount default; a requested TTL above the maximum is an error (a
// certificate shorter than asked for would surprise its user), a default
// above it is capped.
func ttlFor(d *framework.FieldData, role *roleEntry, st *state) (time.Duration, error) {
	ttl, asked := role.TTL, d.Has("ttl")
	if asked {
		ttl = d.Duration("ttl")
	}
	if ttl <= 0 {
		ttl = st.defaultTTL()
	}
	max := role.MaxTTL
	if max <= 0 {
		max = st.maxTTL()
	}
	if max > 0 && ttl > max {
		if asked {
			return 0, core.Invalid("ttl is larger than maximum allowed %d", int64(max/time.Second))
		}
		ttl = max
	}
	if ttl <= 0 {
		return 0, core.Invalid("no ttl: set ttl on the request or the role")
	}
	return ttl, nil
}

// pickOptions returns the request's options when it sets any (each must be
// in allowed; "*" allows any), else the role's defaults. For critical
// options an empty allowed list allows any, as in Vault; for extensions it
// allows none.
func pickOptions(what string, requested map[string]any, defaults map[string]string, allowed string, emptyAllowsAny bool) (map[string]string, error) {
	if len(requested) == 0 {
		out := make(map[string]string, len(defaults))
		for k, v := range defaults {
			out[k] = v
		}
		return out, nil
	}
	field := strings.ReplaceAll(what, " ", "_")
	opts, err := stringMap(field, requested)
	if err != nil {
		return nil, err
	}
	if allowed == "*" || (allowed == "" && emptyAllowsAny) {
		return opts, nil
	}
	list := splitList(allowed)
	var bad []string
	for k := range opts {
		if !slices.Contains(list, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, core.Invalid("%s %v are not on allowed list", what, bad)
	}
	return opts, nil
}

// checkKeyLength enforces allowed_user_key_lengths on the key to sign.
func checkKeyLength(pub ssh.PublicKey, allowed map[string][]int) error {
	if len(allowed) == 0 {
		return nil
	}
	cp, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return core.Invalid("public key type %s is not allowed", pub.Type())
	}
	var names []string
	bits := 0
	switch k := cp.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		names, bits = []string{"rsa", ssh.KeyAlgoRSA}, k.N.BitLen()
	case *ecdsa.PublicKey:
		bits = k.Curve.Params().BitSize
		names = []string{"ecdsa", "ec", pub.Type()}
	case ed25519.PublicKey:
		names = []string{"ed25519", ssh.KeyAlgoED25519}
	default:
		return core.Invalid("public key type %s is not allowed", pub.Type())
	}
	present := false
	for _, n := range names {
		sizes, ok := allowed[n]
		if !ok {
			continue
		}
		present = true
		if names[0] == "ed25519" || slices.Contains(sizes, bits) {
			return nil
		}
	}
	if !present {
		return core.Invalid("key of type %s is not allowed", names[0])
	}
	return core.Invalid("key is of an invalid size: %d", bits)
}
