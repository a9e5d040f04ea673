package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/system"
	"github.com/vigilsec/vigil/core/token"
)

var _ system.Core = (*Server)(nil)

// Initialized reports whether the seal has been initialised.
func (s *Server) Initialized(ctx context.Context) (bool, error) { return s.barrier.Initialized(ctx) }

// Init initialises the seal, stores the commitments to the held shares
// and creates the initial root token. With the Shamir seal it leaves the
// server sealed, as Vault does; with an auto seal the server unseals
// itself, as Vault does.
func (s *Server) Init(ctx context.Context, req system.InitRequest) (*system.InitResult, error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.joinPending() != nil {
		return nil, core.Invalid("this node is joining a cluster: it cannot be initialised")
	}
	// A node without raft state becomes the single voter of a new
	// cluster here (others join it).
	if err := s.raft.Bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	res, err := s.seal.Init(ctx, seal.InitParams{SecretShares: req.SecretShares, SecretThreshold: req.SecretThreshold,
		RecoveryShares: req.RecoveryShares, RecoveryThreshold: req.RecoveryThreshold, Holders: req.KeyHolders})
	if err != nil {
		return nil, err
	}
	if s.seal.Auto() {
		err = s.seal.AutoUnseal(ctx)
	} else {
		err = s.seal.UnsealWithKey(ctx, res.UnsealKey)
		clear(res.UnsealKey)
	}
	if err != nil {
		return nil, fmt.Errorf("init: unseal to create the root token: %w", err)
	}
	keep := false // an auto-sealed server stays unsealed after init
	defer func() {
		if !keep {
			s.seal.Seal()
		}
	}()
	if err := custody.Put(ctx, s.barrier, res.Shares); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	// The cluster CA and this node's certificate are created at init; the
	// transport uses them from the next unseal.
	if err := s.installClusterTLS(ctx); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	defer func() {
		if !keep {
			s.dropClusterTLS()
		}
	}()
	raw, _, err := s.tokens.Create(ctx, token.CreateParams{Policies: []string{"root"}, DisplayName: "root", NoExpiry: true, Path: "auth/token/root", Orphan: true})
	if err != nil {
		return nil, fmt.Errorf("init: create root token: %w", err)
	}
	if s.seal.Auto() {
		if err := s.unsealedLocked(ctx); err != nil {
			return nil, err
		}
		keep = true
	}
	return &system.InitResult{Keys: res.Keys, RecoveryKeys: res.RecoveryKeys, RootToken: raw, KeyHolders: res.Config.Holders}, nil
}

// Unseal submits one key share (to a seal migration with migrate); when
// the threshold is reached the barrier opens and every subsystem starts.
func (s *Server) Unseal(ctx context.Context, key string, reset, migrate bool) (*system.SealStatus, error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if reset {
		s.seal.Reset()
		if pj := s.joinPending(); pj != nil {
			pj.seal.Reset()
		}
		return s.sealStatusLocked(ctx)
	}
	if pj := s.joinPending(); pj != nil && s.barrier.Sealed() {
		return s.joinUnsealLocked(ctx, pj, key)
	}
	if init, err := s.barrier.Initialized(ctx); err != nil {
		return nil, err
	} else if !init {
		return nil, core.Invalid("Vault is not initialized")
	}
	if !s.barrier.Sealed() {
		return s.sealStatusLocked(ctx)
	}
	migratedFrom := ""
	if migrate {
		before, _ := s.seal.Config(ctx)
		if _, err := s.seal.Migrate(ctx, key); err != nil {
			return nil, err
		}
		if !s.barrier.Sealed() {
			migratedFrom = before.Type
			s.log.Warn("seal migrated", "from", before.Type, "to", s.seal.ConfiguredType())
		}
	} else if _, err := s.seal.Unseal(ctx, key); err != nil {
		return nil, err
	}
	if !s.barrier.Sealed() {
		if err := s.unsealedLocked(ctx); err != nil {
			return nil, err
		}
		if migratedFrom != "" {
			s.recordMigration(ctx, migratedFrom, s.seal.ConfiguredType())
		}
	}
	return s.sealStatusLocked(ctx)
}

// UnsealWithKey unseals with the combined unseal key (dev mode).
func (s *Server) UnsealWithKey(ctx context.Context, key []byte) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if !s.barrier.Sealed() {
		return nil
	}
	if err := s.seal.UnsealWithKey(ctx, key); err != nil {
		return err
	}
	return s.unsealedLocked(ctx)
}

// unsealedLocked runs after the barrier opens: the node gets its cluster
// identity, the subsystems that run on every node start, and the node
// follows leadership (ha.go): it becomes the active node when it leads —
// before unsealedLocked returns if it leads already — and is a standby
// otherwise. On failure the server seals again.
func (s *Server) unsealedLocked(ctx context.Context) error {
	if err := s.installClusterTLS(ctx); err != nil {
		s.log.Error("cannot install the cluster transport identity; sealing", "error", err)
		s.seal.Seal()
		return core.Errorf(core.CodeInternal, "unseal: %v", err)
	}
	// A standby reads its own copy of the replicated state (the audit
	// subsystem reads its checkpoints and keys from it): bring it up to
	// the leader's first. Without a leader (the cluster's other nodes are
	// still sealed) it starts from what it has.
	if !s.raft.IsLeader() {
		rctx, cancel := context.WithTimeout(ctx, StandbyReadIndexWait)
		if err := s.raft.ReadIndex(rctx); err != nil {
			s.log.Warn("starting without the leader's read index; this node's state may trail the cluster's until it catches up", "error", err)
		}
		cancel()
	}
	// The namespace tree resolves every request (a standby's too, before
	// it forwards one).
	if err := s.nss.Load(ctx); err != nil {
		s.dropClusterTLS()
		s.seal.Seal()
		return core.Errorf(core.CodeInternal, "unseal: namespaces failed to load: %v", err)
	}
	var started []Subsystem
	for _, sub := range s.opts.Subsystems {
		if !everyNode(sub) {
			continue
		}
		if err := sub.Unsealed(ctx); err != nil {
			s.log.Error("subsystem failed to start; sealing", "subsystem", sub.Name(), "error", err)
			for i := len(started) - 1; i >= 0; i-- {
				started[i].Sealing(ctx)
			}
			s.dropClusterTLS()
			s.seal.Seal()
			return core.Errorf(core.CodeInternal, "unseal: %s failed to start: %v", sub.Name(), err)
		}
		started = append(started, sub)
	}
	s.sys.InvalidateCORS()
	s.autoUnsealed = true
	s.unsealed = true
	s.log.Info("unsealed")
	s.startHA(ctx)
	// Reported unsealed (and serving) from here on: as the active node
	// when it leads (startHA made it active), else as a standby.
	s.unsealedFlag.Store(true)
	s.bgDone.Add(1)
	go func() {
		defer s.bgDone.Done()
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.publishNode(pctx)
	}()
	return nil
}

// Seal is the emergency stop: the keys are zeroed and the server is sealed
// first — from then on every request is refused as sealed — and only then
// are background work, subsystems and engines torn down, each with a
// bounded wait (Options.TeardownTimeout), so a hung audit disk or engine
// never keeps the server open or makes Seal hang.
func (s *Server) Seal(ctx context.Context) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.barrier.Sealed() {
		return nil
	}
	s.sealingLocked(ctx)
	return nil
}

func (s *Server) sealingLocked(ctx context.Context) {
	s.seal.Seal()
	s.dropClusterTLS()
	s.unsealed = false
	s.unsealedFlag.Store(false)
	s.activeSince.Store(nil)
	s.log.Info("sealed")
	s.teardownLocked(ctx)
}

// teardownLocked stops following leadership, then the scheduled jobs, the
// subsystems (in reverse order; the active-only ones if this node was the
// active node) and the engines, each step bounded by
// Options.TeardownTimeout.
func (s *Server) teardownLocked(ctx context.Context) {
	if s.haStop != nil {
		s.haStop()
		s.haStop = nil
	}
	wasActive := s.active.Swap(false)
	if stop := s.stopBG; stop != nil {
		s.stopBG = nil
		stop()
		s.bounded("scheduled jobs", s.jobsDone.Wait)
	}
	for i := len(s.opts.Subsystems) - 1; i >= 0; i-- {
		sub := s.opts.Subsystems[i]
		if !wasActive && !everyNode(sub) {
			continue // never started on this standby
		}
		s.bounded("subsystem "+sub.Name(), func() { sub.Sealing(ctx) })
	}
	if wasActive {
		s.bounded("engines", func() { s.router.Unload(ctx) })
	}
	s.ident.Clear()
	s.nss.Clear()
}

// bounded runs fn and waits for it at most Options.TeardownTimeout; past
// that it logs and returns, leaving fn to finish on its own.
func (s *Server) bounded(what string, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	t := time.NewTimer(s.opts.TeardownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Error("teardown did not finish in time; going on without waiting", "step", what, "timeout", s.opts.TeardownTimeout)
	}
}

// background runs the scheduled jobs while unsealed; RunScheduledJobs
// does nothing on a node that is not the active one.
func (s *Server) background(ctx context.Context) {
	defer s.jobsDone.Done()
	t := time.NewTicker(s.opts.JobInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.RunScheduledJobs(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("scheduled jobs", "error", err)
			}
		}
	}
}

// SealStatus reports Vault's sys/seal-status. It does not wait for a seal
// or unseal in progress (the seal keeps its own lock), so it answers while
// a teardown waits on a hung device.
func (s *Server) SealStatus(ctx context.Context) (*system.SealStatus, error) {
	return s.sealStatusLocked(ctx)
}

func (s *Server) sealStatusLocked(ctx context.Context) (*system.SealStatus, error) {
	if pj := s.joinPending(); pj != nil && s.barrier.Sealed() {
		st, err := pj.seal.Status(ctx)
		if err != nil {
			return nil, err
		}
		return s.joinStatus(st), nil
	}
	st, err := s.seal.Status(ctx)
	if err != nil {
		return nil, err
	}
	// Sealed until the server serves: between the barrier opening and the
	// subsystems having started (audit devices open, policies loaded) the
	// status still says sealed, so a client that waits for "unsealed" is
	// not refused by a server still starting. The status is read without
	// stateMu, so it answers while a seal or unseal is in progress.
	out := &system.SealStatus{
		Type: st.Type, Initialized: st.Initialized, Sealed: st.Sealed || !s.unsealedFlag.Load(), T: st.T, N: st.N,
		Progress: st.Progress, Nonce: st.Nonce, Version: Version, StorageType: "raft",
		ClusterName: s.clusterName(), BuildDate: "", Migration: st.Migration, RecoverySeal: st.RecoverySeal,
	}
	if st.RecoverySeal {
		out.RecoverySealType = seal.Type
	}
	if st.Error != "" && st.Sealed {
		out.Warnings = []string{st.Error}
	}
	return out, nil
}

func (s *Server) clusterName() string {
	if s.cfg.ClusterName != "" {
		return s.cfg.ClusterName
	}
	return "vigil-cluster"
}

// Health gathers extra sys/health facts.
func (s *Server) Health(ctx context.Context) core.HealthInfo {
	hi := core.HealthInfo{Standby: !s.active.Load(), ClusterName: s.clusterName()}
	for _, f := range s.health {
		f(ctx, &hi)
	}
	return hi
}

// Leader reports sys/leader.
func (s *Server) Leader(ctx context.Context) system.LeaderInfo {
	_, addr := s.raft.Leader()
	li := system.LeaderInfo{HAEnabled: true, IsSelf: s.active.Load(), LeaderAddress: s.leaderAPIAddr(ctx),
		LeaderClusterAddress: addr, RaftAppliedIndex: s.raft.AppliedIndex(), RaftCommittedIndex: s.raft.AppliedIndex()}
	if t := s.activeSince.Load(); t != nil {
		li.ActiveTime = t.UTC().Format(time.RFC3339Nano)
	}
	return li
}

func (s *Server) apiAddr() string {
	if s.cfg.APIAddr != "" {
		return s.cfg.APIAddr
	}
	if a := s.Addr(); a != "" {
		return "http://" + a
	}
	return ""
}

// Rotate adds a barrier key term.
func (s *Server) Rotate(ctx context.Context) error {
	_, err := s.barrier.Rotate(ctx)
	return err
}

// KeyStatus reports the active barrier key term.
func (s *Server) KeyStatus(ctx context.Context) (system.KeyStatus, error) {
	ks, err := s.barrier.KeyStatus()
	if err != nil {
		return system.KeyStatus{}, err
	}
	return system.KeyStatus{Term: ks.Term, InstallTime: ks.InstallTime, Encryptions: ks.Encryptions}, nil
}

// RevokePrefix revokes all leases under prefix through every registered
// revoker (used when a mount is disabled). Under "auth/" it then revokes
// every token created through that path which had no lease (batch tokens),
// so that disabling an auth method leaves none of its tokens valid.
func (s *Server) RevokePrefix(ctx context.Context, prefix string) error {
	for _, r := range s.revokers {
		if err := r(ctx, prefix); err != nil {
			return err
		}
	}
	// A token's creation path is relative to its namespace, as the
	// mount's path is to the mount's namespace.
	ns, rel := s.namespaceOfPath(prefix)
	if strings.HasPrefix(rel, "auth/") && rel != "auth/" {
		n, err := s.tokens.RevokeByPathPrefix(ctx, ns, rel)
		if err != nil {
			return fmt.Errorf("revoke tokens under %s: %w", prefix, err)
		}
		if n > 0 {
			s.log.Info("revoked the tokens of a disabled auth method", "path", prefix, "tokens", n)
		}
	}
	return nil
}

// MovePrefix carries what is keyed by a mount's path from one prefix to
// another when sys/remount moves the mount: leases (through every
// registered mover) and the creation paths of the tokens of an auth method.
func (s *Server) MovePrefix(ctx context.Context, from, to string) error {
	for _, m := range s.movers {
		if err := m(ctx, from, to); err != nil {
			return err
		}
	}
	ns, relFrom := s.namespaceOfPath(from)
	if relTo, ok := ns.Relative(to); ok && strings.HasPrefix(relFrom, "auth/") {
		if _, err := s.tokens.MovePathPrefix(ctx, ns, relFrom, relTo); err != nil {
			return fmt.Errorf("move token paths from %s: %w", from, err)
		}
	}
	return nil
}

type snapshotter struct{ s *Server }

func (sn snapshotter) SaveSnapshot(ctx context.Context, w io.Writer) error {
	return sn.s.raft.SaveSnapshot(ctx, w)
}

// RestoreSnapshot restores a snapshot and reloads everything that caches
// storage state (keyring, mounts, subsystems).
func (sn snapshotter) RestoreSnapshot(ctx context.Context, r io.Reader, force bool) error {
	s := sn.s
	if err := s.raft.RestoreSnapshotForce(ctx, r, force); err != nil {
		return err
	}
	s.seal.Reload()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if err := s.barrier.Reload(ctx); err != nil {
		if errors.Is(err, core.ErrSealed) {
			return nil
		}
		// The snapshot came from a cluster with different keys: seal so an
		// operator unseals with that cluster's keys.
		s.log.Error("restored snapshot does not open with the current keys; sealing", "error", err)
		s.sealingLocked(ctx)
		return nil
	}
	// Everything that caches storage state starts again from the restored
	// state: the active-only part, then the every-node subsystems.
	s.deactivateLocked(ctx)
	for i := len(s.opts.Subsystems) - 1; i >= 0; i-- {
		if sub := s.opts.Subsystems[i]; everyNode(sub) {
			sub.Sealing(ctx)
		}
	}
	for _, sub := range s.opts.Subsystems {
		if !everyNode(sub) {
			continue
		}
		if err := sub.Unsealed(ctx); err != nil {
			s.log.Error("subsystem failed to restart after restore; sealing", "subsystem", sub.Name(), "error", err)
			s.sealingLocked(ctx)
			return core.Errorf(core.CodeInternal, "restore: %s failed to restart: %v", sub.Name(), err)
		}
	}
	if s.raft.IsLeader() {
		if err := s.activateLocked(ctx); err != nil {
			s.log.Error("could not become the active node again after the restore; sealing", "error", err)
			s.sealingLocked(ctx)
			return core.Errorf(core.CodeInternal, "restore: %v", err)
		}
	}
	return nil
}
