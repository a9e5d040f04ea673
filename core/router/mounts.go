package router

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// reserved secret-mount prefixes (Vault's, plus "auth/" which is the auth namespace).
var reservedPrefixes = []string{"sys/", "auth/", "identity/", "cubbyhole/", "audit/"}

// NormalizePath validates a mount path and returns it with a trailing slash.
func NormalizePath(p string) (string, error) {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return "", core.Invalid("mount path must not be empty")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", core.Invalid("invalid mount path %q", p)
		}
	}
	if strings.ContainsAny(p, "*+?#%\\ ") {
		return "", core.Invalid("invalid mount path %q: wildcards and special characters are not allowed", p)
	}
	return p + "/", nil
}

// Mount creates and persists a new mount. For class "auth" the path given is
// relative to "auth/" (as in sys/auth/:path).
func (r *Router) Mount(ctx context.Context, e *MountEntry) error {
	if e.Class == "" {
		e.Class = "secret"
	}
	p, err := NormalizePath(e.Path)
	if err != nil {
		return err
	}
	if e.Class == "auth" {
		p = "auth/" + p
	} else {
		for _, rp := range reservedPrefixes {
			if strings.HasPrefix(p, rp) || p == rp {
				return core.Invalid("cannot mount '%s' of type '%s': path is reserved", p, e.Type)
			}
		}
	}
	ns := core.Namespace{ID: e.NamespaceID, Path: e.NamespacePath}
	if e.NamespaceID == "" || e.NamespaceID == core.RootNamespaceID {
		ns, e.NamespaceID, e.NamespacePath = core.RootNamespace, "", ""
	} else if e.NamespacePath == "" {
		return core.Invalid("a mount of namespace %s needs the namespace's path", e.NamespaceID)
	}
	if err := r.checkNamespaced(ns, p); err != nil {
		return err
	}
	p = ns.Path + p
	e.Path = p
	if e.Type == "kv-v2" {
		e.Type = "kv"
		if e.Options == nil {
			e.Options = map[string]string{}
		}
		e.Options["version"] = "2"
	}
	eng, err := r.factory(e.Class, e.Type)
	if err != nil {
		return err
	}
	if err := r.checkTTLs(e.Config); err != nil {
		return err
	}
	r.mu.Lock()
	for existing := range r.mounts {
		if strings.HasPrefix(existing, p) || strings.HasPrefix(p, existing) {
			r.mu.Unlock()
			if existing == p {
				return core.Invalid("path is already in use at %s", p)
			}
			return core.Invalid("path is already in use at %s (conflicts with %s)", p, existing)
		}
	}
	r.mu.Unlock()
	e.UUID = newUUID()
	e.Accessor = newAccessor(e.Class, e.Type)
	e.Created = r.cfg.Now().UTC()
	m := &mount{entry: e, engine: eng}
	if err := r.setup(ctx, m, viewPrefixFor(e)); err != nil {
		return core.Invalid("%s", err.Error())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mounts[p] = m
	r.reorder()
	if err := r.persistLocked(ctx, e.Class); err != nil {
		delete(r.mounts, p)
		r.reorder()
		_ = eng.Close(ctx)
		return err
	}
	return nil
}

// Unmount disables the mount at path (full path, e.g. "secret/" or
// "auth/userpass/") and deletes its storage. revoke is called first to revoke
// the mount's leases; when it fails the mount is kept.
func (r *Router) Unmount(ctx context.Context, path string, revoke func(ctx context.Context, prefix string) error) error {
	p, err := NormalizePath(path)
	if err != nil {
		return err
	}
	r.mu.RLock()
	m, ok := r.mounts[p]
	r.mu.RUnlock()
	if !ok {
		// Vault answers success when disabling something not mounted.
		return nil
	}
	if m.entry.Static {
		return core.Invalid("cannot unmount %q", p)
	}
	if revoke != nil {
		if err := revoke(ctx, p); err != nil {
			return fmt.Errorf("unmount %s: revoke leases: %w", p, err)
		}
	}
	r.mu.Lock()
	delete(r.mounts, p)
	r.reorder()
	if err := r.persistLocked(ctx, m.entry.Class); err != nil {
		r.mounts[p] = m
		r.reorder()
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()
	if err := m.engine.Close(ctx); err != nil {
		r.cfg.Logger.Warn("engine close", "path", p, "error", err)
	}
	return storage.DeletePrefix(ctx, r.cfg.Storage, viewPrefixFor(m.entry))
}

// Tune changes a mount's config and options.
type Tune struct {
	DefaultLeaseTTL           *time.Duration
	MaxLeaseTTL               *time.Duration
	Description               *string
	Options                   map[string]string
	ListingVisibility         *string
	AuditNonHMACRequestKeys   []string
	AuditNonHMACResponseKeys  []string
	PassthroughRequestHeaders []string
}

// TuneMount applies t to the mount at path.
func (r *Router) TuneMount(ctx context.Context, path string, t Tune) error {
	m, resetup, err := r.tuneLocked(ctx, path, t)
	if err != nil || !resetup {
		return err
	}
	// Re-setup (outside the lock: Setup may consult the SystemView) so the
	// engine serves the new version's routes.
	return r.setup(ctx, m, viewPrefixFor(m.entry))
}

func (r *Router) tuneLocked(ctx context.Context, path string, t Tune) (*mount, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.mounts[path]
	if !ok {
		return nil, false, core.Invalid("cannot tune %q: no mount at that path", path)
	}
	cfg := m.entry.Config
	if t.DefaultLeaseTTL != nil {
		cfg.DefaultLeaseTTL = *t.DefaultLeaseTTL
	}
	if t.MaxLeaseTTL != nil {
		cfg.MaxLeaseTTL = *t.MaxLeaseTTL
	}
	if t.ListingVisibility != nil {
		cfg.ListingVisibility = *t.ListingVisibility
	}
	if t.AuditNonHMACRequestKeys != nil {
		cfg.AuditNonHMACRequestKeys = t.AuditNonHMACRequestKeys
	}
	if t.AuditNonHMACResponseKeys != nil {
		cfg.AuditNonHMACResponseKeys = t.AuditNonHMACResponseKeys
	}
	if t.PassthroughRequestHeaders != nil {
		cfg.PassthroughRequestHeaders = t.PassthroughRequestHeaders
	}
	if err := r.checkTTLs(cfg); err != nil {
		return nil, false, err
	}
	if m.entry.Static && (t.Options != nil) {
		return nil, false, core.Invalid("cannot set options on %q", path)
	}
	old := *m.entry
	old.Options = maps.Clone(m.entry.Options)
	m.entry.Config = cfg
	if t.Description != nil {
		m.entry.Description = *t.Description
	}
	if t.Options != nil {
		if m.entry.Type == "kv" {
			oldV, newV := m.entry.Options["version"], t.Options["version"]
			if newV != "" && newV != oldV && !(oldV == "" && newV == "1") {
				if !(newV == "2" && (oldV == "1" || oldV == "")) {
					return nil, false, core.Invalid("cannot change KV version from %q to %q", oldV, newV)
				}
				up, ok := m.engine.(interface {
					UpgradeToV2(ctx context.Context) error
				})
				if !ok {
					return nil, false, core.Invalid("this mount cannot be upgraded to KV version 2")
				}
				if err := up.UpgradeToV2(ctx); err != nil {
					return nil, false, err
				}
			}
		}
		if m.entry.Options == nil {
			m.entry.Options = map[string]string{}
		}
		for k, v := range t.Options {
			if v == "" && k != "version" {
				delete(m.entry.Options, k)
				continue
			}
			m.entry.Options[k] = v
		}
	}
	if m.entry.Static {
		return m, false, nil
	}
	if err := r.persistLocked(ctx, m.entry.Class); err != nil {
		*m.entry = old
		return nil, false, err
	}
	return m, t.Options != nil && old.Options["version"] != m.entry.Options["version"], nil
}

func (r *Router) checkTTLs(c core.MountConfig) error {
	if c.DefaultLeaseTTL < 0 || c.MaxLeaseTTL < 0 {
		return core.Invalid("lease TTLs must not be negative")
	}
	maxTTL := c.MaxLeaseTTL
	if maxTTL == 0 {
		maxTTL = r.cfg.MaxLeaseTTL
	}
	if c.DefaultLeaseTTL > 0 && maxTTL > 0 && c.DefaultLeaseTTL > maxTTL {
		return core.Invalid("default lease TTL %s cannot be larger than max lease TTL %s", c.DefaultLeaseTTL, maxTTL)
	}
	return nil
}

func (r *Router) persistLocked(ctx context.Context, class string) error {
	var table []*MountEntry
	for _, m := range r.mounts {
		if m.entry.Static || m.entry.Class != class {
			continue
		}
		table = append(table, m.entry)
	}
	sort.Slice(table, func(i, j int) bool { return table[i].Path < table[j].Path })
	key := secretTableKey
	if class == "auth" {
		key = authTableKey
	}
	if table == nil {
		table = []*MountEntry{}
	}
	return storage.PutJSON(ctx, r.cfg.Storage, key, table)
}

// Mounts returns copies of the mount entries of a class, sorted by path.
func (r *Router) Mounts(class string) []MountEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []MountEntry
	for _, m := range r.mounts {
		if m.entry.Class != class {
			continue
		}
		e := *m.entry
		e.Options = maps.Clone(m.entry.Options)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Entry returns a copy of the mount entry at path.
func (r *Router) Entry(path string) (MountEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.mounts[path]
	if !ok {
		return MountEntry{}, false
	}
	e := *m.entry
	e.Options = maps.Clone(m.entry.Options)
	return e, true
}

// Effective returns the effective lease TTLs of the mount at path.
func (r *Router) Effective(path string) (def, max time.Duration) {
	r.mu.RLock()
	m, ok := r.mounts[path]
	r.mu.RUnlock()
	def, max = r.cfg.DefaultLeaseTTL, r.cfg.MaxLeaseTTL
	if !ok {
		return def, max
	}
	if m.entry.Config.MaxLeaseTTL > 0 {
		max = m.entry.Config.MaxLeaseTTL
	}
	if m.entry.Config.DefaultLeaseTTL > 0 {
		def = m.entry.Config.DefaultLeaseTTL
	}
	if def > max {
		def = max
	}
	return def, max
}

// Defaults returns the server-wide lease TTL defaults.
func (r *Router) Defaults() (def, max time.Duration) { return r.cfg.DefaultLeaseTTL, r.cfg.MaxLeaseTTL }

type sysView struct {
	r    *Router
	path string
}

func (s *sysView) DefaultLeaseTTL() time.Duration { d, _ := s.r.Effective(s.path); return d }
func (s *sysView) MaxLeaseTTL() time.Duration     { _, m := s.r.Effective(s.path); return m }
func (s *sysView) MountOptions() map[string]string {
	e, _ := s.r.Entry(s.path)
	return e.Options
}

// Remount moves the mount at from to to (full paths: "secret/",
// "auth/userpass/"; a missing trailing slash is added), keeping its
// configuration, accessor and data (a mount's storage is keyed by its UUID,
// not its path). move is called first to carry what is keyed by path —
// leases, token creation paths — from the old prefix to the new one; when
// it fails nothing has moved. Built-in mounts cannot move, an auth method
// stays under auth/ and a secrets engine outside it, and the target must
// be free. Errors are CodeInvalid unless storage fails.
func (r *Router) Remount(ctx context.Context, from, to string, move func(ctx context.Context, from, to string) error) error {
	src, err := NormalizePath(from)
	if err != nil {
		return err
	}
	dst, err := NormalizePath(to)
	if err != nil {
		return err
	}
	r.mu.RLock()
	m, ok := r.mounts[src]
	r.mu.RUnlock()
	switch {
	case !ok:
		return core.Invalid("no mount at %s", src)
	case m.entry.Static:
		return core.Invalid("cannot remount %s", src)
	case src == dst:
		return core.Invalid("the source and destination of a remount are the same: %s", src)
	case !strings.HasPrefix(dst, m.entry.NamespacePath):
		return core.Invalid("cannot remount %s to %s: a mount stays in its namespace", src, dst)
	}
	// The checks below are on the path within the mount's namespace.
	ns := core.Namespace{ID: m.entry.NamespaceID, Path: m.entry.NamespacePath}
	if ns.ID == "" {
		ns = core.RootNamespace
	}
	rel := strings.TrimPrefix(dst, ns.Path)
	if m.entry.Class == "auth" {
		if !strings.HasPrefix(rel, "auth/") || rel == "auth/" || rel == "auth/token/" {
			return core.Invalid("cannot remount to destination %s: an auth method must move to another path under auth/", dst)
		}
	} else {
		for _, rp := range reservedPrefixes {
			if strings.HasPrefix(rel, rp) {
				return core.Invalid("cannot remount to destination %s: path is reserved", dst)
			}
		}
	}
	if err := r.checkNamespaced(ns, rel); err != nil {
		return err
	}
	r.mu.RLock()
	for existing := range r.mounts {
		if existing != src && (strings.HasPrefix(existing, dst) || strings.HasPrefix(dst, existing)) {
			r.mu.RUnlock()
			return core.Invalid("path is already in use at %s", existing)
		}
	}
	r.mu.RUnlock()
	if move != nil {
		if err := move(ctx, src, dst); err != nil {
			_ = move(ctx, dst, src) // carry back what had moved
			return fmt.Errorf("remount %s to %s: %w", src, dst, err)
		}
	}
	r.mu.Lock()
	if _, taken := r.mounts[dst]; taken || r.mounts[src] != m {
		r.mu.Unlock()
		if move != nil {
			_ = move(ctx, dst, src)
		}
		return core.Invalid("path is already in use at %s", dst)
	}
	delete(r.mounts, src)
	m.entry.Path = dst
	r.mounts[dst] = m
	r.reorder()
	if err := r.persistLocked(ctx, m.entry.Class); err != nil {
		delete(r.mounts, dst)
		m.entry.Path = src
		r.mounts[src] = m
		r.reorder()
		r.mu.Unlock()
		if move != nil {
			_ = move(ctx, dst, src)
		}
		return err
	}
	r.mu.Unlock()
	// The engine learns its new path (some build URLs or names from it).
	return r.setup(ctx, m, viewPrefixFor(m.entry))
}

// MountByAccessor returns the path and type of the mount with the accessor
// (any class), false when none has it.
func (r *Router) MountByAccessor(accessor string) (path, typ string, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for p, m := range r.mounts {
		if m.entry.Accessor == accessor {
			return p, m.entry.Type, true
		}
	}
	return "", "", false
}
