package kv

import (
	"context"
	"fmt"
	"sort"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// TaggedKeysPath is the Internal route (relative to the mount) that lists
// the secrets tagged as regulated (see core.TaggedKeysPath).
const TaggedKeysPath = core.TaggedKeysPath

// taggedKeysRoute serves TaggedKeysPath. It is listed first, and in both
// versions' routes: being Internal, it never shadows a client's version 1
// secret of the same name.
func (b *Backend) taggedKeysRoute() framework.Route {
	return framework.Route{
		Pattern:  TaggedKeysPath,
		Internal: true,
		Fields: map[string]*framework.FieldSchema{
			"tags":  {Type: framework.TypeCommaStringSlice},
			"limit": {Type: framework.TypeInt},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.taggedKeysHandler},
		Help:       "Internal: the keys whose custom_metadata tags them as regulated.",
	}
}

func (b *Backend) taggedKeysHandler(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	keys, truncated, err := b.taggedKeys(ctx, d.Strings("tags"), d.Int("limit"))
	if err != nil {
		return nil, err
	}
	if keys == nil {
		keys = []string{}
	}
	return &core.Response{Data: map[string]any{"keys": keys, "truncated": truncated}}, nil
}

// taggedKeys returns the keys of a version 2 mount whose custom_metadata
// sets one of tags to a true value ("true", "1" or "yes", any case), in
// order, at most limit of them (truncated is then true). A version 1 mount
// has no custom metadata and returns none. Reports use it to scope to
// secrets tagged phi=true or regulated=true.
func (b *Backend) taggedKeys(ctx context.Context, tags []string, limit int) (keys []string, truncated bool, err error) {
	st, err := b.state()
	if err != nil || st.version != 2 {
		return nil, false, err
	}
	all, err := storage.ListAll(ctx, st.storage, metaPrefix)
	if err != nil {
		return nil, false, fmt.Errorf("kv: list metadata: %w", err)
	}
	sort.Strings(all)
	for _, k := range all {
		m, err := loadMeta(ctx, st.storage, k)
		if err != nil {
			return nil, false, err
		}
		if m == nil || !core.TrueTag(m.CustomMetadata, tags) {
			continue
		}
		if limit > 0 && len(keys) == limit {
			return keys, true, nil
		}
		keys = append(keys, k)
	}
	return keys, false, nil
}
