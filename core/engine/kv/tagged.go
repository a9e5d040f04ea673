package kv

import (
	"context"
	"fmt"
	"sort"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// TaggedKeys returns the keys of a version 2 mount whose custom_metadata
// sets one of tags to a true value ("true", "1" or "yes", any case), in
// order, at most limit of them (truncated is then true). A version 1 mount
// has no custom metadata and returns none. Reports use it to scope to
// secrets tagged phi=true or regulated=true.
func (b *Backend) TaggedKeys(ctx context.Context, tags []string, limit int) (keys []string, truncated bool, err error) {
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
