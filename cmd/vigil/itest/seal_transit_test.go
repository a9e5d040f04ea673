package itest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func transitHCL(addr, key string) string {
	return fmt.Sprintf(`seal "transit" {
  address    = %q
  token      = "root"
  key_name   = %q
  mount_path = "transit/"
}`, addr, key)
}

// TestSealTransitTwoProcesses: one real vigil process (A, dev mode) serves
// transit; another (B) auto-unseals through it. B keeps serving while A is
// briefly down (the outage shows in sys/seal-backend-status); B restarted
// during the outage stays sealed naming the seal and the cause, and
// unseals by itself once A is back.
func TestSealTransitTwoProcesses(t *testing.T) {
	a := newVigilProc(t, t.TempDir())
	a.StartDev()
	if err := a.Client.Sys().Mount("transit", &vaultapiMountTransit); err != nil {
		t.Fatalf("enable transit on A: %v", err)
	}
	for _, k := range []string{"autounseal", "other"} {
		if _, err := a.Client.Logical().Write("transit/keys/"+k, nil); err != nil {
			t.Fatalf("create transit key %s: %v", k, err)
		}
	}
	// The common lifecycle, with a wrong key as the broken variant.
	took := autoSealLifecycle(t, "transit", transitHCL(a.URL, "autounseal"),
		brokenSeal{"wrong key", transitHCL(a.URL, "other"), []string{"other", "decrypt"}})
	_ = took

	// The outage scenario on a fresh B.
	b := newVigilProc(t, t.TempDir())
	b.Start(transitHCL(a.URL, "autounseal"))
	res := initAuto(t, b.Client, 3, 2, holders3)
	b.WaitUnsealed(30 * time.Second)
	b.Client.SetToken(res.RootToken)
	mustKVSecret(t, b.Client)

	a.Stop() // the transit server goes down
	mustReadSecret(t, b.Client)
	if _, err := b.Client.KVv2("secret").Put(t.Context(), "during-outage", map[string]any{"v": "1"}); err != nil {
		t.Fatalf("write while the transit server is down: %v", err)
	}
	var status struct {
		Healthy  bool `json:"healthy"`
		Backends []struct {
			Name    string `json:"name"`
			Healthy bool   `json:"healthy"`
			Error   string `json:"error"`
		} `json:"backends"`
	}
	resp, err := rawRequest(t, b.Client, "GET", "/v1/sys/seal-backend-status", nil)
	if err != nil {
		t.Fatalf("seal-backend-status: %v", err)
	}
	if err := resp.DecodeJSON(&status); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status.Healthy || len(status.Backends) != 1 || status.Backends[0].Healthy || !strings.Contains(status.Backends[0].Error, "transit seal: health check") || !strings.Contains(status.Backends[0].Error, "connection refused") {
		t.Fatalf("seal-backend-status during the outage = %+v", status)
	}
	t.Logf("during the outage: %s", status.Backends[0].Error)

	b.Stop()
	b.Start(transitHCL(a.URL, "autounseal"))
	msg := b.WaitWarning(60*time.Second, "transit seal: unwrap the root key", "connection refused")
	t.Logf("B restarted during the outage: %s", msg)
	wantSealedRefusal(t, b.Client, "secret/data/app")

	a.StartDev() // the transit server comes back on the same address and data
	back := time.Now()
	b.WaitUnsealed(60 * time.Second)
	t.Logf("B unsealed %s after the transit server came back, without human input", time.Since(back))
	mustReadSecret(t, b.Client)
}
