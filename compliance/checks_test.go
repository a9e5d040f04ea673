package compliance

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/audit"
	"github.com/vigilsec/vigil/audit/diskwatch"
	"github.com/vigilsec/vigil/audit/ship"
	"github.com/vigilsec/vigil/core"
	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/seal/custody"
	"github.com/vigilsec/vigil/core/token"
)

var now = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func mustPolicy(t *testing.T, name, src string) *authz.Policy {
	t.Helper()
	p, err := authz.ParseACL(name, src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goodEnv passes every check.
func goodEnv(t *testing.T) *Env {
	return &Env{
		Now: now, NodeID: "node1",
		Policies: []*authz.Policy{mustPolicy(t, "app", `
path "secret/data/app/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["list"] }
path "sys/mounts/*" { capabilities = ["read", "sudo"] }
path "cubbyhole/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "*" { capabilities = ["deny"] }`)},
		Tokens: []*token.Entry{
			{Accessor: "a1", DisplayName: "userpass-alice", Policies: []string{"default", "app"}, CreationTime: now.Add(-time.Hour),
				ExpireTime: now.Add(time.Hour), MaxExpireTime: now.Add(23 * time.Hour), Type: "service"},
			{Accessor: "a2", DisplayName: "token", Policies: []string{"app"}, CreationTime: now.Add(-40 * day), ExpireTime: now.Add(-39 * day), Orphan: true, Type: "service"}, // expired
			{Accessor: "a3", DisplayName: "approle", Policies: []string{"app"}, CreationTime: now.Add(-20 * time.Hour), ExpireTime: now.Add(time.Hour), MaxExpireTime: now.Add(3 * time.Hour), Orphan: true, Type: "service"},
		},
		AuditRequired: true,
		RequireAudit:  true,
		Devices:       []AuditDevice{{Name: "file", Type: "file", Path: "/var/log/vigil/audit.log", Durable: true, Fsync: "always"}},
		Streams:       []ship.Status{{Name: "ch", Type: "clickhouse", State: ship.StateShipping, LagSeconds: 1}},
		StreamsKnown:  true,
		Disk:          []diskwatch.State{{Name: "file", Dir: "/var/log/vigil", Level: diskwatch.LevelOK, Usage: diskwatch.Usage{Total: 100, Free: 60, Avail: 60}}},
		Verification:  &audit.Verification{Time: now.Add(-day), OK: true, NodeID: "node1"},
		Mounts:        []core.MountInfo{{Path: "secret/", Type: "kv", Options: map[string]string{"version": "2"}}, {Path: "transit/", Type: "transit"}},
		LastSnapshot:  &core.SnapshotSaveRecord{Time: now.Add(-2 * time.Hour)},
		LastRestore:   &core.SnapshotTestRecord{Time: now.Add(-10 * day), OK: true},
		Backups: []BackupSchedule{{
			Status: core.SnapshotAutoStatus{Name: "daily", IntervalSecs: 86400, Configured: now.Add(-30 * day), LastSuccess: now.Add(-20 * time.Hour)},
			Drills: []core.SnapshotDrillRecord{{Time: now.Add(-2 * day), Schedule: "daily", Passed: true}, {Time: now.Add(-9 * day), Schedule: "daily"}},
		}},
		Seal:     &core.SealShares{SecretShares: 5, SecretThreshold: 3, KeyHolders: 5},
		Recovery: &RecoveryProcedure{DocumentURL: "https://wiki.example/vigil-recovery", Owner: "secops", LastReviewed: now.Add(-30 * day)},
		KeyCustody: &custody.Evidence{ShareSet: "set1", Kind: "unseal", Shares: 5, Threshold: 3, Now: now, Latest: []custody.Proof{
			{Number: 1, Holder: "alice", At: now.Add(-10 * day)}, {Number: 2, Holder: "bob", At: now.Add(-80 * day)}, {Number: 4, Holder: "dave", At: now.Add(-day)}}},
	}
}

func TestGoodEnvPassesEveryCheck(t *testing.T) {
	res := Run(goodEnv(t), Thresholds{})
	for _, c := range res.Checks {
		if c.Status != StatusPass {
			t.Errorf("%s: %s %+v %s", c.ID, c.Status, c.Findings, c.Note)
		}
	}
	if res.Passed != len(checks) || len(res.Findings) != 0 {
		t.Fatalf("passed %d of %d, findings %v", res.Passed, len(checks), res.Findings)
	}
}

// Each case breaks exactly one check; the rest must still pass.
func TestEachCheckFails(t *testing.T) {
	cases := []struct {
		check    string
		severity string
		object   string // substring of the finding's object
		mutate   func(t *testing.T, e *Env)
	}{
		{CheckPolicyWildcard, High, `path "*"`, func(t *testing.T, e *Env) {
			e.Policies = append(e.Policies, mustPolicy(t, "ops", `path "*" { capabilities = ["read", "list"] }`))
		}},
		{CheckPolicyWildcard, Medium, `path "secret/*"`, func(t *testing.T, e *Env) {
			e.Policies = append(e.Policies, mustPolicy(t, "writer", `path "secret/*" { capabilities = ["create", "update", "read"] }`))
		}},
		{CheckPolicySudo, Medium, `path "secret/data/app/*"`, func(t *testing.T, e *Env) {
			e.Policies = append(e.Policies, mustPolicy(t, "admin", `path "secret/data/app/*" { capabilities = ["read", "sudo"] }`))
		}},
		{CheckTokenNoExpiry, High, "accessor nx", func(t *testing.T, e *Env) {
			e.Tokens = append(e.Tokens, &token.Entry{Accessor: "nx", Policies: []string{"app"}, CreationTime: now.Add(-time.Hour)})
		}},
		{CheckTokenLongTTL, Medium, "accessor long", func(t *testing.T, e *Env) {
			e.Tokens = append(e.Tokens, &token.Entry{Accessor: "long", Policies: []string{"app"}, CreationTime: now.Add(-time.Hour),
				ExpireTime: now.Add(time.Hour), MaxExpireTime: now.Add(30 * day)})
		}},
		{CheckTokenRoot, High, "accessor r1", func(t *testing.T, e *Env) {
			e.Tokens = append(e.Tokens, &token.Entry{Accessor: "r1", DisplayName: "root", Policies: []string{"root"}, CreationTime: now.Add(-day)})
		}},
		{CheckTokenOrphan, Medium, "accessor old", func(t *testing.T, e *Env) {
			e.Tokens = append(e.Tokens, &token.Entry{Accessor: "old", Policies: []string{"app"}, Orphan: true, Type: "service",
				CreationTime: now.Add(-45 * day), ExpireTime: now.Add(time.Hour), Period: time.Hour})
		}},
		{CheckAuditRedundant, Medium, "audit devices", func(t *testing.T, e *Env) { e.Streams = nil }},
		{CheckAuditRedundant, Critical, "audit devices", func(t *testing.T, e *Env) {
			e.Streams = nil
			e.Devices[0].Failed = true
		}},
		{CheckAuditDisk, Medium, `"file"`, func(t *testing.T, e *Env) { e.Disk[0].Usage = diskwatch.Usage{Total: 100, Free: 10, Avail: 10} }},
		{CheckAuditDisk, Critical, `"file"`, func(t *testing.T, e *Env) { e.Disk[0].Level = diskwatch.LevelFull }},
		{CheckAuditShipLag, Medium, `stream "ch"`, func(t *testing.T, e *Env) { e.Streams[0].LagSeconds = 600 }},
		{CheckAuditShipLag, Critical, `stream "ch"`, func(t *testing.T, e *Env) {
			e.Streams[0].State = ship.StateStalled
			e.Devices = append(e.Devices, AuditDevice{Name: "file2", Type: "file", Durable: true, Fsync: "always"})
		}},
		{CheckAuditVerify, Medium, "node1", func(t *testing.T, e *Env) { e.Verification = nil }},
		{CheckAuditVerify, Medium, "node1", func(t *testing.T, e *Env) { e.Verification.Time = now.Add(-8 * day) }},
		{CheckAuditVerify, Critical, "node1", func(t *testing.T, e *Env) {
			e.Verification.OK = false
			e.Verification.Devices = map[string]audit.DeviceVerification{"file": {Failure: "hash mismatch at seq 7"}}
		}},
		{CheckAuditRequire, High, "require_audit = false", func(t *testing.T, e *Env) { e.RequireAudit = false }},
		{CheckAuditDurable, Medium, "audit device lazy", func(t *testing.T, e *Env) {
			e.Devices = append(e.Devices, AuditDevice{Name: "lazy", Type: "file", Fsync: "interval"})
		}},
		{CheckAuditDurable, High, "audit devices", func(t *testing.T, e *Env) {
			e.Devices = []AuditDevice{{Name: "out", Type: "stdout"}}
			e.Streams = append(e.Streams, ship.Status{Name: "k", Type: "kafka", State: ship.StateShipping})
		}},
		{CheckKVv1, Low, "mount kv1/", func(t *testing.T, e *Env) {
			e.Mounts = append(e.Mounts, core.MountInfo{Path: "kv1/", Type: "kv", Options: map[string]string{"version": "1"}})
		}},
		{CheckSnapshot, High, "raft", func(t *testing.T, e *Env) { e.LastSnapshot = nil }},
		{CheckSnapshot, High, "raft", func(t *testing.T, e *Env) { e.LastSnapshot.Time = now.Add(-25 * time.Hour) }},
		{CheckRestoreTest, Medium, "raft", func(t *testing.T, e *Env) { e.LastRestore = nil }},
		{CheckBackupSchedule, Medium, "raft", func(t *testing.T, e *Env) { e.Backups[0].Drills[0].Passed = true; e.Backups = nil }},
		{CheckBackupSchedule, High, "daily", func(t *testing.T, e *Env) { e.Backups[0].Status.LastSuccess = now.Add(-49 * time.Hour) }},
		{CheckBackupSchedule, High, "daily", func(t *testing.T, e *Env) { e.Backups[0].Status.LastSuccess = time.Time{} }},
		{CheckBackupDrill, High, "daily", func(t *testing.T, e *Env) {
			e.Backups[0].Drills = append([]core.SnapshotDrillRecord{{Time: now.Add(-time.Hour), Passed: false, Error: "integrity"}}, e.Backups[0].Drills...)
		}},
		{CheckBackupDrill, Medium, "daily", func(t *testing.T, e *Env) { e.Backups[0].Drills[0].Time = now.Add(-8 * day) }},
		{CheckBackupDrill, Medium, "daily", func(t *testing.T, e *Env) { e.Backups[0].Drills = nil }},
		{CheckRestoreTest, High, "raft", func(t *testing.T, e *Env) { e.LastRestore.OK, e.LastRestore.Error = false, "no keyring" }},
		{CheckKeyHolders, High, "1 key holders", func(t *testing.T, e *Env) {
			e.Seal = &core.SealShares{SecretShares: 1, SecretThreshold: 1, KeyHolders: 1}
		}},
		{CheckKeyHolders, Medium, "3 key holders", func(t *testing.T, e *Env) {
			e.Seal = &core.SealShares{SecretShares: 3, SecretThreshold: 3, KeyHolders: 3}
		}},
		{CheckKeyHolders, Critical, "2 key holders", func(t *testing.T, e *Env) {
			e.Seal = &core.SealShares{SecretShares: 3, SecretThreshold: 3, KeyHolders: 2}
		}},
		{CheckKeyDrill, High, "unseal key shares (5, threshold 3)", func(t *testing.T, e *Env) { e.KeyCustody.Now = now.Add(11 * day) }}, // bob's proof leaves the 90 days
		{CheckKeyDrill, High, "unseal key shares", func(t *testing.T, e *Env) { e.KeyCustody.Latest = e.KeyCustody.Latest[:1] }},
		{CheckKeyDrill, Medium, "unseal key shares", func(t *testing.T, e *Env) { e.KeyCustody = &custody.Evidence{Now: now} }},
		{CheckRecoveryDoc, Medium, "recovery procedure", func(t *testing.T, e *Env) { e.Recovery = nil }},
		{CheckRecoveryDoc, Low, "recovery procedure", func(t *testing.T, e *Env) { e.Recovery.LastReviewed = now.Add(-400 * day) }},
	}
	for _, tc := range cases {
		t.Run(tc.check, func(t *testing.T) {
			env := goodEnv(t)
			tc.mutate(t, env)
			res := Run(env, Thresholds{})
			for _, c := range res.Checks {
				if c.ID != tc.check {
					// Without a schedule there is nothing to drill.
					noSchedule := c.ID == CheckBackupDrill && len(env.Backups) == 0 && c.Status == StatusUnknown
					if c.Status != StatusPass && !noSchedule {
						t.Errorf("unrelated check %s: %s %+v", c.ID, c.Status, c.Findings)
					}
					continue
				}
				if c.Status != StatusFail || len(c.Findings) != 1 {
					t.Fatalf("%s: status %s findings %+v", c.ID, c.Status, c.Findings)
				}
				f := c.Findings[0]
				if f.Severity != tc.severity || !strings.Contains(f.Object, tc.object) || f.Fix == "" || f.Message == "" || len(f.Controls) == 0 || f.Check != tc.check {
					t.Fatalf("finding %+v; want severity %s, object containing %q", f, tc.severity, tc.object)
				}
				for _, id := range f.Controls {
					if _, ok := Lookup(id); !ok {
						t.Errorf("finding maps to unknown control %q", id)
					}
				}
			}
			if len(res.Findings) != 1 || res.Failed != 1 {
				t.Fatalf("findings %d failed %d", len(res.Findings), res.Failed)
			}
		})
	}
}

func TestThresholdsChangeOutcome(t *testing.T) {
	env := goodEnv(t)
	// a3 is an orphan service token 20 hours old: passes at 30 days, fails at 12 hours.
	res := Run(env, Thresholds{OrphanMaxAge: Duration(12 * time.Hour)})
	if res.Failed != 1 || res.Findings[0].Check != CheckTokenOrphan || !strings.Contains(res.Findings[0].Object, "a3") {
		t.Fatalf("%+v", res.Findings)
	}
	// alice's token lives 24h and a3 23h: both pass at 24h, fail at 12h.
	res = Run(env, Thresholds{MaxTokenTTL: Duration(12 * time.Hour)})
	if res.Failed != 1 || len(res.Findings) != 2 || res.Findings[0].Check != CheckTokenLongTTL {
		t.Fatalf("%+v", res.Findings)
	}
}

func TestStreamsUnknownIsNotAPass(t *testing.T) {
	env := goodEnv(t)
	env.Streams, env.StreamsKnown = nil, false
	env.Devices = append(env.Devices, AuditDevice{Name: "file2", Type: "file", Durable: true, Fsync: "always"})
	res := Run(env, Thresholds{})
	for _, c := range res.Checks {
		if c.ID == CheckAuditShipLag && c.Status != StatusUnknown {
			t.Fatalf("shipper lag without streams: %s", c.Status)
		}
	}
	if res.Unknown != 1 || res.Failed != 0 {
		t.Fatalf("unknown %d failed %d", res.Unknown, res.Failed)
	}
}

func TestParseThresholds(t *testing.T) {
	vals := map[string]string{"max_token_ttl": "72h", "orphan_max_age": "14d", "min_disk_free_percent": "15"}
	th, err := ParseThresholds(func(k string) string { return vals[k] })
	if err != nil {
		t.Fatal(err)
	}
	if th.MaxTokenTTL.D() != 72*time.Hour || th.OrphanMaxAge.D() != 14*day || th.MinDiskFreePercent != 15 {
		t.Fatalf("%+v", th)
	}
	if _, err := ParseThresholds(func(k string) string { return map[string]string{"verify_max_age": "soon"}[k] }); err == nil {
		t.Fatal("bad duration accepted")
	}
}
