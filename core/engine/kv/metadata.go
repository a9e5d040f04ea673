package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Vault's limits on custom_metadata.
const (
	maxCustomMetadataKeys        = 64
	maxCustomMetadataKeyLength   = 128
	maxCustomMetadataValueLength = 512
	customMetadataErrPrefix      = "custom_metadata validation failed"
)

const casIgnoredWarning = `"cas_required" set to false, but is mandated by backend config. This value will be ignored.`

// metadataRoute serves "metadata/:path": read, write, patch and delete a
// key's metadata (delete removes every version), and list keys.
func (b *Backend) metadataRoute() framework.Route {
	return framework.Route{
		Pattern: `metadata(?:/` + framework.MatchAllRegex("path") + `)?`,
		Fields: map[string]*framework.FieldSchema{
			"path":                 pathField(),
			"cas_required":         {Type: framework.TypeBool, Description: "If true, writes to the key must carry the cas option."},
			"max_versions":         {Type: framework.TypeInt, Description: "The number of versions to keep (0: the mount's setting)."},
			"delete_version_after": {Type: framework.TypeDurationSecond, Description: "How long after creation a version is soft-deleted (0: the mount's setting)."},
			"custom_metadata":      {Type: framework.TypeMap, Description: "Version-agnostic string key/value pairs describing the secret."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.metadataRead,
			core.OpUpdate: b.metadataWrite,
			core.OpPatch:  b.metadataPatch,
			core.OpDelete: b.metadataDelete,
			core.OpList:   b.metadataList,
		},
		ExistenceCheck: b.keyExists,
		Help:           "Read, write and delete key metadata and settings; list keys.",
	}
}

// metadataList lists the keys and folders (with a trailing "/") under the
// path; nothing there is a 404.
func (b *Backend) metadataList(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	prefix, err := listPrefix(d.String("path"))
	if err != nil {
		return nil, err
	}
	keys, err := st.storage.List(ctx, metaPrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("kv: list: %w", err)
	}
	return listResponse(keys)
}

func (b *Backend) metadataRead(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	m, err := loadMeta(ctx, st.storage, path)
	if err != nil || m == nil {
		return nil, notFoundOr(err)
	}
	versions := make(map[string]any, len(m.Versions))
	for n, vm := range m.Versions {
		versions[strconv.Itoa(n)] = map[string]any{
			"created_time":  formatTime(vm.CreatedTime),
			"deletion_time": formatTime(vm.DeletionTime),
			"destroyed":     vm.Destroyed,
		}
	}
	return &core.Response{Data: map[string]any{
		"versions":             versions,
		"current_version":      m.CurrentVersion,
		"oldest_version":       m.OldestVersion,
		"created_time":         formatTime(m.CreatedTime),
		"updated_time":         formatTime(m.UpdatedTime),
		"max_versions":         m.MaxVersions,
		"cas_required":         m.CASRequired,
		"delete_version_after": m.DeleteVersionAfter.String(),
		"custom_metadata":      customMetadataValue(m.CustomMetadata),
	}}, nil
}

// metadataWrite sets the given settings, creating the key (with no versions)
// when it does not exist. A write with no settings is a no-op. Fields left
// out keep their values.
func (b *Backend) metadataWrite(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return b.changeMetadata(ctx, d, false)
}

// metadataPatch merges the given settings into an existing key's metadata
// (404 when the key does not exist). custom_metadata merges as a JSON merge
// patch: a null member removes that entry, a null custom_metadata removes
// them all.
func (b *Backend) metadataPatch(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return b.changeMetadata(ctx, d, true)
}

func (b *Backend) changeMetadata(ctx context.Context, d *framework.FieldData, patch bool) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	cmRaw, cmPresent := d.Raw["custom_metadata"]
	if !patch {
		cmPresent = cmPresent && cmRaw != nil
	}
	if !patch && !cmPresent && !d.Has("max_versions") && !d.Has("cas_required") && !d.Has("delete_version_after") {
		return nil, nil
	}
	if d.Has("max_versions") && d.Int("max_versions") < 0 {
		return nil, core.Invalid("max_versions must not be negative")
	}
	cfg, err := loadConfig(ctx, st.storage)
	if err != nil {
		return nil, err
	}
	var resp *core.Response
	if d.Has("cas_required") && !d.Bool("cas_required") && cfg.CASRequired {
		resp = &core.Response{Warnings: []string{casIgnoredWarning}}
	}

	l := b.lock(path)
	l.Lock()
	defer l.Unlock()
	m, err := loadMeta(ctx, st.storage, path)
	if err != nil {
		return nil, err
	}
	if m == nil {
		if patch {
			return nil, core.ErrNotFound
		}
		m = newMeta(path, st.nowUTC())
	}
	if cmPresent {
		cm, err := mergeCustomMetadata(m.CustomMetadata, d.Map("custom_metadata"), cmRaw == nil, patch)
		if err != nil {
			return nil, err
		}
		m.CustomMetadata = cm
	}
	if d.Has("max_versions") {
		m.MaxVersions = d.Int("max_versions")
	}
	if d.Has("cas_required") {
		m.CASRequired = d.Bool("cas_required")
	}
	if d.Has("delete_version_after") {
		m.DeleteVersionAfter = d.Duration("delete_version_after").Truncate(time.Second)
	}
	if err := saveMeta(ctx, st.storage, m); err != nil {
		return nil, err
	}
	return resp, nil
}

// mergeCustomMetadata computes a key's new custom metadata. A write replaces
// it with given; a patch with clear set removes everything, else merges
// given into current (a null value deletes that entry). The result is
// validated against Vault's limits; errors are CodeInvalid.
func mergeCustomMetadata(current map[string]string, given map[string]any, clear, patch bool) (map[string]string, error) {
	out := map[string]string{}
	if patch {
		if clear {
			return nil, nil
		}
		maps.Copy(out, current)
	}
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(given)) {
		v := given[k]
		if v == nil && patch {
			delete(out, k)
			continue
		}
		s, ok := customMetadataString(v)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: value for key %q must be a string", customMetadataErrPrefix, k))
			continue
		}
		out[k] = s
	}
	errs = append(errs, validateCustomMetadata(out)...)
	if len(errs) > 0 {
		return nil, core.Invalid("%s", strings.Join(errs, "; "))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// customMetadataString converts a scalar to its string form as Vault's weak
// decoding does (null becomes "", which then fails validation).
func customMetadataString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		if x {
			return "1", true
		}
		return "0", true
	}
	return "", false
}

// validateCustomMetadata applies Vault's limits: at most 64 keys; keys of 1 to
// 128 bytes, values of 1 to 512 bytes, both printable. It returns one message
// per problem, in key order.
func validateCustomMetadata(cm map[string]string) []string {
	if len(cm) > maxCustomMetadataKeys {
		return []string{fmt.Sprintf("%s: payload must contain at most %d keys, provided %d",
			customMetadataErrPrefix, maxCustomMetadataKeys, len(cm))}
	}
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(cm)) {
		v := cm[k]
		if n := len(k); n == 0 || n > maxCustomMetadataKeyLength {
			errs = append(errs, fmt.Sprintf("%s: length of key %q is %d but must be 0 < len(key) <= %d",
				customMetadataErrPrefix, k, n, maxCustomMetadataKeyLength))
		}
		if n := len(v); n == 0 || n > maxCustomMetadataValueLength {
			errs = append(errs, fmt.Sprintf("%s: length of value for key %q is %d but must be 0 < len(value) <= %d",
				customMetadataErrPrefix, k, n, maxCustomMetadataValueLength))
		}
		if !printable(k) {
			errs = append(errs, fmt.Sprintf("%s: key %q contains unprintable characters", customMetadataErrPrefix, k))
		}
		if !printable(v) {
			errs = append(errs, fmt.Sprintf("%s: value for key %q contains unprintable characters", customMetadataErrPrefix, k))
		}
	}
	return errs
}

func printable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// metadataDelete removes the key's metadata and every version, atomically.
// Deleting a missing key is not an error.
func (b *Backend) metadataDelete(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	l := b.lock(path)
	l.Lock()
	defer l.Unlock()
	m, err := loadMeta(ctx, st.storage, path)
	if err != nil || m == nil {
		return nil, err
	}
	dir := versionDir(path)
	stored, err := st.storage.List(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("kv: list versions: %w", err)
	}
	ops := []storage.TxnOp{{Kind: storage.OpDelete, Key: metaKey(path)}}
	for _, k := range stored {
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: dir + k})
	}
	if err := storage.Txn(ctx, st.storage, ops); err != nil {
		return nil, fmt.Errorf("kv: delete key: %w", err)
	}
	return nil, nil
}
