package database

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/storage"
)

// minRotationPeriod is Vault's lower bound for rotation_period.
const minRotationPeriod = 5 * time.Second

// staticRole maps an existing database user whose password Vigil rotates,
// stored at static-role/<name>.
type staticRole struct {
	DBName             string        `json:"db_name"`
	Username           string        `json:"username"`
	RotationPeriod     time.Duration `json:"rotation_period"`
	RotationStatements []string      `json:"rotation_statements,omitempty"`
	// Password is the current password; LastVaultRotation when it was set.
	Password          string    `json:"password,omitempty"`
	LastVaultRotation time.Time `json:"last_vault_rotation"`
	// PendingPassword is written before the server is told and cleared
	// after, so an interrupted rotation is noticed and redone.
	PendingPassword string `json:"pending_password,omitempty"`
	// LastError is the last failed rotation attempt (scrubbed), if any.
	LastError string `json:"last_error,omitempty"`
}

// nextRotation is when the password is due to change.
func (r *staticRole) nextRotation() time.Time { return r.LastVaultRotation.Add(r.RotationPeriod) }

func loadStaticRole(ctx context.Context, s storage.Storage, name string) (*staticRole, error) {
	var r staticRole
	ok, err := storage.GetJSON(ctx, s, staticRolePrefix+name, &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func saveStaticRole(ctx context.Context, s storage.Storage, name string, r *staticRole) error {
	return storage.PutJSON(ctx, s, staticRolePrefix+name, r)
}

func (b *Backend) staticRoleListRoute() framework.Route {
	return framework.Route{
		Pattern:    "static-roles/?",
		Operations: map[core.Operation]framework.HandlerFunc{core.OpList: b.staticRoleList},
		Help:       "Lists the static roles.",
	}
}

func (b *Backend) staticRoleRoute() framework.Route {
	return framework.Route{
		Pattern: "static-roles/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":            {Type: framework.TypeString, Description: "Name of the static role."},
			"db_name":         {Type: framework.TypeString, Description: "Name of the database connection to use."},
			"username":        {Type: framework.TypeString, Description: "Existing database user whose password is rotated."},
			"rotation_period": {Type: framework.TypeDurationSecond, Description: "How often the password is rotated (at least 5s)."},
			"rotation_statements": {Type: framework.TypeStringSlice,
				Description: "Statements changing the password; {{name}} and {{password}} are substituted. Defaults to the plugin's."},
			"credential_type": {Type: framework.TypeString, Description: `Must be "password" (the only type supported).`},
		},
		Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead:   b.staticRoleRead,
			core.OpCreate: b.staticRoleWrite,
			core.OpUpdate: b.staticRoleWrite,
			core.OpDelete: b.staticRoleDelete,
		},
		ExistenceCheck: existsByName(b, loadStaticRole),
		Help:           "Manages roles whose existing database user's password Vigil rotates.",
	}
}

func (b *Backend) staticRoleList(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	return listKeys(ctx, st.storage, staticRolePrefix)
}

func (b *Backend) staticRoleRead(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	r, err := loadStaticRole(ctx, st.storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.ErrNotFound
	}
	data := map[string]any{
		"db_name":             r.DBName,
		"username":            r.Username,
		"rotation_period":     int64(r.RotationPeriod / time.Second),
		"rotation_statements": emptyIfNil(r.RotationStatements),
		"credential_type":     "password",
	}
	if !r.LastVaultRotation.IsZero() {
		data["last_vault_rotation"] = r.LastVaultRotation.Format(time.RFC3339Nano)
	}
	return &core.Response{Data: data}, nil
}

// staticRoleWrite creates or updates a static role. Creation checks the
// connection allows the role, then rotates the user's password at once (as
// Vault does); if that fails nothing is stored. db_name and username cannot
// change afterwards.
func (b *Backend) staticRoleWrite(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	if name == "" {
		return nil, core.Invalid("missing role name")
	}
	if ct := d.String("credential_type"); ct != "" && ct != "password" {
		return nil, core.Invalid("credential_type %q is not supported: only \"password\"", ct)
	}
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	if dr, err := loadRole(ctx, st.storage, name); err != nil {
		return nil, err
	} else if dr != nil {
		return nil, core.Invalid("role %q already exists as a dynamic role; role and static role names must be unique", name)
	}
	r, err := loadStaticRole(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	creating := r == nil
	if creating {
		r = &staticRole{}
	}
	if d.Has("db_name") {
		if v := d.String("db_name"); !creating && v != r.DBName {
			return nil, core.Invalid("cannot update static role db_name")
		}
		r.DBName = d.String("db_name")
	}
	if d.Has("username") {
		if v := d.String("username"); !creating && v != r.Username {
			return nil, core.Invalid("cannot update static account username")
		}
		r.Username = d.String("username")
	}
	if d.Has("rotation_period") {
		r.RotationPeriod = d.Duration("rotation_period")
	}
	if d.Has("rotation_statements") {
		r.RotationStatements = d.Strings("rotation_statements")
	}
	switch {
	case r.DBName == "":
		return nil, core.Invalid("empty database name attribute")
	case r.Username == "":
		return nil, core.Invalid("username is a required field to create a static account")
	case r.RotationPeriod < minRotationPeriod:
		return nil, core.Invalid("rotation_period must be %d seconds or more", int(minRotationPeriod/time.Second))
	}
	if err := checkIdentifier("username", r.Username, 0); err != nil {
		return nil, err
	}
	c, err := mustConfig(ctx, st.storage, r.DBName)
	if err != nil {
		return nil, err
	}
	if !c.roleAllowed(name) {
		return nil, core.Invalid("%q is not an allowed role for database connection %q", name, r.DBName)
	}
	if !creating {
		return nil, saveStaticRole(ctx, st.storage, name, r)
	}
	if err := b.checkUsernameFree(ctx, st, name, r); err != nil {
		return nil, err
	}
	if err := b.rotateStatic(ctx, st, name, r); err != nil {
		_ = st.storage.Delete(ctx, staticRolePrefix+name)
		return nil, err
	}
	return nil, nil
}

// checkUsernameFree refuses a second static role for a user another static
// role already rotates on the same connection.
func (b *Backend) checkUsernameFree(ctx context.Context, st *state, name string, r *staticRole) error {
	names, err := storage.ListAll(ctx, st.storage, staticRolePrefix)
	if err != nil {
		return err
	}
	for _, other := range names {
		if other == name {
			continue
		}
		o, err := loadStaticRole(ctx, st.storage, other)
		if err != nil {
			return err
		}
		if o != nil && o.DBName == r.DBName && o.Username == r.Username {
			return core.Invalid("username %q is already managed by static role %q", r.Username, other)
		}
	}
	return nil
}

// rotateStatic gives static role r (locked by the caller) a new password:
// pending in storage first, then on the server, then committed. On failure
// the error is recorded on the role (if it was stored) and returned, and the
// old password stays current.
func (b *Backend) rotateStatic(ctx context.Context, st *state, name string, r *staticRole) error {
	c, err := mustConfig(ctx, st.storage, r.DBName)
	if err != nil {
		return err
	}
	pw, err := newPassword(ctx, st.system, c.PasswordPolicy)
	if err != nil {
		return err
	}
	r.PendingPassword = pw
	if err := saveStaticRole(ctx, st.storage, name, r); err != nil {
		return err
	}
	fail := func(err error) error {
		e := execError(fmt.Sprintf("error rotating the password of static role %q", name), err, append(c.secrets(), pw)...)
		r.PendingPassword, r.LastError = "", core.ClientMessage(e)
		if serr := saveStaticRole(ctx, st.storage, name, r); serr != nil {
			return errors.Join(e, serr)
		}
		return e
	}
	p, err := b.getPool(ctx, st, r.DBName)
	if err != nil {
		return fail(err)
	}
	if err := rotateUserPassword(ctx, p, r.Username, pw, r.RotationStatements); err != nil {
		return fail(err)
	}
	r.Password, r.PendingPassword, r.LastError = pw, "", ""
	r.LastVaultRotation = st.now().UTC()
	if err := saveStaticRole(ctx, st.storage, name, r); err != nil {
		return err
	}
	st.logger.Info("rotated static role password", "role", name, "config", r.DBName, "username", r.Username)
	return nil
}

func (b *Backend) staticRoleDelete(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	return nil, st.storage.Delete(ctx, staticRolePrefix+name)
}

func (b *Backend) staticCredsRoute() framework.Route {
	return framework.Route{
		Pattern: "static-creds/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the static role."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.staticCreds},
		Help:       "Returns a static role's current credentials.",
	}
}

// staticCreds returns the current password, when it was set and how long
// until the next rotation (ttl, never negative).
func (b *Backend) staticCreds(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	r, err := loadStaticRole(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("unknown role: %s", name)
	}
	if r.Password == "" {
		return nil, core.Errorf(core.CodeUnavailable, "static role %q has no password yet", name)
	}
	ttl := max(r.nextRotation().Sub(st.now()), 0)
	return &core.Response{Data: map[string]any{
		"username":            r.Username,
		"password":            r.Password,
		"last_vault_rotation": r.LastVaultRotation.Format(time.RFC3339Nano),
		"rotation_period":     int64(r.RotationPeriod / time.Second),
		"ttl":                 int64(ttl / time.Second),
	}}, nil
}

func (b *Backend) rotateRoleRoute() framework.Route {
	return framework.Route{
		Pattern: "rotate-role/" + framework.GenericNameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "Name of the static role to rotate."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.rotateRole},
		Help:       "Rotates a static role's password now; the next rotation is one rotation_period later.",
	}
}

func (b *Backend) rotateRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	r, err := loadStaticRole(ctx, st.storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, core.Invalid("unknown static role: %s", name)
	}
	return nil, b.rotateStatic(ctx, st, name, r)
}

// JobStaticRotation is the internal principal that rotates static roles
// whose rotation_period has elapsed.
const JobStaticRotation = "database-static-rotation"

// ScheduledJobs implements framework.Scheduler: static-role rotation, done
// through the Internal routes below so each rotation is an audited request
// naming the role.
func (b *Backend) ScheduledJobs() []framework.Job {
	return []framework.Job{{Name: JobStaticRotation, Scan: "scheduled/static-rotation"}}
}

func (b *Backend) staticRotationScanRoute() framework.Route {
	return framework.Route{
		Pattern:    "scheduled/static-rotation",
		Internal:   true,
		Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.staticRotationScan},
		Help:       "Internal: the static roles whose rotation is due.",
	}
}

func (b *Backend) staticRotationRoleRoute() framework.Route {
	return framework.Route{
		Pattern:    "scheduled/static-rotation/" + framework.GenericNameRegex("name"),
		Internal:   true,
		Fields:     map[string]*framework.FieldSchema{"name": {Type: framework.TypeString}},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.staticRotationRole},
		Help:       "Internal: rotate a static role whose rotation is due.",
	}
}

// staticRotationScan answers {"due": ["scheduled/static-rotation/<role>",
// ...]}: roles whose rotation_period has elapsed on the engine's clock, or
// whose last rotation was interrupted.
func (b *Backend) staticRotationScan(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	names, err := storage.ListAll(ctx, st.storage, staticRolePrefix)
	if err != nil {
		return nil, err
	}
	due := []string{}
	for _, name := range names {
		r, err := loadStaticRole(ctx, st.storage, name)
		if err != nil {
			return nil, err
		}
		if r != nil && staticRotationDue(r, st.now()) {
			due = append(due, "scheduled/static-rotation/"+name)
		}
	}
	return &core.Response{Data: map[string]any{"due": due}}, nil
}

// staticRotationRole rotates the named role if its rotation is still due.
// A failure is recorded on the role and retried at the next run.
func (b *Backend) staticRotationRole(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	name := d.String("name")
	rotated, err := b.rotateIfDue(ctx, st, name)
	if err != nil {
		st.logger.Warn("static role rotation failed; will retry", "role", name, "error", core.ClientMessage(err))
		return nil, err
	}
	return &core.Response{Data: map[string]any{"rotated": rotated}}, nil
}

func staticRotationDue(r *staticRole, now time.Time) bool {
	return r.PendingPassword != "" || r.Password == "" || !now.Before(r.nextRotation())
}

func (b *Backend) rotateIfDue(ctx context.Context, st *state, name string) (bool, error) {
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	r, err := loadStaticRole(ctx, st.storage, name)
	if err != nil {
		return false, err
	}
	if r == nil || !staticRotationDue(r, st.now()) { // deleted or rotated since the scan
		return false, nil
	}
	return true, b.rotateStatic(ctx, st, name, r)
}
