package system

import (
	"context"
	"sort"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// versionPrefix holds one record per server version that has run this
// cluster (in the sys/ view).
const versionPrefix = "versions/"

// versionRecord is when a version first unsealed the cluster.
type versionRecord struct {
	Version   string    `json:"version"`
	Installed time.Time `json:"timestamp_installed"`
	BuildDate string    `json:"build_date"`
}

// versionHistoryRoute is LIST sys/version-history: every version that has
// run this cluster, oldest first, with when it was first seen and what ran
// before it, as Vault answers.
func (b *Backend) versionHistoryRoute() framework.Route {
	return framework.Route{Pattern: `version-history/?`, Operations: one(core.OpList, b.versionHistory),
		Help: "Versions that have run this cluster."}
}

// RecordVersion notes that this version unsealed the cluster, the first
// time only. The server calls it after every unseal.
func (b *Backend) RecordVersion(ctx context.Context) error {
	if b.storage == nil || b.d.Version == "" {
		return nil
	}
	key := versionPrefix + b.d.Version
	if v, err := b.storage.Get(ctx, key); err != nil || v != nil {
		return err
	}
	return storage.PutJSON(ctx, b.storage, key, versionRecord{Version: b.d.Version, Installed: b.d.Now().UTC().Truncate(time.Second)})
}

func (b *Backend) versionHistory(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	keys, err := b.storage.List(ctx, versionPrefix)
	if err != nil {
		return nil, err
	}
	var recs []versionRecord
	for _, k := range keys {
		var r versionRecord
		if ok, err := storage.GetJSON(ctx, b.storage, versionPrefix+k, &r); err != nil {
			return nil, err
		} else if ok {
			recs = append(recs, r)
		}
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Installed.Before(recs[j].Installed) })
	out := make([]string, 0, len(recs))
	info := map[string]any{}
	var prev any
	for _, r := range recs {
		out = append(out, r.Version)
		info[r.Version] = map[string]any{"build_date": r.BuildDate, "previous_version": prev,
			"timestamp_installed": r.Installed.Format(time.RFC3339)}
		prev = r.Version
	}
	return &core.Response{Data: map[string]any{"keys": out, "key_info": info}}, nil
}
