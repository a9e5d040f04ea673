package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Storage keys and prefixes.
const (
	issuersPrefix     = "issuers/"
	keysPrefix        = "keys/"
	issuersConfigKey  = "config/issuers"
	urlsConfigKey     = "config/urls"
	crlConfigKey      = "config/crl"
	rolesPrefix       = "roles/"
	certsPrefix       = "certs/"
	revokedPrefix     = "revoked/"
	crlsPrefix        = "crls/"
	tidyStatusKey     = "tidy/status"
	defaultIssuerRef  = "default"
	maxChainLength    = 16
	leafNotAfterErr   = "err"
	leafNotAfterTrunc = "truncate"
	leafNotAfterAllow = "permit"
)

// issuerEntry is a CA certificate of the mount.
type issuerEntry struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// KeyID is the mount key with the certificate's public key; empty for
	// issuers imported without their key (a parent sent with set-signed).
	KeyID       string `json:"key_id,omitempty"`
	Certificate string `json:"certificate"` // PEM
	// CAChain is this issuer's PEM first, then its parents among the
	// mount's issuers, nearest first.
	CAChain              []string `json:"ca_chain"`
	LeafNotAfterBehavior string   `json:"leaf_not_after_behavior"`
	SerialNumber         string   `json:"serial_number"`
}

// keyEntry is a private key of the mount.
type keyEntry struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Type       string `json:"type"`
	Bits       int    `json:"bits,omitempty"`
	PrivateKey string `json:"private_key"` // PKCS#8 PEM
}

// issuersConfig names the default issuer.
type issuersConfig struct {
	Default string `json:"default"`
}

// caBundle is an issuer ready to sign.
type caBundle struct {
	issuer *issuerEntry
	cert   *x509.Certificate
	signer crypto.Signer
}

var issuerNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// errNoDefaultIssuer is Vault's message when nothing can sign.
var errNoDefaultIssuer = core.Invalid("no default issuer currently configured")

func (st *state) getIssuer(ctx context.Context, id string) (*issuerEntry, error) {
	var e issuerEntry
	ok, err := storage.GetJSON(ctx, st.storage, issuersPrefix+id, &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

func (st *state) listIssuers(ctx context.Context) ([]*issuerEntry, error) {
	ids, err := st.storage.List(ctx, issuersPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*issuerEntry, 0, len(ids))
	for _, id := range ids {
		e, err := st.getIssuer(ctx, id)
		if err != nil {
			return nil, err
		}
		if e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func (st *state) getKey(ctx context.Context, id string) (*keyEntry, error) {
	var e keyEntry
	ok, err := storage.GetJSON(ctx, st.storage, keysPrefix+id, &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

func (st *state) getIssuersConfig(ctx context.Context) (*issuersConfig, error) {
	var c issuersConfig
	if _, err := storage.GetJSON(ctx, st.storage, issuersConfigKey, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// resolveIssuer finds an issuer by reference: "" or "default" (the default
// issuer), an issuer id, or an issuer name. Errors are CodeInvalid, with
// Vault's texts.
func (st *state) resolveIssuer(ctx context.Context, ref string) (*issuerEntry, error) {
	if ref == "" || ref == defaultIssuerRef {
		cfg, err := st.getIssuersConfig(ctx)
		if err != nil {
			return nil, err
		}
		if cfg.Default == "" {
			return nil, errNoDefaultIssuer
		}
		e, err := st.getIssuer(ctx, cfg.Default)
		if err != nil {
			return nil, err
		}
		if e == nil {
			return nil, errNoDefaultIssuer
		}
		return e, nil
	}
	if _, err := uuid.Parse(ref); err == nil {
		e, err := st.getIssuer(ctx, ref)
		if err != nil || e != nil {
			return e, err
		}
	}
	all, err := st.listIssuers(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		if e.Name != "" && e.Name == ref {
			return e, nil
		}
	}
	return nil, core.Invalid("unable to find PKI issuer for reference: %s", ref)
}

// signingBundle resolves ref to an issuer that has its key on this mount.
func (b *Backend) signingBundle(ctx context.Context, st *state, ref string) (*caBundle, error) {
	e, err := st.resolveIssuer(ctx, ref)
	if err != nil {
		return nil, err
	}
	cert, err := parseCertPEM(e.Certificate)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "pki: stored issuer %s: %w", e.ID, err)
	}
	if e.KeyID == "" {
		return nil, core.Invalid("issuer %s has no private key on this mount and cannot sign", e.ID)
	}
	signer, err := b.loadSigner(ctx, st, e.KeyID)
	if err != nil {
		return nil, err
	}
	return &caBundle{issuer: e, cert: cert, signer: signer}, nil
}

// loadSigner returns the parsed private key of a key id.
func (b *Backend) loadSigner(ctx context.Context, st *state, keyID string) (crypto.Signer, error) {
	if s, ok := b.cachedSigner(keyID); ok {
		return s, nil
	}
	k, err := st.getKey(ctx, keyID)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return nil, core.Invalid("key %s of the issuer is missing from this mount", keyID)
	}
	s, err := parsePrivateKeyPEM(k.PrivateKey)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "pki: stored key %s: %w", keyID, err)
	}
	b.signers.Store(keyID, s)
	return s, nil
}

// createKey stores a new private key and returns its entry.
func (b *Backend) createKey(ctx context.Context, st *state, signer crypto.Signer, name string) (*keyEntry, error) {
	p, err := pkcs8PEM(signer)
	if err != nil {
		return nil, err
	}
	typ, bits := publicKeyType(signer.Public())
	e := &keyEntry{ID: uuid.NewString(), Name: name, Type: typ, Bits: bits, PrivateKey: p}
	if err := storage.PutJSON(ctx, st.storage, keysPrefix+e.ID, e); err != nil {
		return nil, err
	}
	b.signers.Store(e.ID, signer)
	return e, nil
}

// checkIssuerName validates a new issuer name: empty, or unique and made of
// letters, digits, '-' and '_', and not "default".
func (st *state) checkIssuerName(ctx context.Context, name, selfID string) error {
	if name == "" {
		return nil
	}
	if name == defaultIssuerRef || !issuerNameRe.MatchString(name) {
		return core.Invalid("invalid issuer_name %q: use letters, digits, '-' and '_' (and not \"default\")", name)
	}
	all, err := st.listIssuers(ctx)
	if err != nil {
		return err
	}
	for _, e := range all {
		if e.Name == name && e.ID != selfID {
			return core.Invalid("issuer name %q is already in use by issuer %s", name, e.ID)
		}
	}
	return nil
}

// importIssuer stores cert as an issuer linked to keyID ("" for none). An
// issuer with the same certificate is returned as existing instead. The first
// issuer becomes the default. Chains are rebuilt. The caller holds b.mu.
func (b *Backend) importIssuer(ctx context.Context, st *state, cert *x509.Certificate, keyID, name string) (*issuerEntry, bool, error) {
	all, err := st.listIssuers(ctx)
	if err != nil {
		return nil, false, err
	}
	certPEM := encodeCertPEM(cert.Raw)
	for _, e := range all {
		if e.Certificate == certPEM {
			if e.KeyID == "" && keyID != "" {
				e.KeyID = keyID
				if err := storage.PutJSON(ctx, st.storage, issuersPrefix+e.ID, e); err != nil {
					return nil, false, err
				}
			}
			return e, true, nil
		}
	}
	if err := st.checkIssuerName(ctx, name, ""); err != nil {
		return nil, false, err
	}
	e := &issuerEntry{ID: uuid.NewString(), Name: name, KeyID: keyID, Certificate: certPEM, CAChain: []string{certPEM},
		LeafNotAfterBehavior: leafNotAfterErr, SerialNumber: formatSerial(cert.SerialNumber)}
	if err := storage.PutJSON(ctx, st.storage, issuersPrefix+e.ID, e); err != nil {
		return nil, false, err
	}
	cfg, err := st.getIssuersConfig(ctx)
	if err != nil {
		return nil, false, err
	}
	if cfg.Default == "" {
		cfg.Default = e.ID
		if err := storage.PutJSON(ctx, st.storage, issuersConfigKey, cfg); err != nil {
			return nil, false, err
		}
	}
	if err := st.rebuildChains(ctx); err != nil {
		return nil, false, err
	}
	if e2, err := st.getIssuer(ctx, e.ID); err == nil && e2 != nil {
		e = e2
	}
	return e, false, nil
}

// rebuildChains recomputes every issuer's chain from the mount's issuers:
// from each certificate, repeatedly the issuer whose subject is its issuer
// name and whose key verifies its signature, until a self-signed one.
func (st *state) rebuildChains(ctx context.Context) error {
	all, err := st.listIssuers(ctx)
	if err != nil {
		return err
	}
	certs := make([]*x509.Certificate, len(all))
	for i, e := range all {
		if certs[i], err = parseCertPEM(e.Certificate); err != nil {
			return core.Errorf(core.CodeInternal, "pki: stored issuer %s: %w", e.ID, err)
		}
	}
	for i, e := range all {
		chain := []string{e.Certificate}
		seen := map[int]bool{i: true}
		cur := certs[i]
		for len(chain) < maxChainLength && !isSelfSigned(cur) {
			next := -1
			for j, c := range certs {
				if !seen[j] && bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil {
					next = j
					break
				}
			}
			if next < 0 {
				break
			}
			seen[next] = true
			chain = append(chain, all[next].Certificate)
			cur = certs[next]
		}
		if !equalStrings(chain, e.CAChain) {
			e.CAChain = chain
			if err := storage.PutJSON(ctx, st.storage, issuersPrefix+e.ID, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// issuerByCert returns the id of the mount issuer that signed cert, or "".
func issuerByCert(issuers []*issuerEntry, cert *x509.Certificate) string {
	for _, e := range issuers {
		ic, err := parseCertPEM(e.Certificate)
		if err != nil {
			continue
		}
		if bytes.Equal(cert.RawIssuer, ic.RawSubject) && cert.CheckSignatureFrom(ic) == nil {
			return e.ID
		}
	}
	return ""
}

// parseCertPEM parses the first certificate of a PEM text.
func parseCertPEM(s string) (*x509.Certificate, error) {
	certs, err := parseCertsPEM(s)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// parseCertsPEM parses every CERTIFICATE block of a PEM bundle (other block
// types are skipped). It fails when there is none or one does not parse.
func parseCertsPEM(s string) ([]*x509.Certificate, error) {
	rest := []byte(s)
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// encodeCertPEM is the PEM text of a DER certificate, without a trailing
// newline (Vault's form in JSON responses).
func encodeCertPEM(der []byte) string {
	return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// sortedIDs returns the issuers' ids, sorted.
func sortedIDs(all []*issuerEntry) []string {
	ids := make([]string, 0, len(all))
	for _, e := range all {
		ids = append(ids, e.ID)
	}
	sort.Strings(ids)
	return ids
}
