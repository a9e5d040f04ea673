package pki

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// tidyStatus is the result of the last tidy run.
type tidyStatus struct {
	State                   string    `json:"state"`
	Error                   string    `json:"error,omitempty"`
	TimeStarted             time.Time `json:"time_started"`
	TimeFinished            time.Time `json:"time_finished"`
	TidyCertStore           bool      `json:"tidy_cert_store"`
	TidyRevokedCerts        bool      `json:"tidy_revoked_certs"`
	SafetyBuffer            int64     `json:"safety_buffer"`
	CertStoreDeletedCount   int       `json:"cert_store_deleted_count"`
	RevokedCertDeletedCount int       `json:"revoked_cert_deleted_count"`
}

const defaultSafetyBuffer = 72 * time.Hour

// tidyRoute is tidy: remove certificates (tidy_cert_store) and revocation
// records (tidy_revoked_certs) that expired more than safety_buffer ago.
// Unlike Vault, which tidies in the background, Vigil tidies before
// answering (the work is bounded by the mount's storage) and still answers
// 202 Accepted with Vault's warning; tidy-status reports the counts.
func (b *Backend) tidyRoute() framework.Route {
	return framework.Route{
		Pattern: `tidy`,
		Fields: map[string]*framework.FieldSchema{
			"tidy_cert_store":    {Type: framework.TypeBool, Description: "Remove expired certificates from the store."},
			"tidy_revoked_certs": {Type: framework.TypeBool, Description: "Remove expired certificates from the revocation list."},
			"safety_buffer":      {Type: framework.TypeDurationSecond, Default: int64(defaultSafetyBuffer / time.Second), Description: "How long after expiry a certificate is kept (default 72h)."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpUpdate: b.handler(b.tidy),
		},
		Help: "Remove expired certificates.",
	}
}

func (b *Backend) tidy(ctx context.Context, st *state, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	certStore, revoked := d.Bool("tidy_cert_store"), d.Bool("tidy_revoked_certs")
	if !certStore && !revoked {
		return nil, core.Invalid("no tidy operation was requested: set tidy_cert_store and/or tidy_revoked_certs to true")
	}
	buffer := d.Duration("safety_buffer")
	if buffer < time.Second {
		return nil, core.Invalid("safety_buffer must be greater than zero")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &tidyStatus{State: "Running", TimeStarted: st.now().UTC(), TidyCertStore: certStore, TidyRevokedCerts: revoked,
		SafetyBuffer: int64(buffer / time.Second)}
	cutoff := st.now().Add(-buffer)
	err := b.runTidy(ctx, st, s, cutoff)
	s.TimeFinished = st.now().UTC()
	s.State = "Finished"
	if err != nil {
		s.State, s.Error = "Error", err.Error()
	}
	if perr := storage.PutJSON(ctx, st.storage, tidyStatusKey, s); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	resp := &core.Response{StatusCode: 202, Data: tidyStatusData(s)}
	resp.AddWarning("Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs.")
	return resp, nil
}

// runTidy deletes what expired before cutoff. The caller holds b.mu.
func (b *Backend) runTidy(ctx context.Context, st *state, s *tidyStatus, cutoff time.Time) error {
	expired := func(der []byte) bool {
		c, err := x509.ParseCertificate(der)
		return err != nil || c.NotAfter.Before(cutoff)
	}
	if s.TidyCertStore {
		keys, err := st.storage.List(ctx, certsPrefix)
		if err != nil {
			return err
		}
		for _, k := range keys {
			var r certRecord
			ok, err := storage.GetJSON(ctx, st.storage, certsPrefix+k, &r)
			if err != nil {
				return err
			}
			if ok && !expired(r.Certificate) {
				continue
			}
			if err := st.storage.Delete(ctx, certsPrefix+k); err != nil {
				return err
			}
			s.CertStoreDeletedCount++
		}
	}
	if s.TidyRevokedCerts {
		keys, err := st.storage.List(ctx, revokedPrefix)
		if err != nil {
			return err
		}
		for _, k := range keys {
			var r revokedRecord
			ok, err := storage.GetJSON(ctx, st.storage, revokedPrefix+k, &r)
			if err != nil {
				return err
			}
			if ok && !expired(r.Certificate) {
				continue
			}
			if err := storage.Txn(ctx, st.storage, []storage.TxnOp{{Kind: storage.OpDelete, Key: revokedPrefix + k},
				{Kind: storage.OpDelete, Key: certsPrefix + k}}); err != nil {
				return err
			}
			s.RevokedCertDeletedCount++
		}
		if s.RevokedCertDeletedCount > 0 {
			return b.buildCRLsLocked(ctx, st)
		}
	}
	return nil
}

// tidyStatusRoute is tidy-status.
func (b *Backend) tidyStatusRoute() framework.Route {
	return framework.Route{
		Pattern: `tidy-status`,
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.handler(func(ctx context.Context, st *state, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
				s := &tidyStatus{State: "Inactive"}
				if _, err := storage.GetJSON(ctx, st.storage, tidyStatusKey, s); err != nil {
					return nil, err
				}
				return &core.Response{Data: tidyStatusData(s)}, nil
			}),
		},
		Help: "Report the last tidy run.",
	}
}

func tidyStatusData(s *tidyStatus) map[string]any {
	var started, finished any
	if !s.TimeStarted.IsZero() {
		started = s.TimeStarted.Format(time.RFC3339Nano)
	}
	if !s.TimeFinished.IsZero() {
		finished = s.TimeFinished.Format(time.RFC3339Nano)
	}
	var errText any
	if s.Error != "" {
		errText = s.Error
	}
	return map[string]any{"state": s.State, "error": errText, "time_started": started, "time_finished": finished,
		"tidy_cert_store": s.TidyCertStore, "tidy_revoked_certs": s.TidyRevokedCerts, "safety_buffer": s.SafetyBuffer,
		"cert_store_deleted_count": s.CertStoreDeletedCount, "revoked_cert_deleted_count": s.RevokedCertDeletedCount}
}
