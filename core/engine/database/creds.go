package database

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

// cleanupTimeout bounds rollback after a failed creation; it runs even when
// the request's context has been cancelled.
const cleanupTimeout = 30 * time.Second

// Keys of a lease's InternalData.
const (
	internalUsername    = "username"
	internalRole        = "role"
	internalDBName      = "db_name"
	internalRevocations = "revocation_statements"
)

func (b *Backend) credsRoute() framework.Route {
	return framework.Route{
		Pattern: "creds/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the role to create credentials for."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.credsCreate},
		Help:       "Creates a database user for a role and returns its credentials under a lease.",
	}
}

// credsCreate creates a database user for the role and returns username and
// password with a renewable lease. If a creation statement fails, what was
// created is rolled back (rollback_statements, then the plugin's default
// removal of any user left under the generated name), the error is returned
// and no lease is created.
func (b *Backend) credsCreate(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	r, err := loadRole(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("unknown role: %s", name)
	}
	c, err := mustConfig(ctx, st.storage, r.DBName)
	if err != nil {
		return nil, err
	}
	if !c.roleAllowed(name) {
		return nil, core.Invalid("%q is not an allowed role for database connection %q", name, r.DBName)
	}
	p, err := b.getPool(ctx, st, r.DBName)
	if err != nil {
		return nil, err
	}

	ttl, warning := framework.TTLs(0, r.DefaultTTL, r.MaxTTL, st.system)
	if ttl <= 0 {
		return nil, core.Errorf(core.CodeInternal, "no TTL for role %q: set default_ttl or the mount's default lease TTL", name)
	}
	now := st.now()
	tpl := c.UsernameTemplate
	if tpl == "" {
		tpl = p.plugin.defaultUsernameTemplate()
	}
	display := "token"
	if req.Principal != nil && req.Principal.DisplayName != "" {
		display = req.Principal.DisplayName
	}
	username, err := renderUsername(tpl, p.plugin, display, name, now, randomString)
	if err != nil {
		return nil, err
	}
	password, err := newPassword(ctx, st.system, c.PasswordPolicy)
	if err != nil {
		return nil, err
	}
	if err := createUser(ctx, p, r, username, password, p.plugin.expiration(now.Add(ttl))); err != nil {
		st.logger.Warn("creating a database user failed", "role", name, "config", r.DBName, "username", username)
		return nil, execError("error creating database user", err, append(c.secrets(), password)...)
	}

	resp := &core.Response{
		Data: map[string]any{"username": username, "password": password},
		Secret: &core.Secret{
			TTL:       ttl,
			MaxTTL:    r.MaxTTL,
			Renewable: true,
			InternalData: map[string]any{
				internalUsername:    username,
				internalRole:        name,
				internalDBName:      r.DBName,
				internalRevocations: emptyIfNil(r.RevocationStatements),
			},
		},
	}
	if warning != "" {
		resp.AddWarning(warning)
	}
	return resp, nil
}

// createUser runs the role's creation statements in one transaction. On
// failure it rolls back: the transaction (which undoes everything on
// PostgreSQL), then the role's rollback statements, then the plugin's
// removal of any user still existing under name (MySQL DDL commits
// implicitly). The returned error carries the creation failure and any
// cleanup failure.
func createUser(ctx context.Context, p *pool, r *role, name, password, expiration string) error {
	release, err := p.serialize(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err // nothing ran: no connection
	}
	err = runStatements(ctx, tx, r.CreationStatements, userVars(name, password, expiration))
	if err == nil {
		err = tx.Commit()
	} else {
		_ = tx.Rollback()
	}
	if err == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if rerr := removePartialUser(cctx, p, r, name); rerr != nil {
		return fmt.Errorf("%w; cleanup after the failure also failed, user %q may remain: %w", err, name, rerr)
	}
	return err
}

// removePartialUser undoes a failed creation. Rollback statement failures
// are tolerated (the user may never have been created); the default
// removal that follows must succeed.
func removePartialUser(ctx context.Context, p *pool, r *role, name string) error {
	if hasStatements(r.RollbackStatements) {
		for _, q := range splitStatements(r.RollbackStatements) {
			_, _ = p.db.ExecContext(ctx, substitute(q, userVars(name, "", "")))
		}
	}
	return p.plugin.revokeUser(ctx, p.db, name)
}

// RevokeSecret drops the user a creds lease created. It uses the role's
// current revocation statements when the role still exists, else those kept
// in the lease, else the plugin's default; the database is the one the
// lease was issued against. A user that no longer exists counts as revoked,
// so revoking twice succeeds.
func (b *Backend) RevokeSecret(ctx context.Context, _ *core.Request, s *core.Secret) error {
	st, err := b.state()
	if err != nil {
		return err
	}
	username, _ := s.InternalData[internalUsername].(string)
	dbName, _ := s.InternalData[internalDBName].(string)
	roleName, _ := s.InternalData[internalRole].(string)
	if username == "" || dbName == "" {
		return core.Invalid("lease has no database user to revoke")
	}
	stmts := anyStrings(s.InternalData[internalRevocations])
	if roleName != "" {
		r, err := loadRole(ctx, st.storage, roleName)
		if err != nil {
			return err
		}
		if r != nil && r.DBName == dbName {
			stmts = r.RevocationStatements
		}
	}
	p, err := b.getPool(ctx, st, dbName)
	if err != nil {
		return err
	}
	release, err := p.serialize(ctx)
	if err != nil {
		return err
	}
	defer release()
	exists, err := p.plugin.userExists(ctx, p.db, username)
	if err != nil {
		return execError("error revoking database user", err, p.cfg.secrets()...)
	}
	if !exists {
		return nil
	}
	if hasStatements(stmts) {
		err = inTx(ctx, p.db, func(tx *sql.Tx) error {
			return runStatements(ctx, tx, stmts, userVars(username, "", ""))
		})
	} else {
		err = p.plugin.revokeUser(ctx, p.db, username)
	}
	if err != nil {
		return execError(fmt.Sprintf("error revoking database user %q", username), err, p.cfg.secrets()...)
	}
	st.logger.Info("revoked database user", "config", dbName, "role", roleName, "username", username)
	return nil
}

// RenewSecret extends a creds lease: the granted TTL is the increment (or
// the role's default TTL, or the mount's), capped so the lease does not
// outlive the role's max_ttl (or the mount's) from its issue time. The
// role's renew statements (or the plugin's default: VALID UNTIL on
// PostgreSQL, nothing on MySQL) run with the new expiration.
func (b *Backend) RenewSecret(ctx context.Context, _ *core.Request, s *core.Secret, increment time.Duration) (time.Duration, error) {
	st, err := b.state()
	if err != nil {
		return 0, err
	}
	username, _ := s.InternalData[internalUsername].(string)
	dbName, _ := s.InternalData[internalDBName].(string)
	roleName, _ := s.InternalData[internalRole].(string)
	if username == "" || dbName == "" {
		return 0, core.Invalid("lease has no database user to renew")
	}
	r, err := loadRole(ctx, st.storage, roleName)
	if err != nil {
		return 0, err
	}
	if r == nil {
		return 0, core.Invalid("error during renew: could not find role with name %q", roleName)
	}
	ttl := increment
	if ttl <= 0 {
		ttl = r.DefaultTTL
	}
	if ttl <= 0 {
		ttl = st.system.DefaultLeaseTTL()
	}
	maxTTL := r.MaxTTL
	if sysMax := st.system.MaxLeaseTTL(); sysMax > 0 && (maxTTL == 0 || sysMax < maxTTL) {
		maxTTL = sysMax
	}
	now := st.now()
	if maxTTL > 0 && !s.IssueTime.IsZero() {
		remaining := s.IssueTime.Add(maxTTL).Sub(now)
		if remaining <= 0 {
			return 0, core.Invalid("lease has reached its maximum TTL and cannot be renewed")
		}
		ttl = min(ttl, remaining)
	}
	p, err := b.getPool(ctx, st, dbName)
	if err != nil {
		return 0, err
	}
	exp := p.plugin.expiration(now.Add(ttl))
	release, err := p.serialize(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	if hasStatements(r.RenewStatements) {
		err = inTx(ctx, p.db, func(tx *sql.Tx) error {
			return runStatements(ctx, tx, r.RenewStatements, userVars(username, "", exp))
		})
	} else {
		err = p.plugin.renewUser(ctx, p.db, username, exp)
	}
	if err != nil {
		return 0, execError(fmt.Sprintf("error renewing database user %q", username), err, p.cfg.secrets()...)
	}
	return ttl, nil
}

// anyStrings converts a JSON-decoded list (a []any after a storage round
// trip, or a []string before) to strings; anything else gives nil.
func anyStrings(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
