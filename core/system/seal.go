package system

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/framework"
)

func (b *Backend) sealRoutes() []framework.Route {
	return []framework.Route{
		{Pattern: `init`, Unaudited: true, SealedOK: true, Unauthenticated: true,
			Fields: map[string]*framework.FieldSchema{
				"secret_shares": {Type: framework.TypeInt}, "secret_threshold": {Type: framework.TypeInt},
				"pgp_keys": {Type: framework.TypeCommaStringSlice}, "root_token_pgp_key": {Type: framework.TypeString},
				"stored_shares": {Type: framework.TypeInt}, "recovery_shares": {Type: framework.TypeInt},
				"recovery_threshold": {Type: framework.TypeInt}, "recovery_pgp_keys": {Type: framework.TypeCommaStringSlice},
				"key_holders": {Type: framework.TypeCommaStringSlice},
			},
			Operations: map[core.Operation]framework.HandlerFunc{core.OpRead: b.initStatus, core.OpUpdate: b.initialize}},
		{Pattern: `seal-status`, Unaudited: true, SealedOK: true, Unauthenticated: true,
			Operations: one(core.OpRead, b.sealStatus)},
		{Pattern: `unseal`, Unaudited: true, SealedOK: true, Unauthenticated: true,
			Fields:     map[string]*framework.FieldSchema{"key": {Type: framework.TypeString}, "reset": {Type: framework.TypeBool}, "migrate": {Type: framework.TypeBool}},
			Operations: one(core.OpUpdate, b.unseal)},
		// Fail-safe: sealing only takes access away, so it runs even when
		// its request entry cannot be recorded (a hung or full audit disk).
		{Pattern: `seal`, Sudo: true, FailSafe: true, Operations: one(core.OpUpdate, b.seal)},
		{Pattern: `health`, Unaudited: true, SealedOK: true, Unauthenticated: true,
			Fields: map[string]*framework.FieldSchema{
				"standbyok": {Type: framework.TypeBool}, "perfstandbyok": {Type: framework.TypeBool},
				"activecode": {Type: framework.TypeInt}, "standbycode": {Type: framework.TypeInt},
				"drsecondarycode": {Type: framework.TypeInt}, "performancestandbycode": {Type: framework.TypeInt},
				"sealedcode": {Type: framework.TypeInt}, "uninitcode": {Type: framework.TypeInt},
				"removedcode": {Type: framework.TypeInt}, "haunhealthycode": {Type: framework.TypeInt},
			},
			Operations: one(core.OpRead, b.health)},
		{Pattern: `leader`, Unaudited: true, SealedOK: true, Unauthenticated: true, Operations: one(core.OpRead, b.leader)},
	}
}

func (b *Backend) initStatus(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	ok, err := b.d.Core.Initialized(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Bare: true, Data: map[string]any{"initialized": ok}}, nil
}

func (b *Backend) initialize(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if len(d.Strings("pgp_keys")) > 0 || d.String("root_token_pgp_key") != "" || len(d.Strings("recovery_pgp_keys")) > 0 {
		return nil, core.Invalid("PGP-encrypted key shares are not supported")
	}
	res, err := b.d.Core.Init(ctx, InitRequest{SecretShares: d.Int("secret_shares"), SecretThreshold: d.Int("secret_threshold"),
		RecoveryShares: d.Int("recovery_shares"), RecoveryThreshold: d.Int("recovery_threshold"), KeyHolders: d.Strings("key_holders")})
	if err != nil {
		return nil, err
	}
	hexKeys, b64Keys := encodeKeys(res.Keys)
	recHex, recB64 := encodeKeys(res.RecoveryKeys)
	data := map[string]any{"keys": hexKeys, "keys_base64": b64Keys, "recovery_keys": recHex, "recovery_keys_base64": recB64, "root_token": res.RootToken}
	if len(res.KeyHolders) > 0 {
		data["key_holders"] = res.KeyHolders
	}
	return &core.Response{Bare: true, Data: data}, nil
}

// encodeKeys returns shares as hex and standard base64.
func encodeKeys(keys [][]byte) (hexKeys, b64Keys []string) {
	hexKeys, b64Keys = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		hexKeys[i] = hex.EncodeToString(k)
		b64Keys[i] = base64.StdEncoding.EncodeToString(k)
	}
	return hexKeys, b64Keys
}

func statusData(s *SealStatus) map[string]any {
	m := map[string]any{
		"type": s.Type, "initialized": s.Initialized, "sealed": s.Sealed, "t": s.T, "n": s.N,
		"progress": s.Progress, "nonce": s.Nonce, "version": s.Version, "build_date": s.BuildDate,
		"migration": s.Migration, "cluster_name": s.ClusterName, "cluster_id": s.ClusterID,
		"recovery_seal": s.RecoverySeal, "storage_type": s.StorageType,
	}
	if s.RecoverySealType != "" {
		m["recovery_seal_type"] = s.RecoverySealType
	}
	if len(s.Warnings) > 0 {
		m["warnings"] = s.Warnings
	}
	return m
}

func (b *Backend) sealStatus(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	s, err := b.d.Core.SealStatus(ctx)
	if err != nil {
		return nil, err
	}
	return &core.Response{Bare: true, Data: statusData(s)}, nil
}

func (b *Backend) unseal(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	if !d.Bool("reset") && d.String("key") == "" {
		return nil, core.Invalid("'key' must be specified in request body as JSON, or 'reset' set to true")
	}
	s, err := b.d.Core.Unseal(ctx, d.String("key"), d.Bool("reset"), d.Bool("migrate"))
	if err != nil {
		return nil, err
	}
	return &core.Response{Bare: true, Data: statusData(s)}, nil
}

func (b *Backend) seal(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	return nil, b.d.Core.Seal(ctx)
}

func (b *Backend) health(ctx context.Context, _ *core.Request, d *framework.FieldData) (*core.Response, error) {
	code := func(k string, def int) int {
		if d.Has(k) {
			return d.Int(k)
		}
		return def
	}
	st, err := b.d.Core.SealStatus(ctx)
	if err != nil {
		return nil, err
	}
	hi := b.d.Core.Health(ctx)
	status := code("activecode", http.StatusOK)
	switch {
	case !st.Initialized:
		status = code("uninitcode", http.StatusNotImplemented)
	case st.Sealed:
		status = code("sealedcode", http.StatusServiceUnavailable)
	case hi.Standby:
		status = code("standbycode", http.StatusTooManyRequests)
		if d.Bool("standbyok") {
			status = code("activecode", http.StatusOK)
		}
	}
	data := map[string]any{
		"initialized": st.Initialized, "sealed": st.Sealed, "standby": hi.Standby,
		"performance_standby": false, "replication_performance_mode": "disabled",
		"replication_dr_mode": "disabled", "server_time_utc": b.d.Now().Unix(), "version": b.d.Version,
		"cluster_name": hi.ClusterName, "cluster_id": hi.ClusterID, "enterprise": false, "echo_duration_ms": 0,
		"clock_skew_ms": 0,
	}
	hdr := http.Header{}
	if hi.AuditStatus != "" {
		data["audit_status"] = hi.AuditStatus
		if hi.AuditDetail != nil {
			data["audit"] = hi.AuditDetail
		}
		hdr.Set("X-Vigil-Audit-Status", hi.AuditStatus)
	}
	hdr.Set("X-Vigil-Health-Code", strconv.Itoa(status))
	return &core.Response{Bare: true, StatusCode: status, Data: data, Headers: hdr}, nil
}

func (b *Backend) leader(ctx context.Context, _ *core.Request, _ *framework.FieldData) (*core.Response, error) {
	li := b.d.Core.Leader(ctx)
	data := map[string]any{
		"ha_enabled": li.HAEnabled, "is_self": li.IsSelf,
		"leader_address": li.LeaderAddress, "leader_cluster_address": li.LeaderClusterAddress,
		"performance_standby": li.PerformanceStandby, "performance_standby_last_remote_wal": 0,
		"raft_committed_index": li.RaftCommittedIndex, "raft_applied_index": li.RaftAppliedIndex,
	}
	// vault/api decodes active_time as a time: send it only when known.
	if li.ActiveTime != "" {
		data["active_time"] = li.ActiveTime
	}
	return &core.Response{Bare: true, Data: data}, nil
}

var _ = time.Second
