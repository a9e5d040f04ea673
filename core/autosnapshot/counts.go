package autosnapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Storage layout read by the counts. These are the owning packages' keys
// (router mount tables, KV layout, authz policies, lease manager, audit
// checkpoints); a test in this package writes through those packages'
// own paths to keep them in step.
const (
	secretTableKey         = "core/mounts"
	authTableKey           = "core/auth"
	policyPrefix           = "sys/policy/"
	leasePrefix            = "sys/expire/id/"
	auditCheckpointsPrefix = "sys/audit/checkpoints/"
	kvMetaPrefix           = "meta/"
	kvV1Prefix             = "v1/"
)

// plaintextPrefixes are the physical keys written outside the barrier: the
// keyring (encrypted with the root key) and the seal's records.
var plaintextPrefixes = []string{"core/keyring", "core/seal/"}

type mountEntry struct {
	Type  string `json:"type"`
	UUID  string `json:"uuid"`
	Class string `json:"class"`
}

// countState counts what a drill compares. v is the physical state and
// dec the same state read through the barrier.
func countState(ctx context.Context, v storage.Frozen, dec storage.Storage) (core.SnapshotCounts, error) {
	c := core.SnapshotCounts{Keys: v.Count(""), Policies: v.Count(policyPrefix), Leases: v.Count(leasePrefix)}
	for _, table := range []string{secretTableKey, authTableKey} {
		var entries []mountEntry
		if _, err := storage.GetJSON(ctx, dec, table, &entries); err != nil {
			return c, fmt.Errorf("read the mount table %s: %w", table, err)
		}
		c.Mounts += len(entries)
		for _, e := range entries {
			if e.Class != "auth" && (e.Type == "kv" || e.Type == "generic") && e.UUID != "" {
				base := "logical/" + e.UUID + "/"
				c.Secrets += v.Count(base+kvMetaPrefix) + v.Count(base+kvV1Prefix)
			}
		}
	}
	return c, nil
}

// auditCheckpoints returns every stored checkpoint (one per node and audit
// device), as stored.
func auditCheckpoints(ctx context.Context, v storage.Frozen, dec storage.Storage) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := v.Walk(auditCheckpointsPrefix, func(key string) error {
		b, err := dec.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read audit checkpoint %s: %w", key, err)
		}
		if len(b) > 0 && json.Valid(b) {
			out = append(out, json.RawMessage(b))
		}
		return nil
	})
	return out, err
}

// decryptAll reads every barrier value of v through dec, proving that each
// decrypts and authenticates with the keys dec was opened with. It returns
// how many values it read, and the first failures.
func decryptAll(ctx context.Context, v storage.Frozen, dec storage.Storage) (int, error) {
	n := 0
	var bad []string
	err := v.Walk("", func(key string) error {
		for _, p := range plaintextPrefixes {
			if strings.HasPrefix(key, p) {
				return nil
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := dec.Get(ctx, key); err != nil {
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s: %v", key, err))
			}
			return nil
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	if len(bad) > 0 {
		return n, fmt.Errorf("values that do not decrypt with the cluster's keys: %s", strings.Join(bad, "; "))
	}
	return n, nil
}

// attachments is what an automated snapshot adds to its meta.json.
type attachments struct {
	Schedule         string              `json:"schedule"`
	Counts           core.SnapshotCounts `json:"counts"`
	AuditCheckpoints []json.RawMessage   `json:"audit_checkpoints"`
}
