package pki

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// revokedRecord is the revocation of one certificate.
type revokedRecord struct {
	Certificate       []byte    `json:"certificate"` // DER
	RevocationTime    int64     `json:"revocation_time"`
	RevocationTimeUTC time.Time `json:"revocation_time_utc"`
	IssuerID          string    `json:"issuer_id,omitempty"`
}

// crlRecord is an issuer's current CRL.
type crlRecord struct {
	DER        []byte    `json:"der"`
	Number     int64     `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	// Digest identifies the content (entries, validity, issuer); a rebuild
	// at the same instant with the same content keeps the stored CRL.
	Digest string `json:"digest,omitempty"`
}

// expiryWiggle is how close to NotAfter a certificate counts as expired
// when revoked (leases are stored with second precision), as in Vault.
const expiryWiggle = 2 * time.Second

func (st *state) getRevoked(ctx context.Context, colon string) (*revokedRecord, error) {
	var r revokedRecord
	ok, err := storage.GetJSON(ctx, st.storage, revokedPrefix+storageSerial(colon), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (st *state) getCert(ctx context.Context, colon string) (*certRecord, error) {
	var r certRecord
	ok, err := storage.GetJSON(ctx, st.storage, certsPrefix+storageSerial(colon), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func revocationData(r *revokedRecord) map[string]any {
	return map[string]any{"revocation_time": r.RevocationTime,
		"revocation_time_rfc3339": r.RevocationTimeUTC.Format(time.RFC3339Nano), "state": "revoked"}
}

// revoke revokes the certificate with serial colon (given, or read from
// given when given is set) and rebuilds the CRLs. Revoking a revoked
// certificate returns its first revocation; an expired one is not added to
// the CRL (a warning says so). Errors are CodeInvalid with Vault's texts.
func (b *Backend) revoke(ctx context.Context, st *state, colon string, given *x509.Certificate) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	issuers, err := st.listIssuers(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range issuers {
		if e.SerialNumber == colon {
			return nil, core.Invalid("adding issuer (id: %s) to its own CRL is not allowed", e.ID)
		}
	}
	if prev, err := st.getRevoked(ctx, colon); err != nil || prev != nil {
		if err != nil {
			return nil, err
		}
		return &core.Response{Data: revocationData(prev)}, nil
	}
	rec, err := st.getCert(ctx, colon)
	if err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	issuerID := ""
	switch {
	case rec != nil:
		if cert, err = x509.ParseCertificate(rec.Certificate); err != nil {
			return nil, core.Errorf(core.CodeInternal, "pki: stored certificate %s: %w", colon, err)
		}
		if given != nil && !given.Equal(cert) {
			return nil, core.Invalid("certificate with serial %s does not match the certificate this mount issued", colon)
		}
		issuerID = rec.IssuerID
	case given != nil:
		// Not stored (no_store): accept it if one of our issuers signed it.
		if issuerID = issuerByCert(issuers, given); issuerID == "" {
			return nil, core.Invalid("certificate with serial %s was not issued by this mount", colon)
		}
		cert = given
	default:
		return nil, core.Invalid("certificate with serial %s not found.", colon)
	}
	now := st.now()
	if cert.NotAfter.Before(now.Add(expiryWiggle)) {
		resp := &core.Response{}
		resp.AddWarning(fmt.Sprintf("certificate with serial %s already expired; refusing to add to CRL", colon))
		return resp, nil
	}
	r := &revokedRecord{Certificate: cert.Raw, RevocationTime: now.Unix(), RevocationTimeUTC: now.UTC(), IssuerID: issuerID}
	if err := storage.PutJSON(ctx, st.storage, revokedPrefix+storageSerial(colon), r); err != nil {
		return nil, err
	}
	resp := &core.Response{Data: revocationData(r)}
	if err := b.buildCRLsLocked(ctx, st); err != nil {
		resp.AddWarning(fmt.Sprintf("the certificate is revoked, but rebuilding the CRL failed: %v", err))
	}
	return resp, nil
}

// RevokeSecret revokes the certificate of a lease (from issue/sign with
// generate_lease). It is idempotent; a certificate that is gone, already
// revoked or expired is a success.
func (b *Backend) RevokeSecret(ctx context.Context, _ *core.Request, s *core.Secret) error {
	st, err := b.state()
	if err != nil {
		return err
	}
	raw, _ := s.InternalData["serial_number"].(string)
	if raw == "" {
		return core.Invalid("could not find serial in internal secret data")
	}
	colon, err := normalizeSerial(raw)
	if err != nil {
		return err
	}
	rec, err := st.getCert(ctx, colon)
	if err != nil {
		return err
	}
	if rec == nil {
		st.logger.Warn("certificate revoke failed because not found in storage, treating as success", "serial", colon)
		return nil
	}
	_, err = b.revoke(ctx, st, colon, nil)
	return err
}

// buildCRLsLocked rebuilds the CRL of every issuer that has its key. A
// revoked certificate is listed by the issuer that signed it, or by the
// default issuer when that one is gone. The caller holds b.mu.
func (b *Backend) buildCRLsLocked(ctx context.Context, st *state) error {
	issuers, err := st.listIssuers(ctx)
	if err != nil {
		return err
	}
	icfg, err := st.getIssuersConfig(ctx)
	if err != nil {
		return err
	}
	ccfg, err := st.getCRLConfig(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, e := range issuers {
		known[e.ID] = true
	}
	byIssuer := map[string][]x509.RevocationListEntry{}
	if !ccfg.Disable {
		serials, err := st.storage.List(ctx, revokedPrefix)
		if err != nil {
			return err
		}
		for _, s := range serials {
			var r revokedRecord
			ok, err := storage.GetJSON(ctx, st.storage, revokedPrefix+s, &r)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			n, ok := new(big.Int).SetString(strings.ReplaceAll(s, "-", ""), 16)
			if !ok {
				continue
			}
			id := r.IssuerID
			if !known[id] {
				id = icfg.Default
			}
			byIssuer[id] = append(byIssuer[id], x509.RevocationListEntry{SerialNumber: n, RevocationTime: r.RevocationTimeUTC})
		}
	}
	now := st.now()
	var errs []string
	for _, e := range issuers {
		if e.KeyID == "" {
			continue
		}
		if err := b.buildCRL(ctx, st, e, byIssuer[e.ID], now, ccfg.Expiry); err != nil {
			errs = append(errs, fmt.Sprintf("issuer %s: %v", e.ID, err))
		}
	}
	if len(errs) > 0 {
		return core.Invalid("error building CRLs: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (b *Backend) buildCRL(ctx context.Context, st *state, e *issuerEntry, entries []x509.RevocationListEntry, now time.Time, expiry time.Duration) error {
	cert, err := parseCertPEM(e.Certificate)
	if err != nil {
		return err
	}
	signer, err := b.loadSigner(ctx, st, e.KeyID)
	if err != nil {
		return err
	}
	var prev crlRecord
	if _, err := storage.GetJSON(ctx, st.storage, crlsPrefix+e.ID, &prev); err != nil {
		return err
	}
	rec := crlRecord{Number: prev.Number + 1, ThisUpdate: now.UTC(), NextUpdate: now.Add(expiry).UTC()}
	rec.Digest = crlDigest(e.ID, entries, rec.ThisUpdate, rec.NextUpdate)
	if prev.Digest == rec.Digest && len(prev.DER) > 0 {
		return nil // same content at the same instant: nothing to publish
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(rec.Number), ThisUpdate: rec.ThisUpdate, NextUpdate: rec.NextUpdate,
		RevokedCertificateEntries: entries,
	}, cert, signer)
	if err != nil {
		return err
	}
	rec.DER = der
	return storage.PutJSON(ctx, st.storage, crlsPrefix+e.ID, &rec)
}

// crlDigest is the SHA-256 of what a CRL says, independent of entry order.
func crlDigest(issuerID string, entries []x509.RevocationListEntry, this, next time.Time) string {
	lines := make([]string, 0, len(entries)+1)
	for _, e := range entries {
		lines = append(lines, e.SerialNumber.Text(16)+"@"+e.RevocationTime.UTC().Format(time.RFC3339Nano))
	}
	sort.Strings(lines)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s", issuerID, this.Format(time.RFC3339Nano), next.Format(time.RFC3339Nano), strings.Join(lines, "\n"))
	return hex.EncodeToString(h.Sum(nil))
}

// defaultCRL returns the default issuer's CRL, building it if missing.
func (b *Backend) defaultCRL(ctx context.Context, st *state) (*crlRecord, error) {
	e, err := st.resolveIssuer(ctx, defaultIssuerRef)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		var rec crlRecord
		ok, err := storage.GetJSON(ctx, st.storage, crlsPrefix+e.ID, &rec)
		if err != nil {
			return nil, err
		}
		if ok {
			return &rec, nil
		}
		if e.KeyID == "" {
			break
		}
		b.mu.Lock()
		err = b.buildCRLsLocked(ctx, st)
		b.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return nil, core.Invalid("no CRL is available for the default issuer %s (it has no key on this mount)", e.ID)
}

// refreshStaleCRLs rebuilds the CRLs when one has used half its validity.
// JobCRLRefresh is the internal principal that rebuilds CRLs before they
// expire.
const JobCRLRefresh = "pki-crl-refresh"

// ScheduledJobs implements framework.Scheduler: every CRL that has used up half
// of its validity is rebuilt, so a published CRL never expires while the
// mount is in use (Vault leaves that to auto_rebuild, off by default; Vigil
// always does it). The rebuild is an audited internal request.
func (b *Backend) ScheduledJobs() []framework.Job {
	return []framework.Job{{Name: JobCRLRefresh, Scan: "scheduled/crl-refresh"}}
}

func (b *Backend) crlRefreshScanRoute() framework.Route {
	return framework.Route{
		Pattern:    `scheduled/crl-refresh`,
		Internal:   true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.handler(b.crlRefreshScan)},
		Help:       "Internal: whether a CRL has used up half of its validity.",
	}
}

func (b *Backend) crlRefreshRoute() framework.Route {
	return framework.Route{
		Pattern:    `scheduled/crl-refresh/rebuild`,
		Internal:   true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.handler(b.crlRefresh)},
		Help:       "Internal: rebuild the CRLs if one has used up half of its validity.",
	}
}

// crlRefreshScan answers {"due": ["scheduled/crl-refresh/rebuild"]} when a
// CRL is stale, {"due": []} otherwise. A mount without a CA has no CRL.
func (b *Backend) crlRefreshScan(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	stale, err := b.staleCRL(ctx, st)
	if err != nil {
		return nil, err
	}
	due := []string{}
	if stale {
		due = append(due, "scheduled/crl-refresh/rebuild")
	}
	return &core.Response{Data: map[string]any{"due": due}}, nil
}

// crlRefresh rebuilds the CRLs if one is still stale.
func (b *Backend) crlRefresh(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	stale, err := b.staleCRL(ctx, st)
	if err != nil || !stale {
		return &core.Response{Data: map[string]any{"rebuilt": false}}, err
	}
	if err := b.buildCRLsLocked(ctx, st); err != nil {
		return nil, err
	}
	return &core.Response{Data: map[string]any{"rebuilt": true}}, nil
}

// staleCRL reports whether a stored CRL has used up half of its validity.
func (b *Backend) staleCRL(ctx context.Context, st *state) (bool, error) {
	ids, err := st.storage.List(ctx, crlsPrefix)
	if err != nil {
		return false, err
	}
	now := st.now()
	for _, id := range ids {
		var rec crlRecord
		if ok, err := storage.GetJSON(ctx, st.storage, crlsPrefix+id, &rec); err != nil || !ok {
			continue
		}
		if now.After(rec.ThisUpdate.Add(rec.NextUpdate.Sub(rec.ThisUpdate) / 2)) {
			return true, nil
		}
	}
	return false, nil
}

func crlPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// revokeRoute is revoke: by serial_number or certificate.
func (b *Backend) revokeRoute() framework.Route {
	return framework.Route{
		Pattern: `revoke`,
		Fields: map[string]*framework.FieldSchema{
			"serial_number": {Type: framework.TypeString, Description: "Serial of the certificate to revoke (colon or hyphen separated hex)."},
			"certificate":   {Type: framework.TypeString, Description: "PEM certificate to revoke, instead of its serial."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: b.handler(b.revokeHandler),
		},
		Help: "Revoke a certificate.",
	}
}

func (b *Backend) revokeHandler(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	serial, certText := strings.TrimSpace(d.String("serial_number")), strings.TrimSpace(d.String("certificate"))
	switch {
	case serial == "" && certText == "":
		return nil, core.Invalid("The serial number or certificate to revoke must be provided.")
	case serial != "" && certText != "":
		return nil, core.Invalid("Must provide either the certificate or the serial to revoke; not both.")
	case certText != "":
		certs, err := parseCertsPEM(certText)
		if err != nil || len(certs) != 1 {
			return nil, core.Invalid("certificate could not be parsed: expected exactly one PEM certificate")
		}
		return b.revoke(ctx, st, formatSerial(certs[0].SerialNumber), certs[0])
	}
	colon, err := normalizeSerial(serial)
	if err != nil {
		return nil, err
	}
	return b.revoke(ctx, st, colon, nil)
}

// crlRotateRoute is crl/rotate: rebuild every CRL now.
func (b *Backend) crlRotateRoute() framework.Route {
	h := b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if err := b.buildCRLsLocked(ctx, st); err != nil {
			return nil, err
		}
		return &core.Response{Data: map[string]any{"success": true}}, nil
	})
	return framework.Route{
		Pattern:    `crl/rotate`,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: h, core.OpUpdate: h},
		Help:       "Rebuild the CRLs.",
	}
}

// crlRoute is crl (DER) or crl/pem, unauthenticated.
func (b *Backend) crlRoute(asPEM bool) framework.Route {
	pattern := `crl`
	if asPEM {
		pattern = `crl/pem`
	}
	return framework.Route{
		Pattern:         pattern,
		Unauthenticated: true,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				rec, err := b.defaultCRL(ctx, st)
				if err != nil {
					return nil, err
				}
				if asPEM {
					return rawResponse(ctPEMFile, crlPEM(rec.DER)), nil
				}
				return rawResponse(ctDERCRL, rec.DER), nil
			}),
		},
		Help: "Fetch the default issuer's CRL.",
	}
}
