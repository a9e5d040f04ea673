package seal

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"

	"github.com/vigilsec/vigil/core"
)

// autoRecord is the root-key record of an auto seal.
type autoRecord struct {
	Seal string `json:"seal"`
	Blob []byte `json:"blob"`
}

// wrapRecord wraps rootKey with an auto seal into a root-key record.
func (m *Manager) wrapRecord(ctx context.Context, s Seal, rootKey []byte) ([]byte, error) {
	blob, err := s.Wrap(ctx, rootKey)
	if err != nil {
		err = sealError(s.Type(), "wrap the root key", err)
	}
	m.health.observe(s.Type(), err, m.now())
	if err != nil {
		return nil, err
	}
	return json.Marshal(autoRecord{Seal: s.Type(), Blob: blob})
}

// rootKeyRecord reads the stored root-key record.
func (m *Manager) rootKeyRecord(ctx context.Context) ([]byte, error) {
	record, err := m.physical.Get(ctx, RootKeyPath)
	if err != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: read root key: %w", err)
	}
	if record == nil {
		return nil, core.Errorf(core.CodeInternal, "seal: root key record %q is missing", RootKeyPath)
	}
	return record, nil
}

// unwrapRecord unwraps an auto seal's root-key record with s.
func (m *Manager) unwrapRecord(ctx context.Context, s Seal, record []byte) ([]byte, error) {
	var rec autoRecord
	if len(record) == 0 || record[0] != '{' || json.Unmarshal(record, &rec) != nil {
		return nil, core.Errorf(core.CodeInternal, "seal: the stored root key is not wrapped by an auto seal (the stored seal type and record disagree)")
	}
	if rec.Seal != s.Type() {
		return nil, core.Errorf(core.CodeInternal, "seal: the stored root key is wrapped by the %s seal, not %s", rec.Seal, s.Type())
	}
	key, err := s.Unwrap(ctx, rec.Blob)
	if err != nil {
		err = sealError(s.Type(), "unwrap the root key", err)
	}
	m.health.observe(s.Type(), err, m.now())
	if err != nil {
		return nil, err
	}
	return key, nil
}

// sealError names the seal and the step and keeps the cause, with
// ErrSealUnavailable's code: the server cannot use the seal, whether its
// backend is down or refuses the key.
func sealError(typ, step string, err error) error {
	return core.Errorf(core.CodeUnavailable, "%s seal: %s: %w", typ, step, err)
}

const recoveryCheckLabel = "vigil recovery key check v1"

// recoveryCheck is the stored verifier of a recovery key: it proves a
// reconstructed key right without the key being stored.
func recoveryCheck(recoveryKey []byte, clusterNonce string) []byte {
	mac := hmac.New(sha256.New, recoveryKey)
	mac.Write([]byte(recoveryCheckLabel))
	mac.Write([]byte{0})
	mac.Write([]byte(clusterNonce))
	return mac.Sum(nil)
}

// verifyRecoveryKey checks key against the stored verifier.
func (m *Manager) verifyRecoveryKey(ctx context.Context, cfg *Config, key []byte) error {
	want, err := m.physical.Get(ctx, RecoveryCheckPath)
	if err != nil {
		return core.Errorf(core.CodeInternal, "seal: read recovery check: %w", err)
	}
	if want == nil {
		return core.Errorf(core.CodeInternal, "seal: the recovery key check %q is missing", RecoveryCheckPath)
	}
	if len(key) != KeySize || !hmac.Equal(recoveryCheck(key, cfg.Nonce), want) {
		return ErrRecoveryKeyMismatch
	}
	return nil
}
