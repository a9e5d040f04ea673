package kv

import (
	"context"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// subkeysRoute serves "subkeys/:path": the structure of a version's data
// with every leaf value replaced by null.
func (b *Backend) subkeysRoute() framework.Route {
	return framework.Route{
		Pattern: "subkeys/" + framework.MatchAllRegex("path"),
		Fields: map[string]*framework.FieldSchema{
			"path":    pathField(),
			"version": {Type: framework.TypeInt, Description: "The version to read (default: the current one)."},
			"depth": {Type: framework.TypeInt, Description: "The deepest nesting level to return; keys at that level " +
				"are null even when they hold objects. 0 means no limit."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.subkeysRead},
		Help:       "Reads the structure of a secret with its values removed.",
	}
}

// subkeysRead answers like a data read, with "subkeys" instead of "data":
// a bare 404 for a missing key or version, a 404 with metadata for a deleted
// or destroyed version.
func (b *Backend) subkeysRead(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	depth := d.Int("depth")
	if depth < 0 {
		return nil, core.Invalid("depth must not be negative")
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
	body := map[string]any{"subkeys": nil, "metadata": m.versionFields(n, vm)}
	if !vm.live(st.nowUTC()) {
		return &core.Response{Data: body, StatusCode: 404}, nil
	}
	data, err := loadVersion(ctx, st.storage, path, n)
	if err != nil {
		return nil, err
	}
	body["subkeys"] = subkeys(data, depth, 1)
	return &core.Response{Data: body}, nil
}

// subkeys returns data's structure at nesting level level: non-empty objects
// are walked while level < depth (or always when depth is 0); every other
// value, and every key at the depth limit, becomes nil.
func subkeys(data map[string]any, depth, level int) map[string]any {
	out := make(map[string]any, len(data))
	for k, v := range data {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 && (depth == 0 || level < depth) {
			out[k] = subkeys(sub, depth, level+1)
			continue
		}
		out[k] = nil
	}
	return out
}
