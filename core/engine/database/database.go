// Package database is Vault's database secrets engine (mount type
// "database") for PostgreSQL (postgresql-database-plugin, on pgx) and
// MySQL/MariaDB (mysql-database-plugin, on go-sql-driver/mysql), speaking
// Vault's HTTP API shapes.
//
// Routes, relative to the mount:
//
//	config/:name         connection settings: create/update (verified by a
//	                     ping unless verify_connection=false), read (never
//	                     the password), delete; config/ lists
//	reset/:name          close and reopen a connection pool
//	rotate-root/:name    give the configured admin user a new password
//	roles/:name          dynamic roles; roles/ lists
//	creds/:role          create a database user; leased, renewable
//	static-roles/:name   rotate the password of an existing user on a
//	                     schedule; static-roles/ lists
//	static-creds/:name   the static role's current password
//	rotate-role/:name    rotate a static role's password now
//
// # Leases
//
// creds/:role answers with a core.Secret whose InternalData holds db_name,
// username, role and the role's revocation statements. RevokeSecret drops
// the user (idempotently: a user that no longer exists is revoked);
// RenewSecret runs the role's renew statements with the new expiration,
// capped by the role's max_ttl. A scheduled job rotates static roles whose
// rotation_period has elapsed on the injected clock.
//
// # Storage
//
// Everything lives in the mount's barrier view (keys config/<name>,
// role/<name>, static-role/<name>, JSON). The root password and static
// passwords are stored there and nowhere else; no read returns the root
// password, and no log line carries a password or a connection URL.
//
// # Concurrency
//
// A Backend is safe for concurrent use. Connection pools are opened lazily
// per config and closed on config write, delete, reset, rotate-root and
// Close. Changes to one config or one static role are serialised by
// striped locks, so a rotation cannot interleave with another write.
package database

import (
	"context"
	"database/sql"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// Storage key prefixes within the mount's view.
const (
	configPrefix     = "config/"
	rolePrefix       = "role/"
	staticRolePrefix = "static-role/"
)

// connectTimeout bounds dialing a database server.
const connectTimeout = 10 * time.Second

// verifyTimeout bounds the ping that verifies a new connection.
const verifyTimeout = 15 * time.Second

const lockCount = 64

// Backend is the database engine. Construct it with New.
type Backend struct {
	st atomic.Pointer[state]

	// configLocks serialise writes to one config (write, delete, reset,
	// rotate-root); roleLocks serialise changes to one static role.
	configLocks [lockCount]sync.Mutex
	roleLocks   [lockCount]sync.Mutex

	poolMu sync.Mutex
	pools  map[string]*pool // by config name
}

// state is what Setup received.
type state struct {
	storage storage.Storage
	now     func() time.Time
	logger  *slog.Logger
	system  framework.SystemView
}

// pool is an open connection pool with the config it was opened from.
type pool struct {
	db     *sql.DB
	plugin plugin
	cfg    *connConfig
	// ddl admits one user-management change (create, revoke, renew,
	// rotate) at a time: concurrent GRANTs or REVOKEs on the same object
	// fail on PostgreSQL with "tuple concurrently updated", a known server
	// limitation that Vault users hit under load.
	ddl chan struct{}
}

func newPool(db *sql.DB, p plugin, c *connConfig) *pool {
	return &pool{db: db, plugin: p, cfg: c, ddl: make(chan struct{}, 1)}
}

// serialize waits for the pool's user-management turn, or for ctx to end.
// The caller must call release when done.
func (p *pool) serialize(ctx context.Context) (release func(), err error) {
	select {
	case p.ddl <- struct{}{}:
		return func() { <-p.ddl }, nil
	case <-ctx.Done():
		return nil, core.Errorf(core.CodeUnavailable, "database: gave up waiting for the connection: %w", ctx.Err())
	}
}

// New returns an unconfigured database engine; register it as type
// "database".
func New() framework.Engine { return &Backend{} }

var (
	_ framework.Engine        = (*Backend)(nil)
	_ framework.SecretRevoker = (*Backend)(nil)
	_ framework.SecretRenewer = (*Backend)(nil)
	_ framework.Scheduler     = (*Backend)(nil)
)

// Setup prepares the engine for a mount. It may be called again (after a
// tune); open pools are closed so they are reopened from storage.
func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	if env.Storage == nil {
		return core.Errorf(core.CodeInternal, "database: setup without storage")
	}
	st := &state{storage: env.Storage, now: env.Now, logger: env.Logger, system: env.System}
	if st.now == nil {
		st.now = time.Now
	}
	if st.logger == nil {
		st.logger = slog.New(slog.DiscardHandler)
	}
	if st.system == nil {
		st.system = framework.StaticSystem{}
	}
	b.st.Store(st)
	b.closeAllPools()
	return nil
}

// Close closes every connection pool. It may be called any number of times;
// the engine reopens pools lazily if used again.
func (b *Backend) Close(context.Context) error {
	b.closeAllPools()
	return nil
}

// Routes returns the engine's routes.
func (b *Backend) Routes() []framework.Route {
	return []framework.Route{
		b.configListRoute(),
		b.configRoute(),
		b.resetRoute(),
		b.rotateRootRoute(),
		b.roleListRoute(),
		b.roleRoute(),
		b.credsRoute(),
		b.staticRoleListRoute(),
		b.staticRoleRoute(),
		b.staticCredsRoute(),
		b.rotateRoleRoute(),
		b.staticRotationScanRoute(),
		b.staticRotationRoleRoute(),
	}
}

// state returns the Setup state, or an unavailable error before Setup.
// existsByName is the existence check of a route whose "name" field names
// an object load reads from the mount's storage.
func existsByName[T any](b *Backend, load func(context.Context, storage.Storage, string) (*T, error)) framework.ExistenceFunc {
	return func(ctx context.Context, _ *core.Request, d *framework.FieldData) (bool, error) {
		st, err := b.state()
		if err != nil {
			return false, err
		}
		v, err := load(ctx, st.storage, d.String("name"))
		return v != nil, err
	}
}

func (b *Backend) state() (*state, error) {
	st := b.st.Load()
	if st == nil {
		return nil, core.Errorf(core.CodeUnavailable, "database: engine is not set up")
	}
	return st, nil
}

func stripe(name string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return h.Sum32() % lockCount
}

// configLock returns the lock serialising changes to config name.
func (b *Backend) configLock(name string) *sync.Mutex { return &b.configLocks[stripe(name)] }

// roleLock returns the lock serialising changes to static role name.
func (b *Backend) roleLock(name string) *sync.Mutex { return &b.roleLocks[stripe(name)] }

// listKeys lists the names stored under prefix as a Vault list response,
// or a 404 when there are none (Vault's empty list).
func listKeys(ctx context.Context, s storage.Storage, prefix string) (*core.Response, error) {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, core.ErrNotFound
	}
	return &core.Response{Data: map[string]any{"keys": keys}}, nil
}

// emptyIfNil returns s, or an empty (non-nil) slice, so JSON shows [].
func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
