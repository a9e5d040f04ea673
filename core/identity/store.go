// Package identity is Vigil's identity store, with Vault's identity/ API:
// entities (the people and workloads behind tokens), entity aliases (the
// name one auth mount vouches for: a user name, a role id, an OIDC
// subject), internal and external groups, and group aliases (the group
// names logins assert, mapped to external groups).
//
// Every login that names an alias is mapped to its entity, created on first
// use (Login); every request resolves its token's entity afresh (Resolve),
// so a change of groups, entity policies or the disabled flag applies to
// the next request. A token's effective policies are its own plus its
// entity's plus those of every group the entity belongs to, directly or
// through parent groups.
//
// Storage: one JSON document per entity (aliases inside) under
// sys/identity/entity/ and per group (its alias inside) under
// sys/identity/group/, in the barrier. The Store keeps an index of all of
// them in memory while unsealed (Load, Clear); writes go to storage first
// and then to the index. Other nodes of a cluster learn of changes through
// Invalidate (connect it to the storage apply callback).
package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

// Storage prefixes in the barrier.
const (
	entityPrefix = "sys/identity/entity/"
	groupPrefix  = "sys/identity/group/"
)

// Mounts resolves auth mount accessors; the server adapts its router.
type Mounts interface {
	// MountByAccessor returns the path ("auth/userpass/") and type of the
	// mount with the accessor, false when there is none.
	MountByAccessor(accessor string) (path, typ string, ok bool)
}

// NamespacedMounts is implemented by Mounts that know namespaces: it names
// the namespace of the mount with the accessor (id "" or "root" and path ""
// for the root namespace). Without it every mount is in the root
// namespace.
type NamespacedMounts interface {
	MountNamespace(accessor string) (id, path string, ok bool)
}

// Config configures a Store.
type Config struct {
	// Storage is the barrier. Required.
	Storage storage.Storage
	// Mounts validates alias mount accessors and names their mounts.
	// Required.
	Mounts Mounts
	Now    func() time.Time
	Logger *slog.Logger
}

// Store is the identity store. It is safe for concurrent use: lookups take
// a read lock on the index; writes are serialised and hold the index lock
// only while swapping values in.
type Store struct {
	cfg Config
	wmu sync.Mutex   // serialises writes, loads and invalidations
	mu  sync.RWMutex // guards ix and derived
	ix  *index       // nil while sealed

	// derived caches each entity's groups and identity policies until the
	// index next changes. The map is replaced under mu (write); its entries
	// are read and added under mu (read) and dmu.
	derived map[string]*derivedIdentity
	dmu     sync.Mutex

	invMu      sync.Mutex
	invKeys    map[string]bool
	invAll     bool
	invRunning bool
	invDone    *sync.Cond
}

// New returns a Store with nothing loaded: until Load, Resolve finds no
// entity and writes fail with core.ErrSealed.
func New(cfg Config) *Store {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Store{cfg: cfg, invKeys: map[string]bool{}}
	s.invDone = sync.NewCond(&s.invMu)
	return s
}

// Load reads every entity and group from storage into the index (after
// unseal). A document that does not decode fails the load: the identity
// store refuses to run with part of its data, since a missing group could
// hide a policy and a missing entity a disabled flag.
func (s *Store) Load(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ix := newIndex()
	ents, err := s.cfg.Storage.List(ctx, entityPrefix)
	if err != nil {
		return fmt.Errorf("identity: list entities: %w", err)
	}
	for _, id := range ents {
		e, err := s.readEntity(ctx, id)
		if err != nil {
			return err
		}
		if e != nil {
			ix.putEntity(e)
		}
	}
	grps, err := s.cfg.Storage.List(ctx, groupPrefix)
	if err != nil {
		return fmt.Errorf("identity: list groups: %w", err)
	}
	for _, id := range grps {
		g, err := s.readGroup(ctx, id)
		if err != nil {
			return err
		}
		if g != nil {
			ix.putGroup(g)
		}
	}
	s.mu.Lock()
	s.ix, s.derived = ix, map[string]*derivedIdentity{}
	s.mu.Unlock()
	return nil
}

// Clear drops the index (on seal).
func (s *Store) Clear() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	s.ix, s.derived = nil, nil
	s.mu.Unlock()
}

func (s *Store) readEntity(ctx context.Context, id string) (*Entity, error) {
	var e Entity
	ok, err := storage.GetJSON(ctx, s.cfg.Storage, entityPrefix+id, &e)
	if err != nil || !ok {
		return nil, err
	}
	if e.ID != id {
		return nil, fmt.Errorf("identity: entity stored at %q has id %q", id, e.ID)
	}
	return &e, nil
}

func (s *Store) readGroup(ctx context.Context, id string) (*Group, error) {
	var g Group
	ok, err := storage.GetJSON(ctx, s.cfg.Storage, groupPrefix+id, &g)
	if err != nil || !ok {
		return nil, err
	}
	if g.ID != id {
		return nil, fmt.Errorf("identity: group stored at %q has id %q", id, g.ID)
	}
	return &g, nil
}

// view runs f with the index under the read lock. It fails with
// core.ErrSealed before Load.
func (s *Store) view(f func(ix *index) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ix == nil {
		return core.ErrSealed
	}
	return f(s.ix)
}

// change is one batch of writes: documents to put and to delete.
type change struct {
	entities  []*Entity
	groups    []*Group
	delEntity []string
	delGroup  []string
}

func (c *change) putEntity(e *Entity) { c.entities = append(c.entities, e) }
func (c *change) putGroup(g *Group)   { c.groups = append(c.groups, g) }

// commit writes c to storage in one transaction, then to the index. The
// caller holds s.wmu.
func (s *Store) commit(ctx context.Context, c *change) error {
	var ops []storage.TxnOp
	now := s.cfg.Now().UTC()
	for _, e := range c.entities {
		e.LastUpdateTime = now
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: entityPrefix + e.ID, Value: b})
	}
	for _, g := range c.groups {
		g.LastUpdateTime = now
		g.ModifyIndex++
		b, err := json.Marshal(g)
		if err != nil {
			return err
		}
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: groupPrefix + g.ID, Value: b})
	}
	for _, id := range c.delEntity {
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: entityPrefix + id})
	}
	for _, id := range c.delGroup {
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: groupPrefix + id})
	}
	if len(ops) == 0 {
		return nil
	}
	if err := storage.Txn(ctx, s.cfg.Storage, ops); err != nil {
		return fmt.Errorf("identity: write: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ix == nil {
		return core.ErrSealed
	}
	for _, id := range c.delEntity {
		s.ix.deleteEntity(id)
	}
	for _, id := range c.delGroup {
		s.ix.deleteGroup(id)
	}
	for _, e := range c.entities {
		s.ix.putEntity(e)
	}
	for _, g := range c.groups {
		s.ix.putGroup(g)
	}
	s.derived = map[string]*derivedIdentity{}
	return nil
}

// update runs f under the write lock with the current index (read-only:
// f records its writes in the change), then commits the change.
func (s *Store) update(ctx context.Context, f func(ix *index, c *change) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c := &change{}
	s.mu.RLock()
	ix := s.ix
	var err error
	if ix == nil {
		err = core.ErrSealed
	} else {
		err = f(ix, c)
	}
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	return s.commit(ctx, c)
}

// Invalidate is the storage apply callback (raftstore.Config.OnApply's
// signature): changed keys under sys/identity/ are re-read into the index
// on another goroutine, nil keys (a snapshot restore) reload everything.
// It never blocks and never touches storage on the caller's goroutine.
func (s *Store) Invalidate(keys []string) {
	s.invMu.Lock()
	defer s.invMu.Unlock()
	if keys == nil {
		s.invAll = true
	}
	for _, k := range keys {
		if strings.HasPrefix(k, entityPrefix) || strings.HasPrefix(k, groupPrefix) {
			s.invKeys[k] = true
		}
	}
	if (len(s.invKeys) == 0 && !s.invAll) || s.invRunning {
		return
	}
	s.invRunning = true
	go s.invalidateLoop()
}

func (s *Store) invalidateLoop() {
	for {
		s.invMu.Lock()
		keys, all := s.invKeys, s.invAll
		s.invKeys, s.invAll = map[string]bool{}, false
		if len(keys) == 0 && !all {
			s.invRunning = false
			s.invDone.Broadcast()
			s.invMu.Unlock()
			return
		}
		s.invMu.Unlock()
		if err := s.refresh(keys, all); err != nil {
			s.cfg.Logger.Error("identity: refresh after a storage change failed", "error", err)
		}
	}
}

// WaitInvalidations blocks until every Invalidate call so far has been
// applied (tests).
func (s *Store) WaitInvalidations() {
	s.invMu.Lock()
	for s.invRunning {
		s.invDone.Wait()
	}
	s.invMu.Unlock()
}

// refresh re-reads changed keys into the index (nothing while sealed).
func (s *Store) refresh(keys map[string]bool, all bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.mu.RLock()
	loaded := s.ix != nil
	s.mu.RUnlock()
	if !loaded {
		return nil
	}
	if all {
		return s.Load(ctx)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c := &change{}
	for k := range keys {
		if id, ok := strings.CutPrefix(k, entityPrefix); ok {
			e, err := s.readEntity(ctx, id)
			if err != nil {
				return err
			}
			if e == nil {
				c.delEntity = append(c.delEntity, id)
			} else {
				c.entities = append(c.entities, e)
			}
		} else if id, ok := strings.CutPrefix(k, groupPrefix); ok {
			g, err := s.readGroup(ctx, id)
			if err != nil {
				return err
			}
			if g == nil {
				c.delGroup = append(c.delGroup, id)
			} else {
				c.groups = append(c.groups, g)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ix == nil {
		return nil
	}
	for _, id := range c.delEntity {
		s.ix.deleteEntity(id)
	}
	for _, id := range c.delGroup {
		s.ix.deleteGroup(id)
	}
	for _, e := range c.entities {
		s.ix.putEntity(e)
	}
	for _, g := range c.groups {
		s.ix.putGroup(g)
	}
	s.derived = map[string]*derivedIdentity{}
	return nil
}

func (s *Store) mountPath(accessor string) (path, typ string, ok bool) {
	if s.cfg.Mounts == nil {
		return "", "", false
	}
	return s.cfg.Mounts.MountByAccessor(accessor)
}

// mountNS returns the namespace id ("" for the root) and path of the mount
// with the accessor; ok is false when there is no such mount.
func (s *Store) mountNS(accessor string) (id, path string, ok bool) {
	if _, _, ok := s.mountPath(accessor); !ok {
		return "", "", false
	}
	nm, isNS := s.cfg.Mounts.(NamespacedMounts)
	if !isNS {
		return "", "", true
	}
	id, path, ok = nm.MountNamespace(accessor)
	if id == core.RootNamespaceID {
		id = ""
	}
	return id, path, ok
}

// mountIn checks that the mount with the accessor exists in namespace ns.
func (s *Store) mountIn(ns, accessor string) error {
	if id, _, ok := s.mountNS(accessor); !ok || id != ns {
		return core.Invalid("invalid mount accessor %q", accessor)
	}
	return nil
}

// DeleteNamespace deletes every entity and group of the namespace with id
// (its deletion). It is safe to run again.
func (s *Store) DeleteNamespace(ctx context.Context, id string) error {
	if id == "" || id == core.RootNamespaceID {
		return core.Invalid("the root namespace cannot be deleted")
	}
	return s.update(ctx, func(ix *index, c *change) error {
		for eid, e := range ix.entities {
			if e.NamespaceID == id {
				c.delEntity = append(c.delEntity, eid)
			}
		}
		for gid, g := range ix.groups {
			if g.NamespaceID == id {
				c.delGroup = append(c.delGroup, gid)
			}
		}
		return nil
	})
}
