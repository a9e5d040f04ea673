// Package kv is Vault's KV secrets engine, versions 1 and 2, speaking Vault's
// HTTP API shapes so that the vault/api client and the Vault CLI work
// unchanged.
//
// The mount option "version" selects the flavour: "" and "1" serve KV v1 (one
// unversioned JSON object per path), "2" serves KV v2 (versioned secrets with
// metadata, check-and-set, soft delete, undelete and destroy). UpgradeToV2
// migrates a v1 mount's data to the v2 layout; the router calls it when a
// mount is tuned from version 1 to 2 and then calls Setup again.
//
// # Storage layout
//
// Everything lives in the mount's barrier view (env.Storage); the engine keeps
// no data in memory, so any number of engine instances over the same storage
// agree. Keys, relative to the view:
//
//	config                   v2 mount configuration (JSON)
//	meta/<path>              v2 key metadata: versions, settings (JSON)
//	versions/<sha256>/<n>    v2 version n of a key: {"data": {...}} (JSON);
//	                         <sha256> is the hex SHA-256 of the key's path
//	v1/<path>                v1 secret: the JSON object written
//
// A v2 write puts the new version, the updated metadata and the deletion of
// pruned versions in one storage transaction; other versions are untouched.
// Paths are stored as given (as Vault's v1 does); only version records are
// filed under a hash, so that deleting one key's versions can never touch
// another key's.
//
// # KV v1 and leases
//
// A v1 secret holding a "ttl" (or "lease") member is read with a
// non-renewable core.Secret of that TTL and no lease ID: Vault reports it as
// lease_duration, a refresh hint. Nothing is revoked at expiry, so the
// server's lease registration must skip such secrets, as Vault does for kv.
//
// # Concurrency
//
// A Backend is safe for concurrent use. Writes to one v2 key are serialised
// by a striped lock; the storage transaction makes each change atomic.
package kv

import (
	"context"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Storage key prefixes within the mount's view.
const (
	configKey      = "config"
	metaPrefix     = "meta/"
	versionsPrefix = "versions/"
	v1Prefix       = "v1/"
)

const lockCount = 256

// Backend is the KV engine. Construct it with New.
type Backend struct {
	st atomic.Pointer[state]

	// locks serialise changes to one v2 key (striped by path hash).
	locks [lockCount]sync.RWMutex
	// configMu serialises read-modify-write of the v2 mount configuration.
	configMu sync.Mutex
	// gate is held shared by v1 handlers and exclusively by UpgradeToV2, so
	// no v1 write can slip in while the data is being copied.
	gate sync.RWMutex
	// upgraded is set once UpgradeToV2 has copied the v1 data: v1 handlers
	// then refuse service until Setup switches the engine to version 2.
	upgraded atomic.Bool
}

// state is what Setup received.
type state struct {
	storage storage.Storage
	now     func() time.Time
	logger  *slog.Logger
	system  framework.SystemView
	version int
}

// New returns an unconfigured KV engine; register it as type "kv".
func New() framework.Engine { return &Backend{} }

var (
	_ framework.Engine                                = (*Backend)(nil)
	_ interface{ UpgradeToV2(context.Context) error } = (*Backend)(nil)
)

// Setup prepares the engine for a mount. It may be called again (the router
// does so after the mount's version is tuned); the last call wins. For a
// version 2 mount it first finishes any interrupted v1→v2 upgrade. It returns
// a CodeInvalid error for a version option other than "", "1" or "2".
func (b *Backend) Setup(ctx context.Context, env framework.Env) error {
	version, err := parseVersion(env.Mount.Options["version"])
	if err != nil {
		return err
	}
	if env.Storage == nil {
		return core.Errorf(core.CodeInternal, "kv: setup without storage")
	}
	st := &state{storage: env.Storage, now: env.Now, logger: env.Logger, system: env.System, version: version}
	if st.now == nil {
		st.now = time.Now
	}
	if st.logger == nil {
		st.logger = slog.New(slog.DiscardHandler)
	}
	if version == 2 {
		if err := finishUpgrade(ctx, st); err != nil {
			return err
		}
	}
	b.st.Store(st)
	b.upgraded.Store(false)
	return nil
}

// Close releases nothing (the engine holds no resources) and may be called
// any number of times.
func (b *Backend) Close(context.Context) error { return nil }

// Routes returns the routes of the version chosen at Setup.
func (b *Backend) Routes() []framework.Route {
	if st := b.st.Load(); st != nil && st.version == 2 {
		return b.v2Routes()
	}
	return b.v1Routes()
}

func (b *Backend) v2Routes() []framework.Route {
	return []framework.Route{
		b.taggedKeysRoute(),
		b.configRoute(),
		b.dataRoute(),
		b.deleteRoute(),
		b.undeleteRoute(),
		b.destroyRoute(),
		b.metadataRoute(),
		b.subkeysRoute(),
	}
}

func parseVersion(v string) (int, error) {
	switch v {
	case "", "1":
		return 1, nil
	case "2":
		return 2, nil
	}
	return 0, core.Invalid("invalid KV version %q: must be 1 or 2", v)
}

// state returns the Setup state, or an unavailable error before Setup.
func (b *Backend) state() (*state, error) {
	st := b.st.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "kv: engine is not set up")
	}
	return st, nil
}

// nowUTC returns the engine clock's time in UTC.
func (st *state) nowUTC() time.Time { return st.now().UTC() }

// lock returns the lock guarding changes to the v2 key path.
func (b *Backend) lock(path string) *sync.RWMutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(path))
	return &b.locks[h.Sum32()%lockCount]
}

// checkPath validates a secret's path: not empty, no empty, "." or ".."
// segments (so no leading, trailing or doubled slash). Errors are CodeInvalid.
func checkPath(p string) error {
	if p == "" {
		return core.Invalid("missing path")
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return core.Invalid("invalid path %q: empty path segment", p)
		case ".", "..":
			return core.Invalid("invalid path %q: %q path segments are not allowed", p, seg)
		}
	}
	return nil
}

// listPrefix turns a list path ("", "a", "a/", "a/b/") into the storage
// prefix to list under ("" or "a/"), validating it like checkPath.
func listPrefix(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", nil
	}
	if err := checkPath(p); err != nil {
		return "", err
	}
	return p + "/", nil
}

// listResponse is Vault's list shape; no keys is a 404, as Vault answers.
func listResponse(keys []string) (*core.Response, error) {
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

// pathField is the schema of the "path" capture shared by every route.
func pathField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Description: "Location of the secret."}
}
