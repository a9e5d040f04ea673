// Package namespace keeps the namespace tree: one namespace per tenant (a
// hospital, a bank), nested as deep as needed, each with its own mounts,
// policies, auth methods, tokens and identity. The Store resolves which
// namespace a request is in (the X-Vault-Namespace header and the path's
// prefix, as in Vault), and keeps each namespace's lock and custom metadata.
//
// The tree is small and read on every request, so the Store holds all of it
// in memory while unsealed (Load, Clear); writes go to storage first. Other
// nodes of a cluster learn of changes through Invalidate.
//
// Storage: one JSON document per namespace at sys/namespaces/<uuid>.
package namespace

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// StoragePrefix is where namespaces are kept in the barrier.
const StoragePrefix = "sys/namespaces/"

// Entry is one namespace as stored.
type Entry struct {
	ID             string            `json:"id"`
	UUID           string            `json:"uuid"`
	Path           string            `json:"path"`
	CustomMetadata map[string]string `json:"custom_metadata,omitempty"`
	// UnlockKeyHash is the SHA-256 of the unlock key while the namespace
	// is locked ("" when it is not). The key itself is never stored.
	UnlockKeyHash string `json:"unlock_key_hash,omitempty"`
	// Tainted is set while the namespace is being deleted: no request
	// reaches it any more, and a deletion that stopped half-way can be
	// run again.
	Tainted bool      `json:"tainted,omitempty"`
	Created time.Time `json:"created"`
}

// Locked reports whether the namespace's API is locked.
func (e *Entry) Locked() bool { return e.UnlockKeyHash != "" }

// Namespace returns the entry's core.Namespace.
func (e *Entry) Namespace() core.Namespace { return core.Namespace{ID: e.ID, Path: e.Path} }

func (e *Entry) clone() *Entry {
	c := *e
	c.CustomMetadata = maps.Clone(e.CustomMetadata)
	return &c
}

// Store is the namespace tree. It is safe for concurrent use.
type Store struct {
	s   storage.Storage
	now func() time.Time
	log *slog.Logger

	wmu    sync.Mutex // serialises writes and loads
	mu     sync.RWMutex
	loaded bool
	byPath map[string]*Entry
	byID   map[string]*Entry

	invMu      sync.Mutex
	invPending bool
	invRunning bool
	invDone    *sync.Cond
}

// New returns an empty store over s (the barrier). Until Load only the root
// namespace resolves.
func New(s storage.Storage, now func() time.Time, log *slog.Logger) *Store {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	st := &Store{s: s, now: now, log: log, byPath: map[string]*Entry{}, byID: map[string]*Entry{}}
	st.invDone = sync.NewCond(&st.invMu)
	return st
}

// Load reads every namespace from storage (after unseal). A document that
// does not decode fails the load: a namespace that silently vanished would
// let its path resolve to a mount of its parent.
func (s *Store) Load(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.loadLocked(ctx)
}

func (s *Store) loadLocked(ctx context.Context) error {
	keys, err := s.s.List(ctx, StoragePrefix)
	if err != nil {
		return fmt.Errorf("namespace: list: %w", err)
	}
	byPath, byID := map[string]*Entry{}, map[string]*Entry{}
	for _, k := range keys {
		var e Entry
		ok, err := storage.GetJSON(ctx, s.s, StoragePrefix+k, &e)
		if err != nil {
			return fmt.Errorf("namespace: read %s: %w", k, err)
		}
		if !ok {
			continue
		}
		if e.UUID != k || e.ID == "" || e.Path == "" {
			return fmt.Errorf("namespace: the document at %s%s is not a namespace", StoragePrefix, k)
		}
		if byPath[e.Path] != nil || byID[e.ID] != nil {
			return fmt.Errorf("namespace: %s (%s) is stored twice", e.Path, e.ID)
		}
		byPath[e.Path], byID[e.ID] = &e, &e
	}
	s.mu.Lock()
	s.byPath, s.byID, s.loaded = byPath, byID, true
	s.mu.Unlock()
	return nil
}

// Clear forgets the tree (on seal).
func (s *Store) Clear() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	s.byPath, s.byID, s.loaded = map[string]*Entry{}, map[string]*Entry{}, false
	s.mu.Unlock()
}

// Invalidate is the storage apply callback: a change under sys/namespaces/
// (or a snapshot restore, keys == nil) reloads the tree on another
// goroutine. It never blocks.
func (s *Store) Invalidate(keys []string) {
	hit := keys == nil
	for _, k := range keys {
		if strings.HasPrefix(k, StoragePrefix) {
			hit = true
			break
		}
	}
	if !hit {
		return
	}
	s.invMu.Lock()
	defer s.invMu.Unlock()
	s.invPending = true
	if s.invRunning {
		return
	}
	s.invRunning = true
	go s.invalidateLoop()
}

func (s *Store) invalidateLoop() {
	for {
		s.invMu.Lock()
		if !s.invPending {
			s.invRunning = false
			s.invDone.Broadcast()
			s.invMu.Unlock()
			return
		}
		s.invPending = false
		s.invMu.Unlock()
		s.mu.RLock()
		loaded := s.loaded
		s.mu.RUnlock()
		if !loaded {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.Load(ctx); err != nil {
			s.log.Error("namespace: reload after a storage change failed", "error", err)
		}
		cancel()
	}
}

// WaitInvalidations blocks until every Invalidate so far has been applied
// (tests).
func (s *Store) WaitInvalidations() {
	s.invMu.Lock()
	for s.invRunning {
		s.invDone.Wait()
	}
	s.invMu.Unlock()
}

// Canonical returns a namespace path as the store keeps it: no leading
// slash, a trailing slash, "" for the root (also for "root", as Vault reads
// a header that says "root").
func Canonical(p string) string {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" || p == core.RootNamespaceID {
		return ""
	}
	return p + "/"
}

// Resolve returns the namespace a request is in and its path relative to
// that namespace. header is the X-Vault-Namespace header (relative to the
// root); path is the request path, which may continue the namespace path
// ("ns2/secret/..."). The namespace is the deepest one whose path is a
// prefix of header+path; every namespace the header names must exist, else
// the error is core.ErrNamespaceNotFound. The entry is a copy (nil for the
// root namespace).
func (s *Store) Resolve(header, path string) (*Entry, string, error) {
	h := Canonical(header)
	full := h + path
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found *Entry
	for i := 0; i < len(full); i++ {
		if full[i] != '/' {
			continue
		}
		e := s.byPath[full[:i+1]]
		if e == nil {
			break // a namespace's parents all exist: no deeper one either
		}
		found = e
	}
	depth := 0
	if found != nil {
		depth = len(found.Path)
	}
	if depth < len(h) {
		return nil, "", core.ErrNamespaceNotFound
	}
	if found == nil {
		return nil, full, nil
	}
	return found.clone(), full[depth:], nil
}

// ByID returns the namespace with id (a copy); false when there is none.
// The root namespace is not an entry.
func (s *Store) ByID(id string) (*Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byID[id]
	if e == nil {
		return nil, false
	}
	return e.clone(), true
}

// ByPath returns the namespace at a full path ("ns1/ns2/", canonicalised).
func (s *Store) ByPath(p string) (*Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.byPath[Canonical(p)]
	if e == nil {
		return nil, false
	}
	return e.clone(), true
}

// Namespace returns the core.Namespace with id; false when none exists.
// The root namespace always exists.
func (s *Store) Namespace(id string) (core.Namespace, bool) {
	if id == "" || id == core.RootNamespaceID {
		return core.RootNamespace, true
	}
	e, ok := s.ByID(id)
	if !ok {
		return core.Namespace{}, false
	}
	return e.Namespace(), true
}

// Children returns the namespaces directly under parent, by path (copies);
// with recursive, every descendant.
func (s *Store) Children(parent core.Namespace, recursive bool) []*Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Entry
	for p, e := range s.byPath {
		rest, ok := strings.CutPrefix(p, parent.Path)
		if !ok || rest == "" {
			continue
		}
		if !recursive && strings.Count(rest, "/") != 1 {
			continue
		}
		out = append(out, e.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// All returns every namespace (copies), by path.
func (s *Store) All() []*Entry { return s.Children(core.RootNamespace, true) }

// LockedBy returns the namespace whose lock covers n — n itself or its
// nearest locked ancestor, the outermost first as Vault reports it — and
// false when none is locked.
func (s *Store) LockedBy(n core.Namespace) (*Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := 0; i < len(n.Path); i++ {
		if n.Path[i] != '/' {
			continue
		}
		if e := s.byPath[n.Path[:i+1]]; e != nil && e.Locked() {
			return e.clone(), true
		}
	}
	return nil, false
}

// reserved are names no namespace may have: Vault's, since each would hide
// a path every namespace serves.
var reserved = []string{"root", "sys", "audit", "auth", "cubbyhole", "identity"}

// ValidName checks one namespace name (a single path segment).
func ValidName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return core.Invalid("namespace name %q is not allowed", name)
	case strings.Contains(name, "/"):
		return core.Invalid("namespace name cannot contain /")
	case len(name) > 64:
		return core.Invalid("namespace name is longer than 64 bytes")
	case !utf8.ValidString(name):
		return core.Invalid("namespace name is not valid UTF-8")
	case slices.Contains(reserved, name):
		return core.Invalid("%q is a reserved path and cannot be used as a namespace name", name)
	}
	for _, r := range name {
		switch {
		case unicode.IsSpace(r):
			return core.Invalid("%q contains space characters that cannot be used in a namespace name", name)
		case !unicode.IsGraphic(r) || unicode.In(r, unicode.Bidi_Control):
			return core.Invalid("%q contains characters that cannot be used in a namespace name", name)
		case strings.ContainsRune("+*?#%\\", r):
			return core.Invalid("%q contains wildcard or special characters that cannot be used in a namespace name", name)
		}
	}
	return nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomString(n int) (string, error) {
	var sb strings.Builder
	max := big.NewInt(int64(len(base62)))
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		sb.WriteByte(base62[i.Int64()])
	}
	return sb.String(), nil
}

func hashKey(k string) string {
	sum := sha256.Sum256([]byte("namespace-unlock:" + k))
	return hex.EncodeToString(sum[:])
}

// Create makes the namespace name under parent, with custom metadata.
// conflict, when set, is asked whether a mount is in the way of the new
// full path (it returns that mount's path, "" when none). It returns the
// new entry and created=false — without changing anything — when the
// namespace already exists, as Vault answers a repeated create; a meta that
// is not nil then replaces the existing custom metadata.
func (s *Store) Create(ctx context.Context, parent core.Namespace, name string, meta map[string]string, conflict func(path string) string) (e *Entry, created bool, err error) {
	if err := ValidName(name); err != nil {
		return nil, false, err
	}
	full := parent.Path + name + "/"
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	cur, parentOK := s.byPath[full], parent.IsRoot() || s.byPath[parent.Path] != nil
	s.mu.RUnlock()
	if !parentOK {
		return nil, false, core.ErrNamespaceNotFound
	}
	if cur != nil {
		if cur.Tainted {
			return nil, false, core.Invalid("namespace %q is being deleted", full)
		}
		if meta == nil {
			return cur.clone(), false, nil
		}
		upd := cur.clone()
		upd.CustomMetadata = maps.Clone(meta)
		if err := s.putLocked(ctx, upd); err != nil {
			return nil, false, err
		}
		return upd.clone(), false, nil
	}
	if conflict != nil {
		if m := conflict(full); m != "" {
			return nil, false, core.Invalid("new namespace conflicts with existing mount: %s", m)
		}
	}
	id, err := s.newID()
	if err != nil {
		return nil, false, err
	}
	e = &Entry{ID: id, UUID: uuid.NewString(), Path: full, CustomMetadata: maps.Clone(meta), Created: s.now().UTC()}
	if err := s.putLocked(ctx, e); err != nil {
		return nil, false, err
	}
	return e.clone(), true, nil
}

func (s *Store) newID() (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for range 100 {
		id, err := randomString(6)
		if err != nil {
			return "", err
		}
		if s.byID[id] == nil && id != core.RootNamespaceID {
			return id, nil
		}
	}
	return "", fmt.Errorf("namespace: could not find a free id")
}

// putLocked stores e and swaps it into the tree. The caller holds wmu.
func (s *Store) putLocked(ctx context.Context, e *Entry) error {
	if err := storage.PutJSON(ctx, s.s, StoragePrefix+e.UUID, e); err != nil {
		return fmt.Errorf("namespace: store %s: %w", e.Path, err)
	}
	s.mu.Lock()
	s.byPath[e.Path], s.byID[e.ID] = e, e
	s.mu.Unlock()
	return nil
}

// modify applies f to a copy of the namespace at path and stores it.
func (s *Store) modify(ctx context.Context, path string, f func(e *Entry) error) (*Entry, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	cur := s.byPath[Canonical(path)]
	s.mu.RUnlock()
	if cur == nil {
		return nil, core.ErrNamespaceNotFound
	}
	e := cur.clone()
	if err := f(e); err != nil {
		return nil, err
	}
	if err := s.putLocked(ctx, e); err != nil {
		return nil, err
	}
	return e.clone(), nil
}

// SetMetadata replaces a namespace's custom metadata.
func (s *Store) SetMetadata(ctx context.Context, path string, meta map[string]string) (*Entry, error) {
	return s.modify(ctx, path, func(e *Entry) error {
		e.CustomMetadata = maps.Clone(meta)
		return nil
	})
}

// Lock locks the API of the namespace at path (and so of its
// descendants) and returns the unlock key. Locking a namespace that is
// already locked, or one inside a locked namespace, is refused.
func (s *Store) Lock(ctx context.Context, path string) (string, error) {
	if e, ok := s.ByPath(path); ok {
		if by, locked := s.LockedBy(e.Namespace()); locked {
			return "", core.Invalid("namespace %q is already locked (by %q)", e.Path, by.Path)
		}
	}
	key, err := randomString(24)
	if err != nil {
		return "", err
	}
	_, err = s.modify(ctx, path, func(e *Entry) error {
		if e.Tainted {
			return core.Invalid("namespace %q is being deleted", e.Path)
		}
		e.UnlockKeyHash = hashKey(key)
		return nil
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// Unlock unlocks the namespace at path with its unlock key; with sudo the
// key may be empty (a caller with sudo on the unlock path). A namespace
// inside a locked ancestor must wait for that ancestor to be unlocked.
func (s *Store) Unlock(ctx context.Context, path, key string, sudo bool) error {
	if key == "" && !sudo {
		return core.Invalid("provided empty key")
	}
	_, err := s.modify(ctx, path, func(e *Entry) error {
		if !e.Locked() {
			return core.Invalid("namespace %q is not locked", e.Path)
		}
		if by, ok := s.LockedBy(e.Namespace()); ok && by.ID != e.ID {
			return core.Invalid("cannot unlock %q with namespace %q being locked", e.Path, by.Path)
		}
		if key != "" && subtle.ConstantTimeCompare([]byte(hashKey(key)), []byte(e.UnlockKeyHash)) != 1 {
			return core.Invalid("incorrect unlock key")
		}
		e.UnlockKeyHash = ""
		return nil
	})
	return err
}

// Taint marks the namespace at path as being deleted.
func (s *Store) Taint(ctx context.Context, path string) (*Entry, error) {
	return s.modify(ctx, path, func(e *Entry) error {
		e.Tainted = true
		return nil
	})
}

// Remove deletes the namespace record with id (the last step of a
// deletion, once everything inside is gone).
func (s *Store) Remove(ctx context.Context, id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	e := s.byID[id]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	if err := s.s.Delete(ctx, StoragePrefix+e.UUID); err != nil {
		return fmt.Errorf("namespace: delete %s: %w", e.Path, err)
	}
	s.mu.Lock()
	delete(s.byPath, e.Path)
	delete(s.byID, e.ID)
	s.mu.Unlock()
	return nil
}

// MountConflict is the router's check for a new mount of namespace ns at
// the full path p: it returns the path of a namespace the mount would hide
// (one at or under p) or cut into (p inside a namespace that is neither
// ns nor one of its ancestors), "" when there is none.
func (s *Store) MountConflict(ns core.Namespace, p string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var hit []string
	for path := range s.byPath {
		if strings.HasPrefix(path, p) || strings.HasPrefix(p, path) && !strings.HasPrefix(ns.Path, path) {
			hit = append(hit, path)
		}
	}
	if len(hit) == 0 {
		return ""
	}
	sort.Strings(hit)
	return hit[0]
}
