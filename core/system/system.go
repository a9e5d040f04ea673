// Package system implements the sys/ mount: seal lifecycle, health, mounts,
// auth methods, key rotation and raft snapshots. Other subsystems (policies,
// audit, leases) contribute their own sys/ routes as Parts.
package system

import (
	"context"
	"io"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
	"github.com/vigilsec/vigil/core/router"
	"github.com/vigilsec/vigil/core/storage"
)

// SealStatus is Vault's sys/seal-status body.
type SealStatus struct {
	Type         string `json:"type"`
	Initialized  bool   `json:"initialized"`
	Sealed       bool   `json:"sealed"`
	T            int    `json:"t"`
	N            int    `json:"n"`
	Progress     int    `json:"progress"`
	Nonce        string `json:"nonce"`
	Version      string `json:"version"`
	BuildDate    string `json:"build_date"`
	Migration    bool   `json:"migration"`
	ClusterName  string `json:"cluster_name,omitempty"`
	ClusterID    string `json:"cluster_id,omitempty"`
	RecoverySeal bool   `json:"recovery_seal"`
	// RecoverySealType is "shamir" for an auto seal's recovery keys.
	RecoverySealType string `json:"recovery_seal_type,omitempty"`
	StorageType      string `json:"storage_type"`
	// Warnings carry the seal's last error (an unreachable KMS, say).
	Warnings []string `json:"warnings,omitempty"`
}

// InitRequest is the sys/init body.
type InitRequest struct {
	SecretShares      int
	SecretThreshold   int
	RecoveryShares    int
	RecoveryThreshold int
	// KeyHolders labels the held shares in order (Vigil's key_holders).
	KeyHolders []string
}

// InitResult is what sys/init returns.
type InitResult struct {
	Keys         [][]byte
	RecoveryKeys [][]byte
	RootToken    string
	// KeyHolders labels the held shares in order, when given.
	KeyHolders []string
}

// Core is the seal lifecycle and cluster facts the sys/ mount needs.
type Core interface {
	Initialized(ctx context.Context) (bool, error)
	Init(ctx context.Context, req InitRequest) (*InitResult, error)
	// Unseal submits one share; migrate submits it to a seal migration.
	Unseal(ctx context.Context, key string, reset, migrate bool) (*SealStatus, error)
	Seal(ctx context.Context) error
	SealStatus(ctx context.Context) (*SealStatus, error)
	// Health returns extra health facts (audit status) to merge into sys/health.
	Health(ctx context.Context) core.HealthInfo
	Leader(ctx context.Context) LeaderInfo
	// Rotate adds a barrier key term; KeyStatus describes the active one.
	Rotate(ctx context.Context) error
	KeyStatus(ctx context.Context) (KeyStatus, error)
	// RevokePrefix revokes every lease under a path prefix (used on unmount).
	RevokePrefix(ctx context.Context, prefix string) error
	// MovePrefix re-keys what is kept under a mount path (leases, token
	// paths) when sys/remount moves the mount.
	MovePrefix(ctx context.Context, from, to string) error
}

// KeyStatus describes the active barrier key (sys/key-status).
type KeyStatus struct {
	Term        uint32
	InstallTime time.Time
	// Encryptions done with the key by this node since it unsealed.
	Encryptions uint64
}

// LeaderInfo is the sys/leader body.
type LeaderInfo struct {
	HAEnabled            bool   `json:"ha_enabled"`
	IsSelf               bool   `json:"is_self"`
	ActiveTime           string `json:"active_time,omitempty"`
	LeaderAddress        string `json:"leader_address"`
	LeaderClusterAddress string `json:"leader_cluster_address"`
	PerformanceStandby   bool   `json:"performance_standby"`
	RaftCommittedIndex   uint64 `json:"raft_committed_index"`
	RaftAppliedIndex     uint64 `json:"raft_applied_index"`
}

// Snapshotter is the raft snapshot API.
type Snapshotter interface {
	SaveSnapshot(ctx context.Context, w io.Writer) error
	RestoreSnapshot(ctx context.Context, r io.Reader, force bool) error
}

// MountAccess decides which mounts sys/internal/ui/mounts shows a caller:
// those it has some capability on (see authz.Authz.MountAccess).
type MountAccess interface {
	MountAccess(ctx context.Context, p *core.Principal, mountPath string) (bool, error)
}

// Deps wires the sys/ mount.
type Deps struct {
	Core Core
	// Access filters sys/internal/ui/mounts; nil shows mounts to root only.
	Access    MountAccess
	Router    *router.Router
	Snapshots Snapshotter
	// Records is the encrypted storage where the snapshot records the
	// compliance checks read are kept (core.SnapshotSaveKey,
	// core.SnapshotTestKey). nil: none are kept.
	Records storage.Storage
	// SnapshotTest takes a snapshot, restores it into a scratch store and
	// checks it (sys/storage/raft/snapshot-test). nil: raft storage is not
	// in use.
	SnapshotTest func(ctx context.Context) core.SnapshotTestRecord
	// Cluster is the raft cluster API (join, peers, autopilot). nil: the
	// routes answer that raft storage is not in use.
	Cluster Cluster
	Version string
	Now     func() time.Time
	// Parts are other subsystems' sys/ routes.
	Parts []framework.Part
	// Namespace resolves a full path ("hospital-a/secret/x") to the
	// deepest namespace it is in and the path relative to it. nil: there
	// are no namespaces but the root.
	Namespace func(full string) (core.Namespace, string)
}

// Backend is the sys/ mount engine.
type Backend struct {
	d Deps
	// storage is the sys/ view of the barrier (version history, rotation,
	// CORS), set by Setup.
	storage storage.Storage
	cors    corsCache
}

// New returns the sys/ backend.
func New(d Deps) *Backend {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Backend{d: d}
}

// AddPart adds a subsystem's routes (before the backend is mounted).
func (b *Backend) AddPart(p framework.Part) { b.d.Parts = append(b.d.Parts, p) }

var (
	_ framework.Engine    = (*Backend)(nil)
	_ framework.Scheduler = (*Backend)(nil)
)

// ScheduledJobs implements framework.Scheduler for the sys/ mount: the
// jobs of every Part that is a framework.Scheduler (automated snapshots,
// say). Their Scan and due paths are relative to sys/, like their routes,
// and are usually Internal routes of the same Part.
func (b *Backend) ScheduledJobs() []framework.Job {
	var out []framework.Job
	for _, p := range b.d.Parts {
		if s, ok := p.(framework.Scheduler); ok {
			out = append(out, s.ScheduledJobs()...)
		}
	}
	return out
}

func (b *Backend) Setup(_ context.Context, env framework.Env) error {
	b.storage = env.Storage
	return nil
}
func (b *Backend) Close(context.Context) error { return nil }

// Routes implements framework.Engine.
func (b *Backend) Routes() []framework.Route {
	var rs []framework.Route
	rs = append(rs, b.sealRoutes()...)
	rs = append(rs, b.mountRoutes()...)
	rs = append(rs, b.authRoutes()...)
	rs = append(rs, b.keyRoutes()...)
	rs = append(rs, b.snapshotRoutes()...)
	rs = append(rs, b.clusterRoutes()...) // raft_cluster.go
	rs = append(rs, b.toolRoutes()...)
	rs = append(rs, b.hostInfoRoute(), b.versionHistoryRoute(), b.rotateConfigRoute(), b.corsRoute(), b.remountRoute())
	for _, p := range b.d.Parts {
		rs = append(rs, p.Routes()...)
	}
	return rs
}

func one(op core.Operation, h framework.HandlerFunc) map[core.Operation]framework.HandlerFunc {
	return map[core.Operation]framework.HandlerFunc{op: h}
}

func secs(d time.Duration) int64 { return int64(d / time.Second) }
