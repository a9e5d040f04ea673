package database

import (
	"context"
	"database/sql"
	"strings"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) rotateRootRoute() framework.Route {
	return framework.Route{
		Pattern: "rotate-root/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the database connection whose root credentials to rotate."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.rotateRoot},
		Help:       "Rotates the root password of a database connection; afterwards only Vigil knows it.",
	}
}

// rotateRoot generates a new password for the configured root user, changes
// it on the server (root_rotation_statements, or the plugin's default ALTER)
// and stores it. The new password is written to storage as pending before
// the server is told, so an interruption never loses it (see
// getPool/settlePending). On failure the old password stays in force.
func (b *Backend) rotateRoot(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	lock := b.configLock(name)
	lock.Lock()
	defer lock.Unlock()

	c, err := mustConfig(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Username == "":
		return nil, core.Invalid("unable to rotate root credentials: no username in configuration")
	case c.Password == "":
		return nil, core.Invalid("unable to rotate root credentials: no password in configuration")
	case !strings.Contains(c.ConnectionURL, "{{password}}"):
		return nil, core.Invalid("unable to rotate root credentials: connection_url must contain {{password}}, or the new password could not be used")
	}
	// A pool on the current password (settles an earlier interrupted
	// rotation first, so c is re-read below).
	p, err := b.getPool(ctx, st, name)
	if err != nil {
		return nil, err
	}
	if c, err = mustConfig(ctx, st.storage, name); err != nil {
		return nil, err
	}
	newPW, err := newPassword(ctx, st.system, c.PasswordPolicy)
	if err != nil {
		return nil, err
	}
	c.PendingPassword = newPW
	if err := saveConfig(ctx, st.storage, name, c); err != nil {
		return nil, err
	}
	if err := rotateUserPassword(ctx, p, c.Username, newPW, c.RootRotationStatements); err != nil {
		secrets := append(c.secrets(), newPW)
		c.PendingPassword = ""
		if serr := saveConfig(ctx, st.storage, name, c); serr != nil {
			st.logger.Error("could not clear a failed root rotation; it will be settled on next connect", "config", name, "error", serr)
		}
		return nil, execError("unable to rotate root credentials", err, secrets...)
	}
	c.Password, c.PendingPassword = newPW, ""
	if err := saveConfig(ctx, st.storage, name, c); err != nil {
		// The server has the new password and storage holds it as pending:
		// the next connection attempt promotes it.
		b.closePool(name)
		return nil, err
	}
	b.closePool(name)
	st.logger.Info("rotated root credentials", "config", name)
	return nil, nil
}

// rotateUserPassword sets user's password to pw with stmts ({{name}},
// {{username}}, {{password}} substituted) in one transaction, or with the
// plugin's default when stmts is empty. Root and static rotation share it.
func rotateUserPassword(ctx context.Context, p *pool, user, pw string, stmts []string) error {
	release, err := p.serialize(ctx)
	if err != nil {
		return err
	}
	defer release()
	if !hasStatements(stmts) {
		return p.plugin.setPassword(ctx, p.db, user, pw)
	}
	return inTx(ctx, p.db, func(tx *sql.Tx) error {
		return runStatements(ctx, tx, stmts, userVars(user, pw, ""))
	})
}
