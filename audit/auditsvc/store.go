package auditsvc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/audit/hmac"
	"github.com/vigilsec/vigil/audit/witness"
	"github.com/vigilsec/vigil/core/storage"
)

// Barrier keys. Everything the audit subsystem persists is encrypted by the
// barrier and replicated by Raft.
const (
	keyDevices       = "sys/audit/config/devices"      // API-enabled devices
	keyEverEnabled   = "sys/audit/config/ever-enabled" // set when any device was ever enabled
	keySaltPrefix    = "sys/audit/salt/"               // + device name
	keyCheckpointKey = "sys/audit/checkpoint-key"      // Ed25519 signing key
	keyRelinks       = "sys/audit/relinks/"            // + node id + "/" + device name + "/" + chain start: relinked chains
	keyWitnessed     = "sys/audit/witnessed/"          // + node id + "/" + device: checkpoints this server keeps as a witness for others
	keyRetention     = "sys/audit/retention/"          // + node id + "/" + device: the newest segment retention deleted
	keyVerification  = "sys/audit/verification/"       // + node id
)

// apiDevice is an API-enabled device as persisted.
type apiDevice struct {
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
}

// store persists audit state in the barrier.
type store struct {
	s    storage.Storage
	rand io.Reader
	now  func() time.Time
}

func (st store) devices(ctx context.Context) (map[string]apiDevice, error) {
	out := map[string]apiDevice{}
	if _, err := storage.GetJSON(ctx, st.s, keyDevices, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (st store) putDevices(ctx context.Context, m map[string]apiDevice) error {
	return storage.PutJSON(ctx, st.s, keyDevices, m)
}

func (st store) everEnabled(ctx context.Context) (bool, error) {
	b, err := st.s.Get(ctx, keyEverEnabled)
	return b != nil, err
}

func (st store) setEverEnabled(ctx context.Context) error {
	return st.s.Put(ctx, keyEverEnabled, []byte("true"))
}

// salt returns the device's salt, creating and storing it on first use.
func (st store) salt(ctx context.Context, name string) (*hmac.Salt, error) {
	var rec struct {
		Key []byte `json:"key"`
	}
	ok, err := storage.GetJSON(ctx, st.s, keySaltPrefix+name, &rec)
	if err != nil {
		return nil, err
	}
	if ok {
		return hmac.New(rec.Key)
	}
	s, err := hmac.Generate(st.rand)
	if err != nil {
		return nil, err
	}
	rec.Key = s.Key()
	if err := storage.PutJSON(ctx, st.s, keySaltPrefix+name, rec); err != nil {
		return nil, fmt.Errorf("store salt: %w", err)
	}
	return s, nil
}

func (st store) deleteSalt(ctx context.Context, name string) error {
	return st.s.Delete(ctx, keySaltPrefix+name)
}

// signingKey returns the cluster's checkpoint key, creating it on first use.
func (st store) signingKey(ctx context.Context) (ed25519.PrivateKey, time.Time, error) {
	var rec struct {
		Seed    []byte    `json:"seed"`
		Created time.Time `json:"created"`
	}
	ok, err := storage.GetJSON(ctx, st.s, keyCheckpointKey, &rec)
	if err != nil {
		return nil, time.Time{}, err
	}
	if ok && len(rec.Seed) == ed25519.SeedSize {
		return ed25519.NewKeyFromSeed(rec.Seed), rec.Created, nil
	}
	r := st.rand
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, time.Time{}, err
	}
	rec.Seed, rec.Created = priv.Seed(), st.now().UTC()
	if err := storage.PutJSON(ctx, st.s, keyCheckpointKey, rec); err != nil {
		return nil, time.Time{}, fmt.Errorf("store checkpoint key: %w", err)
	}
	return priv, rec.Created, nil
}

// checkpointKey is where a node's newest checkpoint of a device is kept
// (the cluster witness reads and countersigns it there).
func checkpointKey(node, device string) string { return witness.CheckpointKey(node, device) }

func (st store) checkpoint(ctx context.Context, node, device string) (*audit.CheckpointJSON, error) {
	var c audit.CheckpointJSON
	ok, err := storage.GetJSON(ctx, st.s, checkpointKey(node, device), &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func (st store) putCheckpoint(ctx context.Context, node, device string, c audit.CheckpointJSON) error {
	return storage.PutJSON(ctx, st.s, checkpointKey(node, device), c)
}

func (st store) verification(ctx context.Context, node string) (*audit.Verification, error) {
	var v audit.Verification
	ok, err := storage.GetJSON(ctx, st.s, keyVerification+node, &v)
	if err != nil || !ok {
		return nil, err
	}
	return &v, nil
}

func (st store) putVerification(ctx context.Context, v audit.Verification) error {
	return storage.PutJSON(ctx, st.s, keyVerification+v.NodeID, v)
}

// retentionRecord is the newest segment retention deleted from a device's log.
type retentionRecord struct {
	chain.DeletedSegment
	Path string `json:"path"`
}

// retention returns the newest segment retention deleted from the log at
// path (nil when none).
func (st store) retention(ctx context.Context, node, device, path string) (*chain.DeletedSegment, error) {
	var r retentionRecord
	ok, err := storage.GetJSON(ctx, st.s, keyRetention+node+"/"+device, &r)
	if err != nil || !ok || r.Path != path {
		return nil, err
	}
	return &r.DeletedSegment, nil
}

func (st store) putRetention(ctx context.Context, node, device, path string, d chain.DeletedSegment) error {
	return storage.PutJSON(ctx, st.s, keyRetention+node+"/"+device, retentionRecord{DeletedSegment: d, Path: path})
}
