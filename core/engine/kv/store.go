package kv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// defaultMaxVersions is the number of versions kept when neither the key nor
// the mount configures max_versions.
const defaultMaxVersions = 10

// keyMetadata is a v2 key's metadata, stored at meta/<path>.
type keyMetadata struct {
	Path           string                   `json:"path"`
	Versions       map[int]*versionMetadata `json:"versions"`
	CurrentVersion int                      `json:"current_version"`
	// OldestVersion is 0 until versions are pruned, then the oldest kept.
	OldestVersion      int               `json:"oldest_version"`
	MaxVersions        int               `json:"max_versions,omitempty"`
	CASRequired        bool              `json:"cas_required,omitempty"`
	DeleteVersionAfter time.Duration     `json:"delete_version_after,omitempty"`
	CustomMetadata     map[string]string `json:"custom_metadata,omitempty"`
	CreatedTime        time.Time         `json:"created_time"`
	UpdatedTime        time.Time         `json:"updated_time"`
}

// versionMetadata describes one version of a key.
type versionMetadata struct {
	CreatedTime time.Time `json:"created_time"`
	// DeletionTime is when the version is (or will be, with
	// delete_version_after) soft-deleted; zero when it is not.
	DeletionTime time.Time `json:"deletion_time,omitzero"`
	Destroyed    bool      `json:"destroyed,omitempty"`
}

// versionRecord is a version's stored data.
type versionRecord struct {
	Data json.RawMessage `json:"data"`
}

// deleted reports whether the version reads as deleted at now.
func (v *versionMetadata) deleted(now time.Time) bool {
	return !v.DeletionTime.IsZero() && !v.DeletionTime.After(now)
}

// live reports whether the version's data can be read at now.
func (v *versionMetadata) live(now time.Time) bool { return !v.Destroyed && !v.deleted(now) }

func metaKey(path string) string { return metaPrefix + path }

// versionDir is the storage folder holding every version of path.
func versionDir(path string) string {
	h := sha256.Sum256([]byte(path))
	return versionsPrefix + hex.EncodeToString(h[:]) + "/"
}

func versionKey(path string, n int) string { return versionDir(path) + strconv.Itoa(n) }

// loadMeta returns the metadata of path, or nil when the key does not exist.
func loadMeta(ctx context.Context, s storage.Storage, path string) (*keyMetadata, error) {
	var m keyMetadata
	ok, err := storage.GetJSON(ctx, s, metaKey(path), &m)
	if err != nil {
		return nil, fmt.Errorf("kv: read metadata: %w", err)
	}
	if !ok {
		return nil, nil
	}
	if m.Versions == nil {
		m.Versions = map[int]*versionMetadata{}
	}
	return &m, nil
}

// newMeta returns empty metadata for a key created at now.
func newMeta(path string, now time.Time) *keyMetadata {
	return &keyMetadata{Path: path, Versions: map[int]*versionMetadata{}, CreatedTime: now, UpdatedTime: now}
}

// putMetaOp encodes m as the transaction op storing it.
func putMetaOp(m *keyMetadata) (storage.TxnOp, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return storage.TxnOp{}, fmt.Errorf("kv: encode metadata: %w", err)
	}
	return storage.TxnOp{Kind: storage.OpPut, Key: metaKey(m.Path), Value: b}, nil
}

// saveMeta stores m, plus any extra ops, atomically.
func saveMeta(ctx context.Context, s storage.Storage, m *keyMetadata, extra ...storage.TxnOp) error {
	op, err := putMetaOp(m)
	if err != nil {
		return err
	}
	if err := storage.Txn(ctx, s, append([]storage.TxnOp{op}, extra...)); err != nil {
		return fmt.Errorf("kv: write metadata: %w", err)
	}
	return nil
}

// loadVersion returns the data of version n of path. Numbers are json.Number.
func loadVersion(ctx context.Context, s storage.Storage, path string, n int) (map[string]any, error) {
	raw, err := s.Get(ctx, versionKey(path, n))
	if err != nil {
		return nil, fmt.Errorf("kv: read version: %w", err)
	}
	if raw == nil {
		return nil, core.Errorf(core.CodeInternal, "could not find version data")
	}
	var rec versionRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("kv: decode version: %w", err)
	}
	return decodeObject(rec.Data)
}

// decodeObject decodes a JSON object with numbers as json.Number.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("kv: decode data: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// encodeVersion encodes data as a stored version record.
func encodeVersion(data map[string]any) ([]byte, error) {
	if data == nil {
		data = map[string]any{}
	}
	d, err := json.Marshal(data)
	if err != nil {
		return nil, core.Invalid("data cannot be encoded as JSON: %v", err)
	}
	return json.Marshal(versionRecord{Data: d})
}

// maxVersions is the number of versions to keep for m: the key's setting,
// else the mount's, else 10.
func (m *keyMetadata) maxVersions(cfg *config) int {
	switch {
	case m.MaxVersions > 0:
		return m.MaxVersions
	case cfg.MaxVersions > 0:
		return cfg.MaxVersions
	}
	return defaultMaxVersions
}

// deletionTime is when a version created (or undeleted) at t is to be
// soft-deleted: t plus the smaller non-zero delete_version_after of the mount
// and the key. ok is false when neither sets one or the mount disabled it.
func deletionTime(t time.Time, cfg *config, m *keyMetadata) (time.Time, bool) {
	if cfg.DeleteVersionAfter < 0 {
		return time.Time{}, false
	}
	d := m.DeleteVersionAfter
	if cfg.DeleteVersionAfter > 0 && (d == 0 || cfg.DeleteVersionAfter < d) {
		d = cfg.DeleteVersionAfter
	}
	if d <= 0 {
		return time.Time{}, false
	}
	return t.Add(d), true
}

// addVersion records a new version created at now and moves the window of
// kept versions. It returns the new version's metadata and the numbers of
// the versions that fell out of the window (whose data must be deleted).
func (m *keyMetadata) addVersion(now time.Time, cfg *config) (*versionMetadata, []int) {
	vm := &versionMetadata{CreatedTime: now}
	if dt, ok := deletionTime(now, cfg, m); ok {
		vm.DeletionTime = dt
	}
	m.CurrentVersion++
	m.Versions[m.CurrentVersion] = vm
	m.UpdatedTime = now
	if m.CreatedTime.IsZero() {
		m.CreatedTime = now
	}
	var pruned []int
	if keep := m.maxVersions(cfg); m.CurrentVersion-m.OldestVersion >= keep {
		last := m.CurrentVersion - keep
		for n := m.OldestVersion; n <= last; n++ {
			delete(m.Versions, n)
			if n > 0 {
				pruned = append(pruned, n)
			}
		}
		m.OldestVersion = last + 1
	}
	return vm, pruned
}

// versionFields is Vault's version metadata object: what a write returns and
// what a read nests under "metadata".
func (m *keyMetadata) versionFields(n int, v *versionMetadata) map[string]any {
	return map[string]any{
		"version":         n,
		"created_time":    formatTime(v.CreatedTime),
		"deletion_time":   formatTime(v.DeletionTime),
		"destroyed":       v.Destroyed,
		"custom_metadata": customMetadataValue(m.CustomMetadata),
	}
}

// customMetadataValue renders custom metadata as Vault does: null when empty.
func customMetadataValue(cm map[string]string) any {
	if len(cm) == 0 {
		return nil
	}
	out := make(map[string]any, len(cm))
	for k, v := range cm {
		out[k] = v
	}
	return out
}

// formatTime renders t as Vault does (RFC 3339 with nanoseconds, UTC), and
// the zero time as "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
