// Package lease is the expiration manager: every dynamic secret handed out
// gets a lease that is stored in the barrier, renewed on request and revoked
// at expiry — through the Dispatcher, so each revocation attempt is audited.
// Pending expirations are reloaded after restart; failed revocations are
// retried with exponential backoff.
package lease

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/storage"
)

const (
	idPrefix    = "sys/expire/id/"
	tokenPrefix = "sys/expire/token/"
)

// Entry is one stored lease.
type Entry struct {
	LeaseID      string         `json:"lease_id"`
	Path         string         `json:"path"`       // request path that created it
	MountPath    string         `json:"mount_path"` // e.g. "database/"
	TokenHash    string         `json:"token_hash,omitempty"`
	InternalData map[string]any `json:"internal_data,omitempty"`
	Renewable    bool           `json:"renewable"`
	TTL          time.Duration  `json:"ttl"`
	MaxTTL       time.Duration  `json:"max_ttl"`
	IssueTime    time.Time      `json:"issue_time"`
	ExpireTime   time.Time      `json:"expire_time"`
	LastRenewal  time.Time      `json:"last_renewal,omitempty"`
	// Token is set on the lease of a token (a login's or one from
	// auth/token/create): TokenHash is then that token's own hash, the
	// expiry follows the token's, and revoking the lease revokes the token.
	Token bool `json:"token,omitempty"`
	// Revocation bookkeeping.
	RevokeAttempts int       `json:"revoke_attempts,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	NextAttempt    time.Time `json:"next_attempt,omitempty"`
	// Irrevocable is set after the retry budget is exhausted; the lease is
	// kept for an operator (revoke-force or tidy).
	Irrevocable bool `json:"irrevocable,omitempty"`
	// NamespaceID is the namespace of the request that created the lease
	// ("" for the root namespace). LeaseID, Path and MountPath are full
	// paths (the namespace's path in front), so the internal requests that
	// revoke or renew the lease find their namespace from the path.
	NamespaceID string `json:"namespace_id,omitempty"`
	// Revoking is the id of the first revocation request sent for this
	// lease, stored before that request is dispatched. A lease found with
	// it set had its revocation interrupted (a crash, or a node that
	// stopped being active, between the engine's revoke and the deletion
	// of the lease): the next revocation completes that one, is audited
	// with core.LabelResumesRequestID naming it, and the lease can no
	// longer be renewed.
	Revoking string `json:"revoking,omitempty"`
}

// Secret returns the core.Secret handed to the engine on revoke/renew (for
// a token's lease, to the server, which revokes the token).
func (e *Entry) Secret() *core.Secret {
	s := &core.Secret{LeaseID: e.LeaseID, TTL: e.TTL, MaxTTL: e.MaxTTL, Renewable: e.Renewable,
		IssueTime: e.IssueTime, InternalData: e.InternalData}
	if e.Token {
		s.TokenHash = e.TokenHash
	}
	return s
}

// DispatchFunc sends an internal request through the Dispatcher.
type DispatchFunc func(ctx context.Context, req *core.Request) (*core.Response, error)

// TTLFunc returns a mount's effective default and max lease TTLs.
type TTLFunc func(mountPath string) (def, max time.Duration)

// Tokens is what the manager needs from the token store for the leases of
// tokens (implemented by token.Store).
type Tokens interface {
	// TokenExpiry returns the current expiry of the token with this storage
	// hash (zero: never), whether it is renewable, and ok=false when the
	// token no longer exists.
	TokenExpiry(ctx context.Context, hash string) (expire time.Time, renewable, ok bool, err error)
}

// Config wires a Manager.
type Config struct {
	Storage  storage.Storage // the barrier
	Dispatch DispatchFunc
	TTLs     TTLFunc
	// Tokens follows the tokens behind token leases; without it, tokens get
	// no leases.
	Tokens Tokens
	Now    func() time.Time
	Logger *slog.Logger
	// MaxAttempts bounds revocation retries (default 12); backoff starts at
	// MinBackoff (default 1s) and doubles up to MaxBackoff (default 10m).
	MaxAttempts            int
	MinBackoff, MaxBackoff time.Duration
	// Tick bounds how long the expiry loop sleeps (default 1s).
	Tick time.Duration
	// Confirm returns nil while this node may revoke stored leases: on a
	// cluster, while it is the raft leader confirmed by a quorum
	// (raftstore.Store.ConfirmLeader). It is asked before each revocation
	// is dispatched, so a node that has lost leadership (and whose
	// manager is not yet stopped) revokes nothing. nil: always.
	Confirm func(ctx context.Context) error
}

// ErrNotActive is returned (wrapped) by revocations refused because this
// node may not revoke leases (Config.Confirm failed): another node is, or
// is about to become, the active one.
var ErrNotActive = core.Errorf(core.CodeUnavailable, "lease: this node is not the active node; leases are revoked by the active node")

// Manager tracks leases. It is safe for concurrent use.
type Manager struct {
	cfg Config

	mu      sync.Mutex
	pending pq                       // by next action time
	index   map[string]*item         // lease id → heap item
	busy    map[string]chan struct{} // lease id → closed when its revocation ends
	wake    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
	running bool
}

type item struct {
	id  string
	at  time.Time
	pos int
}

type pq []*item

func (q pq) Len() int           { return len(q) }
func (q pq) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q pq) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].pos = i; q[j].pos = j }
func (q *pq) Push(x any)        { it := x.(*item); it.pos = len(*q); *q = append(*q, it) }
func (q *pq) Pop() any {
	old := *q
	n := len(old)
	it := old[n-1]
	*q = old[:n-1]
	it.pos = -1
	return it
}

// New returns a stopped manager.
func New(cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 10 * time.Minute
	}
	if cfg.Tick == 0 {
		cfg.Tick = time.Second
	}
	return &Manager{cfg: cfg, index: map[string]*item{}, busy: map[string]chan struct{}{}, wake: make(chan struct{}, 1)}
}

func leaseKey(id string) string { return idPrefix + id }

func tokenKey(tokenHash, id string) string {
	sum := sha256.Sum256([]byte(id))
	return tokenPrefix + tokenHash + "/" + hex.EncodeToString(sum[:16])
}

// Start loads pending leases from storage and starts the expiry loop.
func (m *Manager) Start(ctx context.Context) error {
	ids, err := storage.ListAll(ctx, m.cfg.Storage, idPrefix)
	if err != nil {
		return fmt.Errorf("lease: load: %w", err)
	}
	m.mu.Lock()
	m.pending = nil
	m.index = map[string]*item{}
	m.mu.Unlock()
	for _, id := range ids {
		e, err := m.get(ctx, id)
		if err != nil {
			return fmt.Errorf("lease: load %s: %w", id, err)
		}
		if e == nil || e.Irrevocable {
			continue
		}
		m.schedule(e.LeaseID, nextAction(e))
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	m.mu.Lock()
	m.stop, m.done, m.running = cancel, make(chan struct{}), true
	m.mu.Unlock()
	go m.loop(loopCtx)
	m.cfg.Logger.Info("lease manager started", "leases", len(ids))
	return nil
}

// Stop halts the expiry loop (leases stay stored).
func (m *Manager) Stop() {
	m.mu.Lock()
	stop, done, running := m.stop, m.done, m.running
	m.running = false
	m.mu.Unlock()
	if running {
		stop()
		<-done
	}
}

func nextAction(e *Entry) time.Time {
	if e.Revoking != "" && e.NextAttempt.IsZero() {
		return time.Time{} // an interrupted revocation: complete it now
	}
	if !e.NextAttempt.IsZero() && e.NextAttempt.After(e.ExpireTime) {
		return e.NextAttempt
	}
	return e.ExpireTime
}

func (m *Manager) schedule(id string, at time.Time) {
	m.mu.Lock()
	if it, ok := m.index[id]; ok {
		it.at = at
		heap.Fix(&m.pending, it.pos)
	} else {
		it := &item{id: id, at: at}
		heap.Push(&m.pending, it)
		m.index[id] = it
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) unschedule(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if it, ok := m.index[id]; ok {
		heap.Remove(&m.pending, it.pos)
		delete(m.index, id)
	}
}

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTimer(m.cfg.Tick)
	defer t.Stop()
	for {
		m.RunDue(ctx)
		wait := m.cfg.Tick
		m.mu.Lock()
		if len(m.pending) > 0 {
			if d := m.pending[0].at.Sub(m.cfg.Now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		m.mu.Unlock()
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
			if !t.Stop() {
				<-t.C
			}
		case <-t.C:
		}
	}
}

// RunDue revokes every lease whose time has come (expiry or retry). It
// returns how many revocations were attempted. Tests with a fake clock call
// it directly.
func (m *Manager) RunDue(ctx context.Context) int {
	n := 0
	for {
		if ctx.Err() != nil {
			return n
		}
		m.mu.Lock()
		if len(m.pending) == 0 || m.pending[0].at.After(m.cfg.Now()) {
			m.mu.Unlock()
			return n
		}
		it := heap.Pop(&m.pending).(*item)
		delete(m.index, it.id)
		m.mu.Unlock()
		n++
		if err := m.expire(ctx, it.id); err != nil {
			m.cfg.Logger.Warn("lease revocation failed; will retry", "lease_id", it.id, "error", err)
		}
	}
}

// expire revokes a due lease, recording failures and scheduling a retry.
func (m *Manager) expire(ctx context.Context, id string) error {
	e, err := m.get(ctx, id)
	if err != nil || e == nil {
		return err
	}
	if e.Revoking == "" {
		if e.Token && e.RevokeAttempts == 0 {
			if err := m.followToken(ctx, e); err != nil {
				return err
			}
		}
		if e.ExpireTime.After(m.cfg.Now()) && (e.NextAttempt.IsZero() || e.NextAttempt.After(m.cfg.Now())) {
			m.schedule(id, nextAction(e)) // renewed meanwhile
			return nil
		}
	}
	rerr := m.revokeEntry(ctx, e, "expiration")
	if rerr == nil {
		return nil
	}
	if errors.Is(rerr, ErrNotActive) || errors.Is(rerr, errRecord) || ctx.Err() != nil {
		// Not an attempt: nothing reached the engine. The manager is
		// about to stop (the lease is resumed by the active node), or the
		// storage is failing: try again later.
		if ctx.Err() == nil {
			m.schedule(id, m.cfg.Now().Add(m.cfg.Tick))
		}
		return rerr
	}
	e.RevokeAttempts++
	e.LastError = rerr.Error()
	if e.RevokeAttempts >= m.cfg.MaxAttempts {
		e.Irrevocable = true
		m.cfg.Logger.Error("lease could not be revoked; giving up until an operator acts (sys/leases/revoke-force)", "lease_id", id, "attempts", e.RevokeAttempts, "error", rerr)
	} else {
		backoff := m.cfg.MinBackoff << (e.RevokeAttempts - 1)
		if backoff > m.cfg.MaxBackoff || backoff <= 0 {
			backoff = m.cfg.MaxBackoff
		}
		e.NextAttempt = m.cfg.Now().Add(backoff)
	}
	if err := m.put(ctx, e); err != nil {
		return errors.Join(rerr, err)
	}
	if !e.Irrevocable {
		m.schedule(id, e.NextAttempt)
	}
	return rerr
}

// errRecord marks a revocation that could not be recorded as started (the
// revoking mark could not be stored): nothing was dispatched.
var errRecord = errors.New("lease: record the revocation")

// revokeEntry revokes a stored lease: it asks the engine to revoke through
// the Dispatcher (for a token's lease, the server revokes the token), then
// deletes the lease. It is crash-safe and fails closed:
//
//  1. this node must be allowed to revoke (Config.Confirm), else
//     ErrNotActive and nothing happens;
//  2. the lease is re-read (gone: already revoked, nil) and, unless a
//     revocation was started before, marked Revoking with the id of the
//     request about to be dispatched — durably, before the dispatch;
//  3. the revoke request is dispatched (a resumed revocation carries
//     core.LabelResumesRequestID naming the first request);
//  4. the lease is deleted.
//
// A crash between 3 and 4 leaves the mark: whichever node revokes the
// lease next completes that revocation, audited as such, so the trail
// never shows two independent revocations of one lease. Revocations of one
// lease on this node are serialised.
//
// e is replaced by the stored record (with its mark), which the retry
// bookkeeping of a failed revocation updates.
//
// A token's lease is revoked with a request on its mount's path
// ("auth/userpass/"), not its login path: an entry on a login path is a
// login to every reader of the audit trail (reports, OCSF, CEF), and this is
// not one. The lease ID is in the request's data.
func (m *Manager) revokeEntry(ctx context.Context, e *Entry, actor string) error {
	release := m.acquire(e.LeaseID)
	defer release()
	if err := m.confirm(ctx); err != nil {
		return err
	}
	cur, err := m.get(ctx, e.LeaseID)
	if err != nil {
		return err
	}
	if cur == nil {
		m.unschedule(e.LeaseID)
		return nil // revoked meanwhile
	}
	*e = *cur
	req := m.revokeRequest(e, actor)
	if e.Revoking == "" {
		e.Revoking = req.ID
		if err := m.put(ctx, e); err != nil {
			e.Revoking = ""
			return fmt.Errorf("%w: %w", errRecord, err)
		}
	} else {
		req.Label(core.LabelResumesRequestID, e.Revoking)
	}
	// The mark is stored: confirm again just before the engine acts (a
	// stepped-down node fails here without a round trip).
	if err := m.confirm(ctx); err != nil {
		return err
	}
	if _, err := m.cfg.Dispatch(ctx, req); err != nil {
		return err
	}
	return m.delete(ctx, e)
}

// revokeUnrecorded revokes the secret of a lease that could not be stored
// (Register): there is no record to mark, and the secret must not outlive
// every record of it, so neither the mark nor Confirm applies. The lease
// is deleted afterwards in case its write did commit.
func (m *Manager) revokeUnrecorded(ctx context.Context, e *Entry, actor string) error {
	if _, err := m.cfg.Dispatch(ctx, m.revokeRequest(e, actor)); err != nil {
		return err
	}
	return m.delete(ctx, e)
}

func (m *Manager) revokeRequest(e *Entry, actor string) *core.Request {
	path := e.Path
	if e.Token && e.MountPath != "" {
		path = e.MountPath
	}
	return &core.Request{ID: uuid.NewString(), Operation: core.OpRevoke, Path: path, Internal: true, InternalActor: actor,
		Secret: e.Secret(), Data: map[string]any{"lease_id": e.LeaseID}, Time: m.cfg.Now()}
}

// confirm is Config.Confirm, wrapped in ErrNotActive.
func (m *Manager) confirm(ctx context.Context) error {
	if m.cfg.Confirm == nil {
		return nil
	}
	if err := m.cfg.Confirm(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrNotActive, err)
	}
	return nil
}

// acquire serialises the revocations of one lease on this manager; it
// returns the release function.
func (m *Manager) acquire(id string) func() {
	for {
		m.mu.Lock()
		ch, ok := m.busy[id]
		if !ok {
			ch = make(chan struct{})
			m.busy[id] = ch
			m.mu.Unlock()
			return func() {
				m.mu.Lock()
				delete(m.busy, id)
				m.mu.Unlock()
				close(ch)
			}
		}
		m.mu.Unlock()
		<-ch
	}
}

func (m *Manager) get(ctx context.Context, id string) (*Entry, error) {
	var e Entry
	ok, err := storage.GetJSON(ctx, m.cfg.Storage, leaseKey(id), &e)
	if err != nil || !ok {
		return nil, err
	}
	return &e, nil
}

func (m *Manager) put(ctx context.Context, e *Entry) error {
	return storage.PutJSON(ctx, m.cfg.Storage, leaseKey(e.LeaseID), e)
}

func (m *Manager) delete(ctx context.Context, e *Entry) error {
	ops := []storage.TxnOp{{Kind: storage.OpDelete, Key: leaseKey(e.LeaseID)}}
	if e.TokenHash != "" {
		ops = append(ops, storage.TxnOp{Kind: storage.OpDelete, Key: tokenKey(e.TokenHash, e.LeaseID)})
	}
	m.unschedule(e.LeaseID)
	return storage.Txn(ctx, m.cfg.Storage, ops)
}

// Register creates the lease for a response carrying a Secret. It sets the
// lease ID and caps the TTL by the mount's maximum. Called as a PostHook.
//
// The engine has already created the secret (a database user, say), so the
// lease is stored even when the client has gone away meanwhile (ctx's
// cancellation is ignored); if it still cannot be stored, the secret is
// revoked at once, so that no credential outlives every record of it.
func (m *Manager) Register(ctx context.Context, req *core.Request, resp *core.Response) error {
	if resp != nil && resp.Auth != nil && resp.Secret == nil {
		return m.registerToken(ctx, req, resp.Auth)
	}
	if resp == nil || resp.Secret == nil || resp.Secret.NoLease || req.Mount == nil || req.Internal || resp.Secret.LeaseID != "" {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	def, maxTTL := time.Duration(0), time.Duration(0)
	if m.cfg.TTLs != nil {
		def, maxTTL = m.cfg.TTLs(req.Mount.Path)
	}
	s := resp.Secret
	ttl := s.TTL
	if ttl <= 0 {
		ttl = def
	}
	if s.MaxTTL > 0 && (maxTTL == 0 || s.MaxTTL < maxTTL) {
		maxTTL = s.MaxTTL
	}
	if maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	if ttl <= 0 {
		return core.Errorf(core.CodeInternal, "lease: refusing to create a lease without a TTL for %s", req.Path)
	}
	now := m.cfg.Now().UTC()
	full := req.FullPath()
	e := &Entry{LeaseID: strings.TrimSuffix(full, "/") + "/" + uuid.NewString(), Path: full, MountPath: req.Mount.Path, NamespaceID: nsID(req.NS()),
		InternalData: s.InternalData, Renewable: s.Renewable, TTL: ttl, MaxTTL: maxTTL, IssueTime: now,
		ExpireTime: now.Add(ttl)}
	if req.Principal != nil && req.Principal.ClientToken != "" {
		e.TokenHash = tokenHash(req.Principal.ClientToken)
	}
	ops := []storage.TxnOp{}
	b, err := jsonMarshal(e)
	if err != nil {
		return err
	}
	ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: leaseKey(e.LeaseID), Value: b})
	if e.TokenHash != "" {
		ops = append(ops, storage.TxnOp{Kind: storage.OpPut, Key: tokenKey(e.TokenHash, e.LeaseID), Value: []byte(e.LeaseID)})
	}
	if err := storage.Txn(ctx, m.cfg.Storage, ops); err != nil {
		err = fmt.Errorf("lease: store: %w", err)
		if rerr := m.revokeUnrecorded(ctx, e, "lease-registration"); rerr != nil {
			m.cfg.Logger.Error("secret issued without a lease could not be revoked", "path", req.Path, "error", rerr)
			return errors.Join(err, fmt.Errorf("lease: revoke the unrecorded secret: %w", rerr))
		}
		return err
	}
	s.LeaseID, s.TTL, s.IssueTime = e.LeaseID, ttl, now
	m.schedule(e.LeaseID, e.ExpireTime)
	return nil
}

// tokenHash must match token.Hash (SHA-256 hex of the raw token).
func tokenHash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// Lookup returns a lease.
func (m *Manager) Lookup(ctx context.Context, id string) (*Entry, error) {
	e, err := m.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, core.Invalid("invalid lease")
	}
	if e.Token {
		if err := m.followToken(ctx, e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Renew extends a lease through its engine. It holds the lease's lock from
// the read to the write, as a revocation does: a renewal can neither bring
// back a lease revoked meanwhile nor erase a revocation mark.
func (m *Manager) Renew(ctx context.Context, id string, increment time.Duration) (*Entry, error) {
	e, err := m.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	release := m.acquire(e.LeaseID)
	defer release()
	cur, err := m.get(ctx, e.LeaseID)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, core.Invalid("invalid lease")
	}
	e = cur
	if e.Token {
		return nil, core.Invalid("tokens cannot be renewed through this endpoint: use auth/token/renew")
	}
	now := m.cfg.Now().UTC()
	if !e.ExpireTime.After(now) {
		return nil, core.Invalid("lease expired")
	}
	if !e.Renewable {
		return nil, core.Invalid("lease is not renewable")
	}
	if e.Revoking != "" {
		return nil, core.Invalid("lease is being revoked")
	}
	if increment <= 0 {
		increment = e.TTL
	}
	maxEnd := time.Time{}
	if e.MaxTTL > 0 {
		maxEnd = e.IssueTime.Add(e.MaxTTL)
	}
	if !maxEnd.IsZero() && now.Add(increment).After(maxEnd) {
		increment = maxEnd.Sub(now)
	}
	req := &core.Request{Operation: core.OpRenew, Path: e.Path, Internal: true, InternalActor: "lease-renew",
		Secret: e.Secret(), Data: map[string]any{"lease_id": e.LeaseID, "increment": int64(increment / time.Second)}, Time: now}
	resp, err := m.cfg.Dispatch(ctx, req)
	if err != nil {
		return nil, err
	}
	granted := increment
	if resp != nil && resp.Data != nil {
		if v, ok := resp.Data["ttl"].(int64); ok && v > 0 && time.Duration(v)*time.Second < granted {
			granted = time.Duration(v) * time.Second
		}
	}
	if granted <= 0 {
		return nil, core.Invalid("lease has reached its maximum TTL and cannot be renewed")
	}
	e.ExpireTime = now.Add(granted)
	e.LastRenewal = now
	e.TTL = granted
	if err := m.put(ctx, e); err != nil {
		return nil, err
	}
	m.schedule(e.LeaseID, e.ExpireTime)
	return e, nil
}

// Revoke revokes one lease now.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	e, err := m.get(ctx, id)
	if err != nil {
		return err
	}
	if e == nil {
		return nil // Vault treats revoking a missing lease as success
	}
	return m.revokeEntry(ctx, e, "revoke")
}

// RevokePrefix revokes every lease whose ID starts with prefix. With force,
// leases whose revocation fails are deleted anyway (the engine's secrets may
// remain: revoke-force is an operator's last resort).
func (m *Manager) RevokePrefix(ctx context.Context, prefix string, force bool) error {
	ids, err := m.List(ctx, prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		e, err := m.get(ctx, id)
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		if rerr := m.revokeEntry(ctx, e, "revoke-prefix"); rerr != nil {
			if errors.Is(rerr, ErrNotActive) {
				return rerr // not this node's to revoke, nor to delete
			}
			if force {
				m.cfg.Logger.Warn("revoke-force: deleting lease whose revocation failed", "lease_id", id, "error", rerr)
				if err := m.delete(ctx, e); err != nil {
					return err
				}
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %w", id, rerr))
		}
	}
	if len(errs) > 0 {
		return core.Errorf(core.CodeInternal, "failed to revoke %d lease(s): %v", len(errs), errors.Join(errs...))
	}
	return nil
}

// List returns lease IDs under prefix, sorted.
func (m *Manager) List(ctx context.Context, prefix string) ([]string, error) {
	all, err := storage.ListAll(ctx, m.cfg.Storage, idPrefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range all {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// RevokeByTokens revokes the leases issued to the given tokens (called by
// the token store before tokens are revoked). A token's own lease is only
// deleted: the token store is revoking that token already.
func (m *Manager) RevokeByTokens(ctx context.Context, hashes []string) error {
	for _, h := range hashes {
		keys, err := m.cfg.Storage.List(ctx, tokenPrefix+h+"/")
		if err != nil {
			return err
		}
		for _, k := range keys {
			b, err := m.cfg.Storage.Get(ctx, tokenPrefix+h+"/"+k)
			if err != nil {
				return err
			}
			if b == nil {
				continue
			}
			e, err := m.get(ctx, string(b))
			if err != nil {
				return err
			}
			if e == nil {
				continue
			}
			if e.Token && e.TokenHash == h {
				if err := m.delete(ctx, e); err != nil {
					return err
				}
				continue
			}
			if err := m.revokeEntry(ctx, e, "revoke"); err != nil {
				return fmt.Errorf("revoke lease %s: %w", string(b), err)
			}
		}
	}
	return nil
}

// Tidy removes index entries that point at missing leases and clears the
// irrevocable flag so those leases are retried. It returns what it fixed.
func (m *Manager) Tidy(ctx context.Context) (int, error) {
	fixed := 0
	toks, err := storage.ListAll(ctx, m.cfg.Storage, tokenPrefix)
	if err != nil {
		return 0, err
	}
	for _, k := range toks {
		b, err := m.cfg.Storage.Get(ctx, tokenPrefix+k)
		if err != nil {
			return fixed, err
		}
		if e, err := m.get(ctx, string(b)); err != nil {
			return fixed, err
		} else if e == nil {
			if err := m.cfg.Storage.Delete(ctx, tokenPrefix+k); err != nil {
				return fixed, err
			}
			fixed++
		}
	}
	ids, err := m.List(ctx, "")
	if err != nil {
		return fixed, err
	}
	for _, id := range ids {
		e, err := m.get(ctx, id)
		if err != nil || e == nil {
			continue
		}
		if e.Irrevocable {
			e.Irrevocable, e.RevokeAttempts, e.NextAttempt = false, 0, time.Time{}
			if err := m.put(ctx, e); err != nil {
				return fixed, err
			}
			m.schedule(id, m.cfg.Now())
			fixed++
		}
	}
	return fixed, nil
}

// Count returns how many leases are scheduled.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pending)
}
