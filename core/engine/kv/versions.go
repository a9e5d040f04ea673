package kv

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// versionsFields is the schema of delete/, undelete/ and destroy/.
func versionsFields(what string) map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"path":     pathField(),
		"versions": {Type: framework.TypeCommaIntSlice, Description: "The versions to " + what + "."},
	}
}

// deleteRoute serves "delete/:path": soft-delete the given versions.
func (b *Backend) deleteRoute() framework.Route {
	return framework.Route{
		Pattern:    "delete/" + framework.MatchAllRegex("path"),
		Fields:     versionsFields("soft-delete; their data is kept and can be undeleted"),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.versionsHandler(deleteVersions)},
		Help:       "Marks one or more versions as deleted.",
	}
}

// undeleteRoute serves "undelete/:path": restore soft-deleted versions.
func (b *Backend) undeleteRoute() framework.Route {
	return framework.Route{
		Pattern:    "undelete/" + framework.MatchAllRegex("path"),
		Fields:     versionsFields("restore"),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.versionsHandler(undeleteVersions)},
		Help:       "Undeletes one or more versions.",
	}
}

// destroyRoute serves "destroy/:path": permanently remove versions' data.
func (b *Backend) destroyRoute() framework.Route {
	return framework.Route{
		Pattern:    "destroy/" + framework.MatchAllRegex("path"),
		Fields:     versionsFields("destroy permanently"),
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.versionsHandler(destroyVersions)},
		Help:       "Permanently removes one or more versions' data.",
	}
}

// versionsChange changes the listed versions of m in place and returns the
// storage ops to apply with the metadata.
type versionsChange func(m *keyMetadata, versions []int, cfg *config, now time.Time) []storage.TxnOp

// versionsHandler wraps a versionsChange into a handler: it validates the
// path and the versions list ("No version number provided" when empty),
// locks the key, and saves the metadata with the change's ops atomically. A
// missing key, or versions that do not exist, are not errors.
func (b *Backend) versionsHandler(change versionsChange) framework.HandlerFunc {
	return func(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
		st, err := b.state()
		if err != nil {
			return nil, err
		}
		path := d.String("path")
		if err := checkPath(path); err != nil {
			return nil, err
		}
		versions := d.Ints("versions")
		if len(versions) == 0 {
			return nil, core.Invalid("No version number provided")
		}
		cfg, err := loadConfig(ctx, st.storage)
		if err != nil {
			return nil, err
		}
		l := b.lock(path)
		l.Lock()
		defer l.Unlock()
		m, err := loadMeta(ctx, st.storage, path)
		if err != nil || m == nil {
			return nil, err
		}
		ops := change(m, versions, cfg, st.nowUTC())
		return nil, saveMeta(ctx, st.storage, m, ops...)
	}
}

// deleteVersions sets the deletion time of live versions to now.
func deleteVersions(m *keyMetadata, versions []int, _ *config, now time.Time) []storage.TxnOp {
	for _, n := range versions {
		if vm := m.Versions[n]; vm != nil && vm.live(now) {
			vm.DeletionTime = now
		}
	}
	return nil
}

// undeleteVersions clears the deletion time of versions that are not
// destroyed; with delete_version_after in force, the version gets a new
// deletion time counted from now, as Vault does.
func undeleteVersions(m *keyMetadata, versions []int, cfg *config, now time.Time) []storage.TxnOp {
	for _, n := range versions {
		vm := m.Versions[n]
		if vm == nil || vm.Destroyed {
			continue
		}
		vm.DeletionTime = time.Time{}
		if dt, ok := deletionTime(now, cfg, m); ok {
			vm.DeletionTime = dt
		}
	}
	return nil
}

// destroyVersions marks versions destroyed and deletes their data.
func destroyVersions(m *keyMetadata, versions []int, _ *config, _ time.Time) []storage.TxnOp {
	var ops []storage.TxnOp
	for _, n := range versions {
		vm := m.Versions[n]
		if vm == nil || vm.Destroyed {
			continue
		}
		vm.Destroyed = true
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: versionKey(m.Path, n)})
	}
	return ops
}
