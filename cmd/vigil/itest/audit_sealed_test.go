package itest

import (
	"net/http"
	"testing"

	"github.com/vigilsec/vigil/audit/auditsvc"
	"github.com/vigilsec/vigil/audit/chain"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// Requests rejected while sealed are written to the file device at once,
// durably — the log holds them before any unseal, and after the server
// stops while still sealed — with a request and a response entry, marked
// sealed, and without the token (no salt while sealed: it is left out,
// never written in clear). The chain continues through the sealed period
// and verifies with the checkpoint key after the next unseal.
func TestAuditSealedRejectionsRecorded(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{})
	if err := s.Client.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	c := s.NewClient("hvs.token-used-while-sealed")
	_, err := c.Logical().Read("secret/data/x")
	wantStatus(t, err, http.StatusServiceUnavailable)

	sealedEntries := func(lines []logLine) []logLine {
		var out []logLine
		for _, l := range entries(lines) {
			if l.Vigil["sealed"] == true && l.Request["path"] == "secret/data/x" {
				out = append(out, l)
			}
		}
		return out
	}
	// On disk while still sealed.
	got := sealedEntries(readLog(t, auditLogPath(dir)))
	if len(got) != 2 || got[0].Type != "request" || got[1].Type != "response" {
		t.Fatalf("entries for the sealed rejection while sealed: %d", len(got))
	}
	for _, l := range got {
		if l.Error != "Vault is sealed" || l.Request["client_token"] != nil || l.Auth["client_token"] != nil {
			t.Fatalf("sealed entry: %s", l.Raw)
		}
	}
	if got[1].Vigil["status"] != float64(http.StatusServiceUnavailable) {
		t.Fatalf("response entry status: %s", got[1].Raw)
	}
	if hits := fileContains(t, dir, "hvs.token-used-while-sealed"); len(hits) > 0 {
		t.Fatalf("token written in clear in %v", hits)
	}

	// A restart while sealed keeps them, and keeps recording.
	s.RestartSealed()
	_, err = s.NewClient("hvs.token-used-while-sealed").Logical().Read("secret/data/y")
	wantStatus(t, err, http.StatusServiceUnavailable)
	s.MustUnseal()
	if _, err := s.Client.Logical().Read("sys/audit"); err != nil {
		t.Fatal(err)
	}
	pub, ok := s.Sub().PublicKey()
	if !ok {
		t.Fatal("no checkpoint key after unseal")
	}
	s.Stop()
	lines := readLog(t, auditLogPath(dir))
	if n := len(sealedEntries(lines)); n != 2 {
		t.Fatalf("%d entries for the first rejection after restart and unseal", n)
	}
	found := false
	for _, l := range entries(lines) {
		if l.Vigil["sealed"] == true && l.Request["path"] == "secret/data/y" {
			found = true
		}
	}
	if !found {
		t.Fatal("the rejection made after the restart while sealed is not recorded")
	}
	rep, err := chain.VerifyLog(t.Context(), auditLogPath(dir), chain.VerifyOptions{PublicKey: pub, NodeID: "test-node"})
	if err != nil || !rep.OK {
		t.Fatalf("log with sealed periods does not verify: %v %v", rep, err)
	}
}

// A device records while sealed only when there is something to record: a
// start (sealed until unsealed) and a stop with no request rejected while
// sealed leave no segment without the checkpoint key in the log; a
// rejection does. (The response entry of sys/seal is such an entry.)
func TestAuditSealedModeOpensOnFirstEntry(t *testing.T) {
	dir := t.TempDir()
	s := mustAuditServer(t, servertest.Options{Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)}
	}}, auditsvc.Options{})
	keyless := func() int {
		segs, err := chain.ListSegments(auditLogPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, si := range segs {
			if si.Header.PublicKey == "" {
				n++
			}
		}
		return n
	}
	if _, err := s.Client.Logical().Read("sys/audit"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if n := keyless(); n != 0 {
		t.Fatalf("%d key-less segments after a start and a stop with nothing rejected while sealed", n)
	}
	s.RestartSealed()
	_, err := s.NewClient("").Logical().Read("secret/data/x")
	wantStatus(t, err, http.StatusServiceUnavailable)
	if n := keyless(); n != 1 {
		t.Fatalf("%d key-less segments after a rejection while sealed, want 1", n)
	}
}
