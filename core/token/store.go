// Package token implements Vigil's token store: service and batch tokens with
// accessors, policies, TTLs, use limits and parent/child trees, stored hashed
// (the raw token never reaches storage), and the auth/token/ routes.
package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/auth/tokenutil"
	"github.com/vigilsec/vigil/core/storage"
)

// Prefixes of the token store's keys in the barrier.
const (
	idPrefix       = "sys/token/id/"
	accessorPrefix = "sys/token/accessor/"
	parentPrefix   = "sys/token/parent/"
)

// Entry is a stored token. The raw token is never stored: ID is its SHA-256.
type Entry struct {
	Hash           string            `json:"hash"`
	Accessor       string            `json:"accessor"`
	Parent         string            `json:"parent,omitempty"` // parent's hash
	Policies       []string          `json:"policies"`
	Meta           map[string]string `json:"meta,omitempty"`
	DisplayName    string            `json:"display_name"`
	NumUses        int               `json:"num_uses"` // remaining; 0 = unlimited
	CreationTime   time.Time         `json:"creation_time"`
	TTL            time.Duration     `json:"ttl"`
	ExplicitMaxTTL time.Duration     `json:"explicit_max_ttl,omitempty"`
	Period         time.Duration     `json:"period,omitempty"`
	ExpireTime     time.Time         `json:"expire_time"` // zero: never (root only)
	MaxExpireTime  time.Time         `json:"max_expire_time"`
	LastRenewal    time.Time         `json:"last_renewal,omitempty"`
	Renewable      bool              `json:"renewable"`
	Orphan         bool              `json:"orphan"`
	Type           string            `json:"type"`
	Path           string            `json:"path"`
	EntityID       string            `json:"entity_id,omitempty"`
	InternalData   map[string]any    `json:"internal_data,omitempty"`
	// BoundCIDRs limits the client addresses the token may be used from.
	BoundCIDRs []string `json:"bound_cidrs,omitempty"`
	// Role is the token role it was created with, if any.
	Role string `json:"role,omitempty"`
	// AliasID is the entity alias the login authenticated (see
	// core.Principal.AliasID); CreatorAccessor and CreatorEntityID name the
	// token that created this one through auth/token/create.
	AliasID         string `json:"alias_id,omitempty"`
	CreatorAccessor string `json:"creator_accessor,omitempty"`
	CreatorEntityID string `json:"creator_entity_id,omitempty"`
	// NamespaceID is the namespace the token belongs to ("" for the root
	// namespace): its policies are that namespace's, and it acts only in
	// that namespace and below it.
	NamespaceID string `json:"namespace_id,omitempty"`
}

// IsRoot reports whether the token carries the root policy.
func (e *Entry) IsRoot() bool { return slices.Contains(e.Policies, "root") }

// Config holds the token store's limits.
type Config struct {
	// DefaultTTL applies when a token is created without a TTL (default 1h).
	DefaultTTL time.Duration
	// MaxTTL caps every token's lifetime (default 24h). Tokens never live
	// longer than this from their creation, renewals included.
	MaxTTL time.Duration
	Now    func() time.Time
	Logger *slog.Logger
	// OnRevoke is called with the hashes of tokens about to be revoked, so
	// their leases can be revoked first. An error aborts the revocation.
	OnRevoke func(ctx context.Context, hashes []string) error
	// Cubbyholes destroys the cubbyhole of each revoked service token
	// (nil: tokens have none).
	Cubbyholes Cubbyholes
}

// Cubbyholes is the per-token storage destroyed with its token.
type Cubbyholes interface {
	// Destroy deletes the cubbyhole of the token with storage hash
	// tokenHash; an empty one is not an error.
	Destroy(ctx context.Context, tokenHash string) error
}

// Store is the token store. It is safe for concurrent use.
type Store struct {
	cfg Config
	s   storage.Storage
	// useMu serialises num_uses decrements.
	useMu sync.Mutex
	// decoded spares re-decoding unchanged entries (see decodeCache).
	decoded decodeCache
	// namespaces resolves a token's namespace id (nil: only the root
	// namespace exists).
	namespaces func(id string) (core.Namespace, bool)
}

// NewStore returns a token store over s (the barrier).
func NewStore(s storage.Storage, cfg Config) *Store {
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = time.Hour
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Store{cfg: cfg, s: s}
}

// Limits returns the configured default and maximum TTLs.
func (s *Store) Limits() (def, max time.Duration) { return s.cfg.DefaultTTL, s.cfg.MaxTTL }

// SetOnRevoke installs the revocation hook (wiring happens after construction).
func (s *Store) SetOnRevoke(f func(ctx context.Context, hashes []string) error) { s.cfg.OnRevoke = f }

// SetCubbyholes installs the cubbyhole destroyed with each token (wiring
// happens after construction).
func (s *Store) SetCubbyholes(c Cubbyholes) { s.cfg.Cubbyholes = c }

// Hash returns the storage identity of a raw token.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func accessorKey(acc string) string {
	sum := sha256.Sum256([]byte("accessor:" + acc))
	return accessorPrefix + hex.EncodeToString(sum[:])
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

// CreateParams are the inputs to Create.
type CreateParams struct {
	ID             string // custom token value (root callers only); random when empty
	Parent         *Entry // nil for orphans
	Policies       []string
	NoDefault      bool
	Meta           map[string]string
	DisplayName    string
	NumUses        int
	TTL            time.Duration
	ExplicitMaxTTL time.Duration
	Period         time.Duration
	Renewable      bool
	Orphan         bool
	Type           string // "service" (default) or "batch"
	Path           string
	EntityID       string
	AliasID        string
	InternalData   map[string]any
	// BoundCIDRs are canonical CIDR blocks (tokenutil.ParseCIDRs).
	BoundCIDRs []string
	// Role names the token role applied (auth/token/create/:role).
	Role string
	// Creator is the token creating this one (auth/token/create): its
	// accessor and entity are recorded on the new token, and a child (not an
	// orphan) inherits its entity and alias, as in Vault.
	Creator *Entry
	// NoExpiry creates a token without TTL. Only init and dev mode use it,
	// for the initial root token.
	NoExpiry bool
	// Namespace is the namespace the token belongs to (the zero value: the
	// root namespace). Outside the root its id and accessor end in
	// ".<namespace id>" and it may not carry the root policy.
	Namespace core.Namespace
}

// Create stores a new token and returns the raw token and its entry.
func (s *Store) Create(ctx context.Context, p CreateParams) (string, *Entry, error) {
	now := s.cfg.Now().UTC()
	if p.Type == "" {
		p.Type = "service"
	}
	if p.Type != "service" && p.Type != "batch" {
		return "", nil, core.Invalid("invalid token type %q", p.Type)
	}
	if p.NumUses < 0 {
		return "", nil, core.Invalid("number of uses cannot be negative")
	}
	if p.TTL < 0 || p.ExplicitMaxTTL < 0 || p.Period < 0 {
		return "", nil, core.Invalid("token TTLs cannot be negative")
	}
	pol := normalizePolicies(p.Policies, !p.NoDefault)
	if len(pol) == 0 {
		return "", nil, core.Invalid("token must have at least one policy")
	}
	inNS := p.Namespace.ID != "" && !p.Namespace.IsRoot()
	if inNS && slices.Contains(pol, "root") {
		return "", nil, core.Invalid("root tokens may not be created in a namespace")
	}
	raw := p.ID
	if raw == "" {
		r, err := randomString(24)
		if err != nil {
			return "", nil, err
		}
		prefix := "hvs."
		if p.Type == "batch" {
			prefix = "hvb."
		}
		raw = prefix + r
	} else if len(raw) < 4 || strings.ContainsAny(raw, " \t\n/") {
		return "", nil, core.Invalid("custom token ID must be at least 4 characters with no spaces or slashes")
	}
	acc, err := randomString(24)
	if err != nil {
		return "", nil, err
	}
	if inNS {
		raw, acc = raw+"."+p.Namespace.ID, acc+"."+p.Namespace.ID
	}
	e := &Entry{
		Hash: Hash(raw), Accessor: acc, Policies: pol, Meta: p.Meta, DisplayName: p.DisplayName,
		NumUses: p.NumUses, CreationTime: now, ExplicitMaxTTL: p.ExplicitMaxTTL, Period: p.Period,
		Renewable: p.Renewable && p.Type == "service", Orphan: p.Orphan || p.Parent == nil, Type: p.Type,
		Path: p.Path, EntityID: p.EntityID, AliasID: p.AliasID, InternalData: p.InternalData,
		BoundCIDRs: slices.Clone(p.BoundCIDRs), Role: p.Role,
	}
	if inNS {
		e.NamespaceID = p.Namespace.ID
	}
	if p.Parent != nil && !p.Orphan {
		e.Parent = p.Parent.Hash
	}
	if c := p.Creator; c != nil {
		e.CreatorAccessor, e.CreatorEntityID = c.Accessor, c.EntityID
		if e.Parent != "" && e.EntityID == "" {
			e.EntityID, e.AliasID = c.EntityID, c.AliasID
		}
	}
	if !p.NoExpiry {
		maxLife := s.cfg.MaxTTL
		if p.ExplicitMaxTTL > 0 && p.ExplicitMaxTTL < maxLife {
			maxLife = p.ExplicitMaxTTL
		}
		ttl := p.TTL
		if p.Period > 0 {
			ttl = p.Period
		}
		if ttl == 0 {
			ttl = s.cfg.DefaultTTL
		}
		if ttl > maxLife {
			ttl = maxLife
		}
		e.TTL = ttl
		e.ExpireTime = now.Add(ttl)
		e.MaxExpireTime = now.Add(maxLife)
		if p.Period > 0 && p.ExplicitMaxTTL == 0 {
			// Periodic tokens renew by their period; the server max still caps them.
			e.MaxExpireTime = now.Add(s.cfg.MaxTTL)
		}
	}
	if existing, err := s.get(ctx, e.Hash); err != nil {
		return "", nil, err
	} else if existing != nil {
		return "", nil, core.Invalid("cannot create a token with a duplicate ID")
	}
	if err := s.put(ctx, e, true); err != nil {
		return "", nil, err
	}
	return raw, e, nil
}

func normalizePolicies(in []string, addDefault bool) []string {
	set := map[string]bool{}
	for _, p := range in {
		p = strings.ToLower(strings.TrimSpace(p))
		if p != "" {
			set[p] = true
		}
	}
	if set["root"] {
		return []string{"root"}
	}
	if addDefault {
		set["default"] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (s *Store) put(ctx context.Context, e *Entry, fresh bool) error {
	b, err := jsonMarshal(e)
	if err != nil {
		return err
	}
	ops := []storage.TxnOp{{Kind: storage.OpPut, Key: idPrefix + e.Hash, Value: b}}
	if fresh {
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: accessorKey(e.Accessor), Value: []byte(e.Hash)})
		if e.Parent != "" {
			ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: parentPrefix + e.Parent + "/" + e.Hash, Value: []byte{1}})
		}
	}
	return storage.Txn(ctx, s.s, ops)
}

func (s *Store) get(ctx context.Context, hash string) (*Entry, error) {
	b, err := s.s.Get(ctx, idPrefix+hash)
	if err != nil {
		s.decoded.purge()
		return nil, err
	}
	if b == nil {
		s.decoded.forget(hash)
		return nil, nil
	}
	e, err := s.decoded.decode(hash, b)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(e.Hash), []byte(hash)) != 1 {
		return nil, errors.New("token: stored entry does not match its key")
	}
	return e, nil
}

// Lookup returns the live entry for a raw token, or nil when the token is
// unknown, revoked or expired.
func (s *Store) Lookup(ctx context.Context, raw string) (*Entry, error) {
	if raw == "" {
		return nil, nil
	}
	return s.lookupHash(ctx, Hash(raw))
}

func (s *Store) lookupHash(ctx context.Context, hash string) (*Entry, error) {
	e, err := s.get(ctx, hash)
	if err != nil || e == nil {
		return nil, err
	}
	if s.expired(e) {
		return nil, nil
	}
	return e, nil
}

func (s *Store) expired(e *Entry) bool {
	return !e.ExpireTime.IsZero() && !s.cfg.Now().Before(e.ExpireTime)
}

// LookupAccessor returns the live entry for an accessor.
func (s *Store) LookupAccessor(ctx context.Context, acc string) (*Entry, error) {
	b, err := s.s.Get(ctx, accessorKey(acc))
	if err != nil || b == nil {
		return nil, err
	}
	return s.lookupHash(ctx, string(b))
}

// UseToken consumes one use of a limited-use token. It returns the uses left
// after this one (0 for unlimited tokens, -1 when this was the last use, in
// which case the token has been revoked).
func (s *Store) UseToken(ctx context.Context, e *Entry) (int, error) {
	if e.NumUses == 0 {
		return 0, nil
	}
	s.useMu.Lock()
	defer s.useMu.Unlock()
	cur, err := s.get(ctx, e.Hash)
	if err != nil {
		return 0, err
	}
	if cur == nil || cur.NumUses <= 0 {
		return 0, core.ErrPermissionDenied
	}
	cur.NumUses--
	if cur.NumUses == 0 {
		if err := s.revokeTree(ctx, cur.Hash); err != nil {
			return 0, err
		}
		return -1, nil
	}
	if err := s.put(ctx, cur, false); err != nil {
		return 0, err
	}
	return cur.NumUses, nil
}

// Renew extends a token's TTL by increment (or its original TTL/period when
// zero), capped by its maximum lifetime.
func (s *Store) Renew(ctx context.Context, e *Entry, increment time.Duration) (*Entry, error) {
	if e.ExpireTime.IsZero() {
		return e, nil // never expires (initial root token): nothing to renew
	}
	if !e.Renewable {
		return nil, core.Invalid("token is not renewable")
	}
	now := s.cfg.Now().UTC()
	ttl := increment
	if e.Period > 0 {
		ttl = e.Period
	} else if ttl <= 0 {
		ttl = e.TTL
	}
	exp := now.Add(ttl)
	if !e.MaxExpireTime.IsZero() && exp.After(e.MaxExpireTime) {
		exp = e.MaxExpireTime
	}
	if !exp.After(now) {
		return nil, core.Invalid("token has reached its maximum lifetime and cannot be renewed")
	}
	e.ExpireTime = exp
	e.LastRenewal = now
	if err := s.put(ctx, e, false); err != nil {
		return nil, err
	}
	return e, nil
}

// Revoke revokes the token and all its descendants.
func (s *Store) Revoke(ctx context.Context, hash string) error { return s.revokeTree(ctx, hash) }

// RevokeOrphan revokes only the token; its children become orphans.
func (s *Store) RevokeOrphan(ctx context.Context, hash string) error {
	children, err := s.s.List(ctx, parentPrefix+hash+"/")
	if err != nil {
		return err
	}
	for _, c := range children {
		ce, err := s.get(ctx, c)
		if err != nil {
			return err
		}
		if ce == nil {
			continue
		}
		ce.Parent, ce.Orphan = "", true
		if err := s.put(ctx, ce, false); err != nil {
			return err
		}
	}
	return s.revokeOne(ctx, hash)
}

func (s *Store) revokeTree(ctx context.Context, hash string) error {
	// Depth-first collection, children before parents.
	var order []string
	seen := map[string]bool{}
	var walk func(h string) error
	walk = func(h string) error {
		if seen[h] {
			return nil
		}
		seen[h] = true
		kids, err := s.s.List(ctx, parentPrefix+h+"/")
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(strings.TrimSuffix(k, "/")); err != nil {
				return err
			}
		}
		order = append(order, h)
		return nil
	}
	if err := walk(hash); err != nil {
		return err
	}
	if s.cfg.OnRevoke != nil {
		if err := s.cfg.OnRevoke(ctx, order); err != nil {
			return fmt.Errorf("token: revoke leases: %w", err)
		}
	}
	for _, h := range order {
		if err := s.revokeOne(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) revokeOne(ctx context.Context, hash string) error {
	e, err := s.get(ctx, hash)
	if err != nil {
		return err
	}
	// The cubbyhole goes first: should that fail, the token still exists
	// and a later revocation (or tidy) tries again.
	if c := s.cfg.Cubbyholes; c != nil && (e == nil || e.Type != "batch") {
		if err := c.Destroy(ctx, hash); err != nil {
			return fmt.Errorf("token: destroy cubbyhole: %w", err)
		}
	}
	ops := []storage.TxnOp{{Kind: storage.OpDelete, Key: idPrefix + hash}}
	if e != nil {
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: accessorKey(e.Accessor)})
		if e.Parent != "" {
			ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: parentPrefix + e.Parent + "/" + hash})
		}
	}
	if err := storage.Txn(ctx, s.s, ops); err != nil {
		return err
	}
	// Remove the (now empty) child index of this token.
	return storage.DeletePrefix(ctx, s.s, parentPrefix+hash+"/")
}

// Accessors lists the accessors of all stored tokens (expired ones included
// until tidied).
func (s *Store) Accessors(ctx context.Context) ([]string, error) {
	entries, err := s.All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Accessor)
	}
	sort.Strings(out)
	return out, nil
}

// All returns every stored token entry (for tidy and compliance checks).
func (s *Store) All(ctx context.Context) ([]*Entry, error) {
	keys, err := s.s.List(ctx, idPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*Entry, 0, len(keys))
	for _, k := range keys {
		e, err := s.get(ctx, k)
		if err != nil {
			return nil, err
		}
		if e != nil {
			out = append(out, e)
		}
	}
	return out, nil
}

// RevokeByPathPrefix revokes every token (with its children and leases)
// whose creation path starts with prefix, e.g. "auth/userpass/" when that
// auth method is disabled. It returns how many tokens were revoked.
func (s *Store) RevokeByPathPrefix(ctx context.Context, ns core.Namespace, prefix string) (int, error) {
	if prefix == "" {
		return 0, core.Invalid("token: refusing to revoke by an empty path prefix")
	}
	entries, err := s.All(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Path, prefix) || !InNamespace(e, ns) {
			continue
		}
		if cur, err := s.get(ctx, e.Hash); err != nil {
			return n, err
		} else if cur == nil {
			continue // revoked with an earlier token's tree
		}
		if err := s.revokeTree(ctx, e.Hash); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// MovePathPrefix rewrites the creation path of every token created under
// from to lie under to instead (sys/remount of an auth method), so that
// disabling the method at its new path still finds them. It returns how
// many tokens were changed.
func (s *Store) MovePathPrefix(ctx context.Context, ns core.Namespace, from, to string) (int, error) {
	entries, err := s.All(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Path, from) || !InNamespace(e, ns) {
			continue
		}
		e.Path = to + strings.TrimPrefix(e.Path, from)
		if err := s.put(ctx, e, false); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// TokenExpiry returns the current expiry of the token with this storage
// hash, whether it is renewable, and ok=false when it no longer exists. A
// token that never expires has a zero expiry. The lease manager uses it
// for the leases of tokens.
func (s *Store) TokenExpiry(ctx context.Context, hash string) (expire time.Time, renewable, ok bool, err error) {
	e, err := s.lookupHash(ctx, hash)
	if err != nil || e == nil {
		return time.Time{}, false, false, err
	}
	return e.ExpireTime, e.Renewable, true, nil
}

// Tidy revokes every expired token (with its tree and leases). It returns how
// many tokens were revoked.
func (s *Store) Tidy(ctx context.Context) (int, error) {
	entries, err := s.All(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if s.expired(e) {
			if err := s.revokeTree(ctx, e.Hash); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Principal converts an entry into the dispatcher's Principal.
func (s *Store) Principal(raw string, e *Entry) *core.Principal {
	return &core.Principal{
		ClientToken: raw, Accessor: e.Accessor, DisplayName: e.DisplayName,
		Policies: slices.Clone(e.Policies), TokenPolicies: slices.Clone(e.Policies), Metadata: e.Meta,
		EntityID: e.EntityID, TokenType: e.Type, TTL: e.TTL, IssueTime: e.CreationTime,
		ExpireTime: e.ExpireTime, Root: e.IsRoot(), Orphan: e.Orphan, NumUsesLeft: e.NumUses,
		CreationPath: e.Path, AliasID: e.AliasID, CreatorAccessor: e.CreatorAccessor, CreatorEntityID: e.CreatorEntityID,
		Namespace: s.principalNamespace(e),
	}
}

// Authenticate implements core.Authenticator.
func (s *Store) Authenticate(ctx context.Context, req *core.Request) (*core.Principal, error) {
	if req.ClientToken == "" {
		return nil, core.Errorf(core.CodePermissionDenied, "permission denied: missing client token")
	}
	e, err := s.Lookup(ctx, req.ClientToken)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, core.Errorf(core.CodePermissionDenied, "permission denied: invalid token")
	}
	if err := s.checkNamespace(e, req.NS()); err != nil {
		return nil, err
	}
	// Checked before a use is consumed: a refused request costs nothing.
	if !tokenutil.AddrAllowed(req.RemoteAddr, e.BoundCIDRs) {
		return nil, tokenutil.ErrOutsideCIDRs(req.RemoteAddr, "the token's bound CIDRs")
	}
	left := e.NumUses
	// A route that spends a wrapping token itself (unwrap) claims it;
	// any other use of it spends it here.
	if !(req.DeferTokenUse && e.IsWrapping()) {
		if left, err = s.UseToken(ctx, e); err != nil {
			return nil, err
		}
	}
	p := s.Principal(req.ClientToken, e)
	p.NumUsesLeft = left
	return p, nil
}

// checkNamespace refuses a token outside its namespace: a token acts in
// its own namespace and below it, and a token of a namespace that no
// longer exists is no token at all. It runs before a use is consumed.
func (s *Store) checkNamespace(e *Entry, in core.Namespace) error {
	ns, ok := s.NamespaceOf(e)
	if !ok {
		return core.Errorf(core.CodePermissionDenied, "permission denied: invalid token")
	}
	if !ns.Contains(in) {
		return core.Errorf(core.CodePermissionDenied, "permission denied: the token belongs to namespace %q and cannot be used in %q", nsName(ns), nsName(in))
	}
	return nil
}

var _ core.Authenticator = (*Store)(nil)
