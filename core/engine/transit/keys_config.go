package transit

import (
	"context"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) keyConfigRoute() framework.Route {
	return framework.Route{
		Pattern: "keys/" + framework.GenericNameRegex("name") + "/config",
		Fields: map[string]*framework.FieldSchema{
			"name":                   nameField(),
			"min_decryption_version": {Type: framework.TypeInt, Description: "Oldest version that may decrypt, verify or be exported."},
			"min_encryption_version": {Type: framework.TypeInt, Description: "Oldest version that may encrypt, sign or HMAC (0 = latest only by default)."},
			"deletion_allowed":       {Type: framework.TypeBool, Description: "Allow the key to be deleted."},
			"exportable":             {Type: framework.TypeBool, Description: "Allow export; once set it cannot be unset."},
			"allow_plaintext_backup": {Type: framework.TypeBool, Description: "Allow plaintext backup; once set it cannot be unset."},
			"auto_rotate_period":     {Type: framework.TypeDurationSecond, Description: "Rotate automatically after this long (0 disables; at least 1h)."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.configKey},
		Help:       "Configure a named key.",
	}
}

func (b *Backend) keyRotateRoute() framework.Route {
	return framework.Route{
		Pattern:    "keys/" + framework.GenericNameRegex("name") + "/rotate",
		Fields:     map[string]*framework.FieldSchema{"name": nameField()},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.rotateKey},
		Help:       "Add a new latest version to a named key.",
	}
}

func (b *Backend) keyTrimRoute() framework.Route {
	return framework.Route{
		Pattern: "keys/" + framework.GenericNameRegex("name") + "/trim",
		Fields: map[string]*framework.FieldSchema{
			"name":                  nameField(),
			"min_available_version": {Type: framework.TypeInt, Description: "Delete every version older than this one for good."},
		},
		Operations: map[core.Operation]framework.HandlerFunc{core.OpUpdate: b.trimKey},
		Help:       "Permanently delete old versions of a named key.",
	}
}

// modify runs f on a private copy of the named key under its lock and
// stores the result when f reports a change. It answers the key in Vault's
// shape, with f's warning if any. A missing key is a CodeInvalid error
// with missing as its text.
func (b *Backend) modify(ctx context.Context, name, missing string, f func(p *policy, now time.Time) (changed bool, warning string, err error)) (*core.Response, error) {
	st, err := b.state()
	if err != nil {
		return nil, err
	}
	mu := b.lock(name)
	mu.Lock()
	defer mu.Unlock()
	p, err := b.loadFresh(ctx, st, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, core.Invalid("%s", missing)
	}
	changed, warning, err := f(p, st.now())
	if err != nil {
		return nil, err
	}
	if changed {
		if err := b.store(ctx, st, p); err != nil {
			return nil, err
		}
	}
	data, err := p.format(nil)
	if err != nil {
		return nil, err
	}
	resp := &core.Response{Data: data}
	if warning != "" {
		resp.AddWarning(warning)
	}
	return resp, nil
}

// configKey applies keys/:name/config with Vault's rules: versions between
// 1 and latest, min_encryption_version (when set) not below
// min_decryption_version, exportable and allow_plaintext_backup one-way.
func (b *Backend) configKey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	name := d.String("name")
	return b.modify(ctx, name, "no existing key named "+name+" could be found", func(p *policy, _ time.Time) (bool, string, error) {
		changed, warning := false, ""
		if d.Has("min_decryption_version") {
			v := d.Int("min_decryption_version")
			switch {
			case v < 0:
				return false, "", core.Invalid("min decryption version cannot be negative")
			case v == 0:
				v, warning = 1, "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"
			case v > p.LatestVersion:
				return false, "", core.Invalid("cannot set min decryption version of %d, latest key version is %d", v, p.LatestVersion)
			}
			changed = changed || v != p.MinDecryptionVersion
			p.MinDecryptionVersion = v
		}
		if d.Has("min_encryption_version") {
			v := d.Int("min_encryption_version")
			switch {
			case v < 0:
				return false, "", core.Invalid("min encryption version cannot be negative")
			case v > p.LatestVersion:
				return false, "", core.Invalid("cannot set min encryption version of %d, latest key version is %d", v, p.LatestVersion)
			}
			changed = changed || v != p.MinEncryptionVersion
			p.MinEncryptionVersion = v
		}
		if p.MinEncryptionVersion > 0 && p.MinEncryptionVersion < p.MinDecryptionVersion {
			return false, "", core.Invalid("cannot set min encryption/decryption values; min encryption version of %d must be greater than or equal to min decryption version of %d",
				p.MinEncryptionVersion, p.MinDecryptionVersion)
		}
		if p.MinAvailableVersion > p.MinDecryptionVersion {
			return false, "", core.Invalid("min decryption version should not be less than min available version %d", p.MinAvailableVersion)
		}
		if d.Has("deletion_allowed") && d.Bool("deletion_allowed") != p.DeletionAllowed {
			p.DeletionAllowed, changed = d.Bool("deletion_allowed"), true
		}
		if d.Bool("exportable") && !p.Exportable {
			p.Exportable, changed = true, true
		}
		if d.Bool("allow_plaintext_backup") && !p.AllowPlaintextBackup {
			p.AllowPlaintextBackup, changed = true, true
		}
		if d.Has("auto_rotate_period") {
			period := d.Duration("auto_rotate_period")
			if err := checkRotatePeriod(period); err != nil {
				return false, "", err
			}
			if secs := int64(period / time.Second); secs != p.AutoRotatePeriod {
				p.AutoRotatePeriod, changed = secs, true
			}
		}
		return changed, warning, nil
	})
}

// rotateKey adds a new latest version.
func (b *Backend) rotateKey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return b.modify(ctx, d.String("name"), "key not found", func(p *policy, now time.Time) (bool, string, error) {
		return true, "", p.rotate(now, b.randReader())
	})
}

// trimKey deletes, for good, every version below min_available_version,
// which may not exceed min_encryption_version nor min_decryption_version.
func (b *Backend) trimKey(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	return b.modify(ctx, d.String("name"), "invalid key name", func(p *policy, _ time.Time) (bool, string, error) {
		if !d.Has("min_available_version") {
			return false, "", core.Invalid("missing min_available_version")
		}
		v := d.Int("min_available_version")
		switch {
		case v <= 0:
			return false, "", core.Invalid("minimum available version should be positive")
		case v < p.MinAvailableVersion:
			return false, "", core.Invalid("minimum available version cannot be decremented")
		case p.MinEncryptionVersion == 0:
			return false, "", core.Invalid("minimum available version cannot be set when minimum encryption version is not set")
		case v > p.MinEncryptionVersion:
			return false, "", core.Invalid("minimum available version cannot be greater than minimum encryption version")
		case v > p.MinDecryptionVersion:
			return false, "", core.Invalid("minimum available version cannot be greater than minimum decryption version")
		}
		p.MinAvailableVersion = v
		for ver := range p.Keys {
			if ver < v {
				delete(p.Keys, ver)
			}
		}
		return true, "", nil
	})
}
