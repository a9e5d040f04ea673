package kv

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// dataRoute serves "data/:path": read a version, write a new version, patch
// the current version, and soft-delete the current version.
func (b *Backend) dataRoute() framework.Route {
	return framework.Route{
		Pattern: "data/" + `(?P<path>.*[^/])`,
		Fields: map[string]*framework.FieldSchema{
			"path":    pathField(),
			"version": {Type: framework.TypeInt, Description: "On read, the version to return (default: the current one)."},
			"options": {Type: framework.TypeMap, Description: `Write options. "cas": the write succeeds only if the key's current version is this (0: only if the key does not exist).`},
			"data":    {Type: framework.TypeMap, Description: "The secret's data."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.dataRead,
			core.OpUpdate: b.dataWrite,
			core.OpPatch:  b.dataPatch,
			core.OpDelete: b.dataDelete,
		},
		ExistenceCheck: b.keyExists,
		// Reading a version changes nothing.
		SideEffectFree: []core.Operation{core.OpRead},
		Help:           "Write, patch, read and delete versioned data in the KV store.",
	}
}

// keyExists is the existence check of data/ and metadata/: a key exists once
// it has metadata (a version or only settings).
func (b *Backend) keyExists(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
	st, err := b.state()
	if err != nil {
		return false, err
	}
	path := d.String("path")
	if checkPath(path) != nil {
		return false, nil
	}
	m, err := loadMeta(ctx, st.storage, path)
	return m != nil, err
}

// dataRead returns {"data": {...}, "metadata": {...}}. A version that never
// existed (or was pruned) is a bare 404; a deleted or destroyed one is a 404
// carrying "data": null and its metadata, as Vault answers.
func (b *Backend) dataRead(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	l := b.lock(path)
	l.RLock()
	defer l.RUnlock()
	m, err := loadMeta(ctx, st.storage, path)
	if err != nil || m == nil {
		return nil, notFoundOr(err)
	}
	n := m.CurrentVersion
	if v := d.Int("version"); v > 0 {
		n = v
	}
	vm := m.Versions[n]
	if vm == nil {
		return nil, core.ErrNotFound
	}
	body := map[string]any{"data": nil, "metadata": m.versionFields(n, vm)}
	if !vm.live(st.nowUTC()) {
		return &core.Response{Data: body, StatusCode: 404}, nil
	}
	data, err := loadVersion(ctx, st.storage, path, n)
	if err != nil {
		return nil, err
	}
	body["data"] = data
	return &core.Response{Data: body}, nil
}

// dataWrite stores data as a new version and returns its metadata.
func (b *Backend) dataWrite(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if !d.Has("data") {
		return nil, core.Invalid("no data provided")
	}
	cfg, err := loadConfig(ctx, st.storage)
	if err != nil {
		return nil, err
	}
	l := b.lock(path)
	l.Lock()
	defer l.Unlock()
	m, err := loadMeta(ctx, st.storage, path)
	if err != nil {
		return nil, err
	}
	if m == nil {
		// Created and updated times are set by the first version.
		m = &keyMetadata{Path: path, Versions: map[int]*versionMetadata{}}
	}
	if err := checkCAS(d, cfg, m); err != nil {
		return nil, err
	}
	return b.addVersion(ctx, st, cfg, m, d.Map("data"))
}

// dataPatch applies d's data as a JSON merge patch (RFC 7396) to the current
// version and stores the result as a new version. The key must exist and its
// current version must be neither deleted nor destroyed (else 404).
func (b *Backend) dataPatch(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if !d.Has("data") {
		return nil, core.Invalid("no data provided")
	}
	l := b.lock(path)
	l.Lock()
	defer l.Unlock()
	m, err := loadMeta(ctx, st.storage, path)
	if err != nil || m == nil {
		return nil, notFoundOr(err)
	}
	cfg, err := loadConfig(ctx, st.storage)
	if err != nil {
		return nil, err
	}
	if err := checkCAS(d, cfg, m); err != nil {
		return nil, err
	}
	vm := m.Versions[m.CurrentVersion]
	if vm == nil {
		return nil, core.ErrNotFound
	}
	if !vm.live(st.nowUTC()) {
		return &core.Response{Data: m.versionFields(m.CurrentVersion, vm), StatusCode: 404}, nil
	}
	current, err := loadVersion(ctx, st.storage, path, m.CurrentVersion)
	if err != nil {
		return nil, err
	}
	return b.addVersion(ctx, st, cfg, m, mergePatch(current, d.Map("data")))
}

// addVersion stores data as the next version of m's key, prunes versions
// beyond max_versions, and returns the new version's metadata, all in one
// storage transaction. The caller holds the key's lock.
func (b *Backend) addVersion(ctx context.Context, st *state, cfg *config, m *keyMetadata, data map[string]any) (*core.Response, error) {
	rec, err := encodeVersion(data)
	if err != nil {
		return nil, err
	}
	vm, pruned := m.addVersion(st.nowUTC(), cfg)
	ops := []storage.TxnOp{{Kind: storage.OpPut, Key: versionKey(m.Path, m.CurrentVersion), Value: rec}}
	for _, n := range pruned {
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: versionKey(m.Path, n)})
	}
	if err := saveMeta(ctx, st.storage, m, ops...); err != nil {
		return nil, err
	}
	return &core.Response{Data: m.versionFields(m.CurrentVersion, vm)}, nil
}

// dataDelete soft-deletes the current version. Deleting a missing key, or a
// current version already deleted or destroyed, is not an error.
func (b *Backend) dataDelete(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
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
	now := st.nowUTC()
	vm := m.Versions[m.CurrentVersion]
	if vm == nil || !vm.live(now) {
		return nil, nil
	}
	vm.DeletionTime = now
	return nil, saveMeta(ctx, st.storage, m)
}

// checkCAS enforces the "cas" write option: when given it must equal the
// key's current version; it is mandatory when the mount or the key sets
// cas_required. Errors are CodeInvalid with Vault's messages.
func checkCAS(d *framework.FieldData, cfg *config, m *keyMetadata) error {
	raw, ok := d.Map("options")["cas"]
	if ok && raw != nil {
		cas, err := parseCAS(raw)
		if err != nil {
			return core.Invalid("error parsing check-and-set parameter")
		}
		if cas != int64(m.CurrentVersion) {
			return core.Invalid("check-and-set parameter did not match the current version")
		}
		return nil
	}
	if cfg.CASRequired || m.CASRequired {
		return core.Invalid("check-and-set parameter required for this call")
	}
	return nil
}

// parseCAS accepts an integer given as a JSON number or a numeric string.
func parseCAS(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		return strconv.ParseInt(x.String(), 10, 64)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, strconv.ErrSyntax
		}
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case string:
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	}
	return 0, strconv.ErrSyntax
}

// notFoundOr returns err, or core.ErrNotFound when err is nil.
func notFoundOr(err error) error {
	if err != nil {
		return err
	}
	return core.ErrNotFound
}
