package compliance_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/compliance"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

func fileDevice(dir string) config.Block {
	return config.Block{Type: "file", Name: "file", File: "test.hcl", Line: 1,
		Options: map[string]config.Value{"path": {Value: filepath.Join(dir, "audit", "audit.log"), File: "test.hcl", Line: 2}}}
}

func checks(t *testing.T, c *vaultapi.Client) compliance.Result {
	t.Helper()
	resp, err := c.Logical().ReadRaw("sys/compliance/checks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data compliance.Result `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Data
}

func status(res compliance.Result) map[string]string {
	m := map[string]string{}
	for _, c := range res.Checks {
		m[c.ID] = c.Status
	}
	return m
}

// TestChecksOnARealServer drives the checks through the API: a fresh dev
// server fails the operational checks, and fixing each through the API
// makes it pass.
func TestChecksOnARealServer(t *testing.T) {
	dir := t.TempDir()
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dir: dir, Dev: true, Configure: func(cfg *config.Config) {
		cfg.Audit = []config.Block{fileDevice(dir)}
	}})
	c := s.Client
	res := checks(t, c)
	st := status(res)
	for id, want := range map[string]string{
		compliance.CheckTokenRoot:      compliance.StatusFail, // the dev root token
		compliance.CheckKeyHolders:     compliance.StatusFail, // dev: 1 share
		compliance.CheckSnapshot:       compliance.StatusFail,
		compliance.CheckRestoreTest:    compliance.StatusFail,
		compliance.CheckRecoveryDoc:    compliance.StatusFail,
		compliance.CheckAuditVerify:    compliance.StatusFail,
		compliance.CheckAuditRedundant: compliance.StatusFail, // one file device, no stream
		compliance.CheckPolicyWildcard: compliance.StatusPass,
		compliance.CheckKVv1:           compliance.StatusPass, // dev secret/ is kv v2
		compliance.CheckAuditDisk:      compliance.StatusPass,
	} {
		if st[id] != want {
			t.Errorf("fresh server: %s = %s, want %s", id, st[id], want)
		}
	}
	// Fix the operational ones through the API.
	if _, err := c.Logical().Write("sys/audit/verify", nil); err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Logical().ReadRaw("sys/storage/raft/snapshot"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	sec, err := c.Logical().Write("sys/storage/raft/snapshot-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := sec.Data["ok"].(bool); !ok {
		t.Fatalf("snapshot test failed: %v", sec.Data)
	}
	live, _ := sec.Data["live_keys"].(json.Number).Int64()
	restored, _ := sec.Data["restored_keys"].(json.Number).Int64()
	if live < 5 || live != restored || sec.Data["keyring_present"] != true || sec.Data["seal_config_present"] != true {
		t.Fatalf("snapshot test record: %v", sec.Data)
	}
	if last, err := c.Logical().Read("sys/storage/raft/snapshot-test"); err != nil || last.Data["ok"] != true {
		t.Fatalf("last test: %v %v", last, err)
	}
	if _, err := c.Logical().Write("sys/compliance/recovery-procedure", map[string]any{
		"document_url": "https://wiki.example/vigil/recovery", "owner": "secops"}); err != nil {
		t.Fatal(err)
	}
	res = checks(t, c)
	st = status(res)
	for _, id := range []string{compliance.CheckSnapshot, compliance.CheckRestoreTest, compliance.CheckAuditVerify} {
		if st[id] != compliance.StatusPass {
			t.Errorf("after the fix: %s = %s", id, st[id])
		}
	}
	// No review date yet: still a (low) finding; with one it passes.
	if st[compliance.CheckRecoveryDoc] != compliance.StatusFail {
		t.Errorf("recovery procedure without review date: %s", st[compliance.CheckRecoveryDoc])
	}
	if _, err := c.Logical().Write("sys/compliance/recovery-procedure", map[string]any{
		"document_url": "https://wiki.example/vigil/recovery", "owner": "secops", "last_reviewed": s.Now().UTC().Format("2006-01-02")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("sys/compliance/recovery-procedure", map[string]any{"owner": "x"}); err == nil {
		t.Fatal("a procedure without document_url was accepted")
	}
	// Break two access checks: a wildcard policy and a KV v1 mount.
	if _, err := c.Logical().Write("sys/policies/acl/ops", map[string]any{"policy": `path "*" { capabilities = ["read", "list", "sudo"] }`}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Mount("legacy", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	res = checks(t, c)
	st = status(res)
	if st[compliance.CheckRecoveryDoc] != compliance.StatusPass || st[compliance.CheckPolicyWildcard] != compliance.StatusFail ||
		st[compliance.CheckPolicySudo] != compliance.StatusFail || st[compliance.CheckKVv1] != compliance.StatusFail {
		t.Fatalf("statuses %v", st)
	}
	found := false
	for _, f := range res.Findings {
		if f.Check == compliance.CheckPolicyWildcard && f.Severity == compliance.Critical && f.Fix != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no critical wildcard finding: %+v", res.Findings)
	}
	// Thresholds through the API.
	resp, err := c.Logical().ReadRawWithData("sys/compliance/checks", map[string][]string{"verify_max_age": {"never"}})
	if err == nil {
		resp.Body.Close()
		t.Fatal("a bad threshold was accepted")
	}
}

// TestChecksNeedAPolicy: the checks are not open to every token.
func TestChecksNeedAPolicy(t *testing.T) {
	s := servertest.MustStart(t, wire.Options, servertest.Options{Dev: true})
	if _, err := s.Client.Logical().Write("sys/policies/acl/auditor", map[string]any{"policy": `path "sys/compliance/*" { capabilities = ["read"] }`}); err != nil {
		t.Fatal(err)
	}
	mk := func(pol string) *vaultapi.Client {
		sec, err := s.Client.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{pol}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return s.NewClient(sec.Auth.ClientToken)
	}
	if _, err := mk("default").Logical().ReadRaw("sys/compliance/checks"); err == nil {
		t.Fatal("default policy may run the checks")
	}
	if res := checks(t, mk("auditor")); len(res.Checks) != len(compliance.Checks()) {
		t.Fatalf("auditor: %d checks", len(res.Checks))
	}
	if _, err := mk("auditor").Logical().Write("sys/compliance/recovery-procedure", map[string]any{"document_url": "x", "owner": "y"}); err == nil {
		t.Fatal("read-only auditor could write the recovery procedure")
	}
}
