package system

import (
	"context"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/router"
)

var mountFields = map[string]*framework.FieldSchema{
	"path":                    {Type: framework.TypeString},
	"type":                    {Type: framework.TypeString},
	"description":             {Type: framework.TypeString},
	"config":                  {Type: framework.TypeMap},
	"options":                 {Type: framework.TypeKVPairs},
	"local":                   {Type: framework.TypeBool},
	"seal_wrap":               {Type: framework.TypeBool},
	"external_entropy_access": {Type: framework.TypeBool},
	"plugin_name":             {Type: framework.TypeString},
	"plugin_version":          {Type: framework.TypeString},
}

var tuneFields = map[string]*framework.FieldSchema{
	"path":                         {Type: framework.TypeString},
	"default_lease_ttl":            {Type: framework.TypeString},
	"max_lease_ttl":                {Type: framework.TypeString},
	"description":                  {Type: framework.TypeString},
	"options":                      {Type: framework.TypeKVPairs},
	"listing_visibility":           {Type: framework.TypeString},
	"audit_non_hmac_request_keys":  {Type: framework.TypeCommaStringSlice},
	"audit_non_hmac_response_keys": {Type: framework.TypeCommaStringSlice},
	"passthrough_request_headers":  {Type: framework.TypeCommaStringSlice},
	"token_type":                   {Type: framework.TypeString},
}

func (b *Backend) mountRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `mounts/?`, Operations: one(core.OpRead, b.listMounts("secret"))},
		{Pattern: `mounts/(?P<path>.+?)/tune/?`, Fields: tuneFields, Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.readTune("secret"), core.OpUpdate: b.writeTune("secret")}},
		{Pattern: `mounts/(?P<path>.+?)/?`, Fields: mountFields, Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.readMount("secret"), core.OpUpdate: b.enable("secret"), core.OpDelete: b.disable("secret")}},
		{Pattern: `internal/ui/mounts/?`, Operations: one(core.OpRead, b.uiMounts)},
		{Pattern: `internal/ui/mounts/(?P<path>.+)`, Fields: map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}},
			Operations: one(core.OpRead, b.uiMount)},
	}
}

func (b *Backend) authRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `auth/?`, Operations: one(core.OpRead, b.listMounts("auth"))},
		{Pattern: `auth/(?P<path>.+?)/tune/?`, Fields: tuneFields, Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.readTune("auth"), core.OpUpdate: b.writeTune("auth")}},
		{Pattern: `auth/(?P<path>.+?)/?`, Fields: mountFields, Sudo: true, Operations: map[core.Operation]framework.HandlerFunc{
			core.OpRead: b.readMount("auth"), core.OpUpdate: b.enable("auth"), core.OpDelete: b.disable("auth")}},
	}
}

// MountData renders a mount entry in Vault's sys/mounts shape.
func MountData(e router.MountEntry) map[string]any {
	opts := map[string]any(nil)
	if len(e.Options) > 0 {
		opts = map[string]any{}
		for k, v := range e.Options {
			opts[k] = v
		}
	}
	cfg := map[string]any{
		"default_lease_ttl": secs(e.Config.DefaultLeaseTTL),
		"max_lease_ttl":     secs(e.Config.MaxLeaseTTL),
		"force_no_cache":    false,
	}
	if e.Config.ListingVisibility != "" {
		cfg["listing_visibility"] = e.Config.ListingVisibility
	}
	if len(e.Config.AuditNonHMACRequestKeys) > 0 {
		cfg["audit_non_hmac_request_keys"] = e.Config.AuditNonHMACRequestKeys
	}
	if len(e.Config.AuditNonHMACResponseKeys) > 0 {
		cfg["audit_non_hmac_response_keys"] = e.Config.AuditNonHMACResponseKeys
	}
	typ := e.Type
	return map[string]any{
		"type": typ, "description": e.Description, "accessor": e.Accessor, "uuid": e.UUID,
		"config": cfg, "options": opts, "local": e.Local, "seal_wrap": e.SealWrap,
		"external_entropy_access": false, "plugin_version": "", "running_plugin_version": "",
		"running_sha256": "", "deprecation_status": "supported",
	}
}

func relPath(class, p string) string {
	if class == "auth" {
		return strings.TrimPrefix(p, "auth/")
	}
	return p
}

func (b *Backend) listMounts(class string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
		data := map[string]any{}
		for _, e := range b.d.Router.MountsIn(req.NS(), class) {
			data[relPath(class, e.Path)] = MountData(e)
		}
		return &core.Response{Data: data, Legacy: true}, nil
	}
}

func fullPath(class, p string) (string, error) {
	np, err := router.NormalizePath(p)
	if err != nil {
		return "", err
	}
	if class == "auth" {
		return "auth/" + np, nil
	}
	return np, nil
}

func (b *Backend) readMount(class string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		p, err := fullPath(class, d.String("path"))
		if err != nil {
			return nil, err
		}
		e, ok := b.d.Router.EntryIn(req.NS(), p)
		if !ok {
			return nil, core.Invalid("No %s engine mounted at %s", map[string]string{"secret": "secret", "auth": "auth"}[class], p)
		}
		return &core.Response{Data: MountData(e)}, nil
	}
}

func ttlFromMap(m map[string]any, k string) (time.Duration, error) {
	v, ok := m[k]
	if !ok || v == nil {
		return 0, nil
	}
	d, err := framework.ParseDuration(v)
	if err != nil {
		return 0, core.Invalid("invalid %s: %v", k, err)
	}
	return d, nil
}

func (b *Backend) enable(class string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		typ := d.String("type")
		if typ == "" {
			typ = d.String("plugin_name")
		}
		if typ == "" {
			return nil, core.Invalid("missing type")
		}
		e := &router.MountEntry{Path: d.String("path"), Type: typ, Class: class, Description: d.String("description"),
			Options: d.KV("options"), Local: d.Bool("local"), SealWrap: d.Bool("seal_wrap")}
		if ns := req.NS(); !ns.IsRoot() {
			e.NamespaceID, e.NamespacePath = ns.ID, ns.Path
		}
		if cfg := d.Map("config"); cfg != nil {
			var err error
			if e.Config.DefaultLeaseTTL, err = ttlFromMap(cfg, "default_lease_ttl"); err != nil {
				return nil, err
			}
			if e.Config.MaxLeaseTTL, err = ttlFromMap(cfg, "max_lease_ttl"); err != nil {
				return nil, err
			}
			if lv, ok := cfg["listing_visibility"].(string); ok {
				e.Config.ListingVisibility = lv
			}
			for k, dst := range map[string]*[]string{
				"audit_non_hmac_request_keys": &e.Config.AuditNonHMACRequestKeys, "audit_non_hmac_response_keys": &e.Config.AuditNonHMACResponseKeys,
				"passthrough_request_headers": &e.Config.PassthroughRequestHeaders} {
				if raw, ok := cfg[k]; ok {
					fd := framework.NewFieldData(map[string]any{"v": raw}, map[string]*framework.FieldSchema{"v": {Type: framework.TypeCommaStringSlice}})
					if err := fd.Validate(); err != nil {
						return nil, err
					}
					*dst = fd.Strings("v")
				}
			}
		}
		if err := b.d.Router.Mount(ctx, e); err != nil {
			return nil, err
		}
		return nil, nil
	}
}

func (b *Backend) disable(class string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		p, err := b.nsPath(req, class, d.String("path"))
		if err != nil {
			return nil, err
		}
		return nil, b.d.Router.Unmount(ctx, p, b.d.Core.RevokePrefix)
	}
}

func (b *Backend) readTune(class string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		p, err := fullPath(class, d.String("path"))
		if err != nil {
			return nil, err
		}
		e, ok := b.d.Router.EntryIn(req.NS(), p)
		if !ok {
			return nil, core.Invalid("cannot fetch sysview for path %q", p)
		}
		def, max := b.d.Router.Effective(req.NS().Path + p)
		data := map[string]any{"default_lease_ttl": secs(def), "max_lease_ttl": secs(max), "force_no_cache": false,
			"description": e.Description}
		if len(e.Options) > 0 {
			data["options"] = e.Options
		}
		if e.Config.ListingVisibility != "" {
			data["listing_visibility"] = e.Config.ListingVisibility
		}
		if e.Class == "auth" {
			data["token_type"] = "default-service"
		}
		return &core.Response{Data: data}, nil
	}
}

func (b *Backend) writeTune(class string) framework.HandlerFunc {
	return func(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
		p, err := b.nsPath(req, class, d.String("path"))
		if err != nil {
			return nil, err
		}
		var t router.Tune
		for k, dst := range map[string]**time.Duration{"default_lease_ttl": &t.DefaultLeaseTTL, "max_lease_ttl": &t.MaxLeaseTTL} {
			s := d.String(k)
			if !d.Has(k) || s == "" {
				continue // empty means "leave as is", as in Vault
			}
			var v time.Duration
			if s != "system" {
				v, err = framework.ParseDuration(s)
				if err != nil {
					return nil, core.Invalid("invalid %s: %v", k, err)
				}
			}
			*dst = &v
		}
		if d.Has("description") {
			s := d.String("description")
			t.Description = &s
		}
		if d.Has("options") {
			t.Options = d.KV("options")
		}
		if d.Has("listing_visibility") {
			s := d.String("listing_visibility")
			t.ListingVisibility = &s
		}
		if d.Has("audit_non_hmac_request_keys") {
			t.AuditNonHMACRequestKeys = d.Strings("audit_non_hmac_request_keys")
		}
		if d.Has("audit_non_hmac_response_keys") {
			t.AuditNonHMACResponseKeys = d.Strings("audit_non_hmac_response_keys")
		}
		if d.Has("passthrough_request_headers") {
			t.PassthroughRequestHeaders = d.Strings("passthrough_request_headers")
		}
		return nil, b.d.Router.TuneMount(ctx, p, t)
	}
}

// visible reports whether the caller of req may see the mount at path.
func (b *Backend) visible(ctx context.Context, req *core.Request, path string) (bool, error) {
	p := req.Principal
	if p == nil {
		return false, nil
	}
	if p.Root {
		return true, nil
	}
	if b.d.Access == nil {
		return false, nil
	}
	return b.d.Access.MountAccess(ctx, p, path)
}

// uiMounts lists the mounts the caller has some capability on, as Vault's
// sys/internal/ui/mounts does: a token sees only what its policies reach.
func (b *Backend) uiMounts(ctx context.Context, req *core.Request, _ *framework.FieldData) (*core.Response, error) {
	secret := map[string]any{}
	auth := map[string]any{}
	ns := req.NS()
	for _, class := range []string{"secret", "auth"} {
		for _, e := range b.d.Router.MountsIn(ns, class) {
			ok, err := b.visible(ctx, req, ns.Path+e.Path)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if class == "auth" {
				auth[relPath("auth", e.Path)] = MountData(e)
			} else {
				secret[e.Path] = MountData(e)
			}
		}
	}
	return &core.Response{Data: map[string]any{"secret": secret, "auth": auth}}, nil
}

// uiMount describes the mount serving a path, to a caller with some
// capability on that mount (403 otherwise, as in Vault).
func (b *Backend) uiMount(ctx context.Context, req *core.Request, d *framework.FieldData) (*core.Response, error) {
	// The path may continue into a child namespace ("icu/secret/x"), as
	// the Vault CLI's preflight for `kv get icu/secret/x` sends it: the
	// answer's path is then relative to the request's namespace too.
	p := d.String("path")
	ns, rel := req.NS(), p
	if b.d.Namespace != nil {
		ns, rel = b.d.Namespace(req.NS().Path + p)
	}
	res, err := b.d.Router.ResolveIn(ns, rel, false)
	if err != nil || res.Mount.Path == ns.Path+"sys/" {
		return nil, core.ErrPermissionDenied
	}
	ok, err := b.visible(ctx, req, res.Mount.Path)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, core.ErrPermissionDenied
	}
	e, _ := b.d.Router.EntryIn(ns, strings.TrimPrefix(res.Mount.Path, ns.Path))
	data := MountData(e)
	data["path"] = strings.TrimPrefix(ns.Path, req.NS().Path) + relPath(e.Class, strings.TrimPrefix(e.Path, e.NamespacePath))
	return &core.Response{Data: data}, nil
}

// nsPath is the full path of the mount at p (relative to req's namespace)
// when it is one of that namespace's own: the built-in mounts and other
// namespaces' mounts are never changed from a namespace.
func (b *Backend) nsPath(req *core.Request, class, p string) (string, error) {
	rel, err := fullPath(class, p)
	if err != nil {
		return "", err
	}
	ns := req.NS()
	if err := b.ownMount(ns, rel); err != nil {
		return "", err
	}
	if ns.IsRoot() {
		return rel, nil
	}
	if e, ok := b.d.Router.EntryIn(ns, rel); ok && e.Static {
		return "", core.Invalid("cannot change the built-in mount %s", rel)
	}
	return ns.Path + rel, nil
}

// ownMount refuses a path (relative to ns) at which another namespace has
// its mount: "icu/secret/" in hospital-a/ is hospital-a/icu/'s mount, and
// "hospital-a/secret/" in the root is hospital-a/'s. A mount is changed
// from its own namespace only, where policies naming it apply.
func (b *Backend) ownMount(ns core.Namespace, rel string) error {
	e, ok := b.d.Router.Entry(ns.Path + rel)
	if !ok {
		return nil
	}
	if e.NamespaceID == ns.ID || ns.IsRoot() && (e.NamespaceID == "" || e.NamespaceID == core.RootNamespaceID) {
		return nil
	}
	return core.Invalid("no mount at %s in this namespace", rel)
}
