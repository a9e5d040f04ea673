package compliance

import (
	"testing"

	"github.com/vigilsec/vigil/core"
)

// TestNamespaceRunLeavesServerWideChecksOut: in a namespace only the
// checks about its own policies, tokens and mounts run; the server-wide
// ones (audit, snapshots, seal) are neither passed nor failed there.
func TestNamespaceRunLeavesServerWideChecksOut(t *testing.T) {
	env := goodEnv(t)
	env.Devices, env.Disk, env.Verification, env.LastSnapshot, env.LastRestore, env.Seal, env.Recovery = nil, nil, nil, nil, nil, nil, nil
	env.Namespace = core.Namespace{ID: "HosPtA", Path: "hospital-a/"}
	env.Policies = append(env.Policies, mustPolicy(t, "broad", `path "*" { capabilities = ["read"] }`))
	res := Run(env, Thresholds{})
	if res.Namespace != "hospital-a/" {
		t.Fatalf("namespace %q", res.Namespace)
	}
	ran := map[string]string{}
	for _, c := range res.Checks {
		ran[c.ID] = c.Status
	}
	for id := range serverWide {
		if _, ok := ran[id]; ok {
			t.Errorf("server-wide check %s ran in a namespace", id)
		}
	}
	if ran[CheckPolicyWildcard] != StatusFail {
		t.Errorf("the namespace's broad policy was not reported: %v", ran)
	}
	if len(res.Checks)+len(serverWide) != len(checks) {
		t.Errorf("%d checks ran, want %d", len(res.Checks), len(checks)-len(serverWide))
	}
	// In the root namespace every check runs.
	if n := len(Run(goodEnv(t), Thresholds{}).Checks); n != len(checks) {
		t.Errorf("root run: %d checks", n)
	}
}
