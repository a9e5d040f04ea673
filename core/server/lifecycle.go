package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/seal"
	"github.com/vigilsec/vigil/core/system"
	"github.com/vigilsec/vigil/core/token"
)

var _ system.Core = (*Server)(nil)

// Initialized reports whether the seal has been initialised.
func (s *Server) Initialized(ctx context.Context) (bool, error) { return s.barrier.Initialized(ctx) }

// Init initialises the seal, creates the initial root token and leaves the
// server sealed, as Vault does.
func (s *Server) Init(ctx context.Context, shares, threshold int) (*system.InitResult, error) {
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
	res, err := s.seal.Init(ctx, seal.InitParams{SecretShares: shares, SecretThreshold: threshold})
	if err != nil {
		return nil, err
	}
	if err := s.seal.UnsealWithKey(ctx, res.UnsealKey); err != nil {
		return nil, fmt.Errorf("init: unseal to create the root token: %w", err)
	}
	defer s.seal.Seal()
	// The cluster CA and this node's certificate are created at init; the
	// transport uses them from the next unseal.
	if err := s.installClusterTLS(ctx); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	defer s.dropClusterTLS()
	raw, _, err := s.tokens.Create(ctx, token.CreateParams{Policies: []string{"root"}, DisplayName: "root", NoExpiry: true, Path: "auth/token/root", Orphan: true})
	if err != nil {
		return nil, fmt.Errorf("init: create root token: %w", err)
	}
	return &system.InitResult{Keys: res.Keys, RootToken: raw}, nil
}

// Unseal submits one key share; when the threshold is reached the barrier
// opens and every subsystem starts.
func (s *Server) Unseal(ctx context.Context, key string, reset bool) (*system.SealStatus, error) {
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
	if _, err := s.seal.Unseal(ctx, key); err != nil {
		return nil, err
	}
	if !s.barrier.Sealed() {
		if err := s.unsealedLocked(ctx); err != nil {
			return nil, err
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
	s.unsealed = true
	s.unsealedFlag.Store(true)
	s.log.Info("unsealed")
	s.startHA(ctx)
	s.bgDone.Add(1)
	go func() {
		defer s.bgDone.Done()
		pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.publishNode(pctx)
	}()
	return nil
}

// Seal seals the server: subsystems stop, engines close, keys are dropped.
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
	s.stopHA(ctx) // the active node steps back to standby first
	s.unsealedFlag.Store(false)
	for i := len(s.opts.Subsystems) - 1; i >= 0; i-- {
		if sub := s.opts.Subsystems[i]; everyNode(sub) {
			sub.Sealing(ctx)
		}
	}
	s.router.Unload(ctx)
	s.ident.Clear()
	s.dropClusterTLS()
	s.seal.Seal()
	s.unsealed = false
	s.activeSince = time.Time{}
	s.log.Info("sealed")
}

// background runs periodic work while unsealed: token tidy and engine
// periodic functions.
func (s *Server) background(ctx context.Context) {
	defer s.jobsDone.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !s.active.Load() {
				continue
			}
			if n, err := s.tokens.Tidy(ctx); err != nil {
				s.log.Warn("token tidy", "error", err)
			} else if n > 0 {
				s.log.Info("revoked expired tokens", "count", n)
			}
			s.router.Periodic(ctx)
		}
	}
}

// SealStatus reports Vault's sys/seal-status.
func (s *Server) SealStatus(ctx context.Context) (*system.SealStatus, error) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
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
	return &system.SealStatus{
		Type: "shamir", Initialized: st.Initialized, Sealed: st.Sealed, T: st.T, N: st.N,
		Progress: st.Progress, Nonce: st.Nonce, Version: Version, StorageType: "raft",
		ClusterName: s.clusterName(), BuildDate: "",
	}, nil
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
	s.stateMu.Lock()
	if !s.activeSince.IsZero() {
		li.ActiveTime = s.activeSince.UTC().Format(time.RFC3339Nano)
	}
	s.stateMu.Unlock()
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
func (s *Server) KeyStatus(ctx context.Context) (uint32, time.Time, error) {
	if s.barrier.Sealed() {
		return 0, time.Time{}, core.ErrSealed
	}
	term, at := s.barrier.ActiveTerm()
	return term, at, nil
}

// RevokePrefix revokes all leases under prefix through every registered revoker.
func (s *Server) RevokePrefix(ctx context.Context, prefix string) error {
	for _, r := range s.revokers {
		if err := r(ctx, prefix); err != nil {
			return err
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
