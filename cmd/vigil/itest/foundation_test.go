package itest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

func TestInitUnsealSealWithShares(t *testing.T) {
	dir := t.TempDir()
	s := mustStart(t, servertest.Options{NoInit: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)} // a server outside -dev needs a durable device
	}})
	c := s.Client
	st, err := c.Sys().SealStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.Initialized || !st.Sealed {
		t.Fatalf("fresh server: initialized=%v sealed=%v", st.Initialized, st.Sealed)
	}
	// Requests while sealed (uninitialised) are refused with 503.
	_, err = c.Logical().Read("secret/data/x")
	wantStatus(t, err, http.StatusServiceUnavailable)
	h, err := c.Sys().Health()
	if err != nil {
		t.Fatal(err)
	}
	if h.Initialized {
		t.Fatal("health says initialized")
	}

	res, err := c.Sys().Init(&vaultapi.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 5 || len(res.KeysB64) != 5 || res.RootToken == "" {
		t.Fatalf("init result: %+v", res)
	}
	// Init twice is refused.
	_, err = c.Sys().Init(&vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	wantStatus(t, err, http.StatusBadRequest)

	c.SetToken(res.RootToken)
	_, err = c.Logical().Read("sys/mounts")
	wantStatus(t, err, http.StatusServiceUnavailable)

	// Garbled share: rejected, progress kept.
	_, err = c.Sys().Unseal("not-a-key!!")
	wantStatus(t, err, http.StatusBadRequest)
	st, _ = c.Sys().Unseal(res.Keys[0])
	if st.Progress != 1 || !st.Sealed {
		t.Fatalf("after 1 share: %+v", st)
	}
	// Duplicate share: rejected, progress kept.
	_, err = c.Sys().Unseal(res.Keys[0])
	wantStatus(t, err, http.StatusBadRequest)
	st, _ = c.Sys().SealStatus()
	if st.Progress != 1 {
		t.Fatalf("duplicate share changed progress: %+v", st)
	}
	// A wrong share (from another cluster) makes the round fail and reset.
	other := mustStart(t, servertest.Options{NoInit: true})
	ores, err := other.Client.Sys().Init(&vaultapi.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sys().Unseal(ores.Keys[1]); err != nil {
		t.Fatal(err)
	}
	_, err = c.Sys().Unseal(ores.Keys[2])
	wantStatus(t, err, http.StatusBadRequest)
	st, _ = c.Sys().SealStatus()
	if !st.Sealed || st.Progress != 0 {
		t.Fatalf("after a wrong round: %+v", st)
	}
	// The right shares, base64 form for one of them.
	for _, k := range []string{res.Keys[4], res.KeysB64[2], res.Keys[0]} {
		if st, err = c.Sys().Unseal(k); err != nil {
			t.Fatal(err)
		}
	}
	if st.Sealed {
		t.Fatal("still sealed after threshold")
	}
	if err := c.Sys().Mount("kv", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("kv").Put(context.Background(), "a", map[string]any{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	_, err = c.KVv2("kv").Get(context.Background(), "a")
	wantStatus(t, err, http.StatusServiceUnavailable)
	h, _ = c.Sys().Health()
	if !h.Sealed {
		t.Fatal("health not sealed")
	}
	for _, k := range res.Keys[1:4] {
		if _, err := c.Sys().Unseal(k); err != nil {
			t.Fatal(err)
		}
	}
	sec, err := c.KVv2("kv").Get(context.Background(), "a")
	if err != nil || sec.Data["v"] != "1" {
		t.Fatalf("after re-unseal: %v %v", sec, err)
	}
}

func TestHealthStatusCodes(t *testing.T) {
	s := mustStart(t, servertest.Options{NoInit: true})
	get := func(q string) int {
		resp, err := http.Get(s.URL + "/v1/sys/health" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(""); got != 501 {
		t.Fatalf("uninitialised: %d", got)
	}
	if got := get("?uninitcode=200"); got != 200 {
		t.Fatalf("uninitcode override: %d", got)
	}
	res, err := s.Client.Sys().Init(&vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(""); got != 503 {
		t.Fatalf("sealed: %d", got)
	}
	if got := get("?sealedcode=299"); got != 299 {
		t.Fatalf("sealedcode override: %d", got)
	}
	if _, err := s.Client.Sys().Unseal(res.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if got := get(""); got != 200 {
		t.Fatalf("active: %d", got)
	}
	if got := get("?activecode=204"); got != 204 {
		t.Fatalf("activecode override: %d", got)
	}
}

func TestRootOnlyUntilPoliciesAndBadTokens(t *testing.T) {
	s := devServer(t)
	c := s.Client
	// Unknown token → 403.
	bad := s.NewClient("hvs.doesnotexist")
	_, err := bad.Logical().Read("secret/data/x")
	wantStatus(t, err, http.StatusForbidden)
	// Missing token → 403.
	none := s.NewClient("")
	_, err = none.Logical().Read("sys/mounts")
	wantStatus(t, err, http.StatusForbidden)
	// Revoked token → 403.
	tok, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	tc := s.NewClient(tok.Auth.ClientToken)
	if _, err := tc.Auth().Token().LookupSelf(); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth().Token().RevokeTree(tok.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	_, err = tc.Auth().Token().LookupSelf()
	wantStatus(t, err, http.StatusForbidden)
}

func TestTokensLifecycle(t *testing.T) {
	clk := newFakeClock()
	s := mustStart(t, servertest.Options{Dev: true, Now: clk.Now})
	c := s.Client
	// A token with a TTL; defaults apply when none is given.
	parent, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"root"}, TTL: "2h", DisplayName: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if parent.Auth.LeaseDuration != 7200 || !parent.Auth.Renewable || parent.Auth.Accessor == "" {
		t.Fatalf("parent auth: %+v", parent.Auth)
	}
	def, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if def.Auth.LeaseDuration != 3600 {
		t.Fatalf("default TTL: %d, want 3600", def.Auth.LeaseDuration)
	}
	// No token is created without an expiry, even when asked for more than the max.
	long, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{TTL: "9000h"})
	if err != nil {
		t.Fatal(err)
	}
	if long.Auth.LeaseDuration != 24*3600 {
		t.Fatalf("capped TTL: %d", long.Auth.LeaseDuration)
	}
	pc := s.NewClient(parent.Auth.ClientToken)
	child, err := pc.Auth().Token().Create(&vaultapi.TokenCreateRequest{TTL: "30m"})
	if err != nil {
		t.Fatal(err)
	}
	grand, err := s.NewClient(child.Auth.ClientToken).Auth().Token().Create(&vaultapi.TokenCreateRequest{TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := pc.Auth().Token().CreateOrphan(&vaultapi.TokenCreateRequest{TTL: "40m"})
	if err != nil {
		t.Fatal(err)
	}
	look, err := c.Auth().Token().Lookup(child.Auth.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	if look.Data["display_name"] != "token" || look.Data["orphan"] != false {
		t.Fatalf("lookup: %v", look.Data)
	}
	la, err := c.Auth().Token().LookupAccessor(child.Auth.Accessor)
	if err != nil || la.Data["id"] != "" {
		t.Fatalf("lookup-accessor must not reveal the token: %v %v", la, err)
	}
	// Renew.
	clk.Advance(20 * time.Minute)
	ren, err := c.Auth().Token().Renew(child.Auth.ClientToken, 1800)
	if err != nil {
		t.Fatal(err)
	}
	if ren.Auth.LeaseDuration != 1800 {
		t.Fatalf("renew: %d", ren.Auth.LeaseDuration)
	}
	// Revoke tree: parent, child and grandchild go; the orphan stays.
	if err := c.Auth().Token().RevokeTree(parent.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{parent.Auth.ClientToken, child.Auth.ClientToken, grand.Auth.ClientToken} {
		if _, err := s.NewClient(tok).Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
			t.Fatalf("token survived revoke-tree: %v", err)
		}
	}
	if _, err := s.NewClient(orphan.Auth.ClientToken).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("orphan revoked with its creator: %v", err)
	}
	// Expiry: the orphan (40m, 20m already gone) expires.
	clk.Advance(21 * time.Minute)
	_, err = s.NewClient(orphan.Auth.ClientToken).Auth().Token().LookupSelf()
	wantStatus(t, err, http.StatusForbidden)
	// num_uses: a 2-use token works twice.
	lim, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"root"}, NumUses: 2})
	if err != nil {
		t.Fatal(err)
	}
	lc := s.NewClient(lim.Auth.ClientToken)
	for i := 0; i < 2; i++ {
		if _, err := lc.Logical().Read("sys/mounts"); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	_, err = lc.Logical().Read("sys/mounts")
	wantStatus(t, err, http.StatusForbidden)
}

func TestMountsEnableTuneDisable(t *testing.T) {
	s := devServer(t)
	c := s.Client
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	if m := mounts["secret/"]; m == nil || m.Type != "kv" || m.Options["version"] != "2" {
		t.Fatalf("secret/ mount: %+v", mounts["secret/"])
	}
	if mounts["sys/"] == nil {
		t.Fatal("sys/ not listed")
	}
	if err := c.Sys().Mount("team-a", &vaultapi.MountInput{Type: "kv", Description: "team A", Config: vaultapi.MountConfigInput{DefaultLeaseTTL: "1h", MaxLeaseTTL: "2h"}}); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.Sys().MountConfig("team-a")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultLeaseTTL != 3600 || cfg.MaxLeaseTTL != 7200 {
		t.Fatalf("mount config: %+v", cfg)
	}
	if err := c.Sys().TuneMountAllowNil("team-a", vaultapi.TuneMountConfigInput{MaxLeaseTTL: new("4h")}); err != nil {
		t.Fatal(err)
	}
	cfg, _ = c.Sys().MountConfig("team-a")
	if cfg.MaxLeaseTTL != 4*3600 {
		t.Fatalf("tuned: %+v", cfg)
	}
	// Conflicts and bad input.
	wantStatus(t, c.Sys().Mount("team-a", &vaultapi.MountInput{Type: "kv"}), http.StatusBadRequest)
	wantStatus(t, c.Sys().Mount("team-a/sub", &vaultapi.MountInput{Type: "kv"}), http.StatusBadRequest)
	wantStatus(t, c.Sys().Mount("x", &vaultapi.MountInput{Type: "nope"}), http.StatusBadRequest)
	wantStatus(t, c.Sys().Mount("sys/x", &vaultapi.MountInput{Type: "kv"}), http.StatusBadRequest)
	wantStatus(t, c.Sys().TuneMountAllowNil("team-a", vaultapi.TuneMountConfigInput{DefaultLeaseTTL: new("10h")}), http.StatusBadRequest)
	// KV v1 mount works.
	if _, err := c.Logical().Write("team-a/app", map[string]any{"pw": "x"}); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Logical().Read("team-a/app")
	if err != nil || sec.Data["pw"] != "x" {
		t.Fatalf("kv v1 read: %v %v", sec, err)
	}
	if err := c.Sys().Unmount("team-a"); err != nil {
		t.Fatal(err)
	}
	// vault/api turns 404 into (nil, nil); check the raw status and message.
	_, err = rawRequest(t, c, http.MethodGet, "/v1/team-a/app", nil)
	wantStatus(t, err, http.StatusNotFound)
	if !strings.Contains(err.Error(), "no handler for route") {
		t.Fatalf("unmounted path: %v", err)
	}
	// Re-mounting starts empty (storage was deleted).
	if err := c.Sys().Mount("team-a", &vaultapi.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	if sec, err := c.Logical().Read("team-a/app"); err != nil || sec != nil {
		t.Fatalf("data survived unmount: %v %v", sec, err)
	}
}

func TestRestartPersistenceAndNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	s := mustStart(t, servertest.Options{Shares: 3, Thresh: 2, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{fileDevice(dir, nil)} // a server outside -dev needs a durable device
	}})
	c := s.Client
	if err := c.Sys().Mount("secret", &vaultapi.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	const marker = "PLAINTEXT-MARKER-7f3a9c"
	if _, err := c.KVv2("secret").Put(context.Background(), "db", map[string]any{"password": marker}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{"root"}})
	if err != nil {
		t.Fatal(err)
	}
	s.Restart()
	c = s.Client
	sec, err := c.KVv2("secret").Get(context.Background(), "db")
	if err != nil || sec.Data["password"] != marker {
		t.Fatalf("after restart: %v %v", sec, err)
	}
	if _, err := s.NewClient(tok.Auth.ClientToken).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("token lost across restart: %v", err)
	}
	s.Stop()
	// Neither the secret nor the token appears anywhere in the data folder.
	err = filepath.Walk(s.Dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, needle := range []string{marker, tok.Auth.ClientToken} {
			if bytes.Contains(b, []byte(needle)) {
				t.Errorf("%s contains %q in plaintext", p, needle)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotSaveWipeRestore(t *testing.T) {
	s := devServer(t)
	c := s.Client
	ctx := context.Background()
	if _, err := c.KVv2("secret").Put(ctx, "keep", map[string]any{"v": "before"}); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if err := c.Sys().RaftSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if snap.Len() == 0 {
		t.Fatal("empty snapshot")
	}
	// Wipe: destroy the secret's metadata and add data that must disappear.
	if err := c.KVv2("secret").DeleteMetadata(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "later", map[string]any{"v": "after"}); err != nil {
		t.Fatal(err)
	}
	// A corrupted snapshot is rejected and changes nothing.
	bad := append([]byte(nil), snap.Bytes()...)
	bad[len(bad)/2] ^= 0xff
	err := c.Sys().RaftSnapshotRestore(bytes.NewReader(bad), false)
	wantStatus(t, err, http.StatusBadRequest)
	err = c.Sys().RaftSnapshotRestore(strings.NewReader("garbage"), false)
	wantStatus(t, err, http.StatusBadRequest)
	if sec, err := c.KVv2("secret").Get(ctx, "later"); err != nil || sec.Data["v"] != "after" {
		t.Fatalf("data changed by a rejected restore: %v %v", sec, err)
	}
	if err := c.Sys().RaftSnapshotRestore(bytes.NewReader(snap.Bytes()), false); err != nil {
		t.Fatal(err)
	}
	sec, err := c.KVv2("secret").Get(ctx, "keep")
	if err != nil || sec.Data["v"] != "before" {
		t.Fatalf("after restore: %v %v", sec, err)
	}
	if _, err := c.KVv2("secret").Get(ctx, "later"); statusOf(err) != 0 && err == nil {
		t.Fatal("post-snapshot data survived restore")
	} else if err == nil {
		t.Fatal("post-snapshot data survived restore")
	}
}

func TestBadInput(t *testing.T) {
	s := devServer(t)
	c := s.Client
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("X-Vault-Token", s.RootToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"malformed json", "POST", "/v1/secret/data/x", `{"data":`, 400, "failed to parse JSON"},
		{"json array", "POST", "/v1/secret/data/x", `[1,2]`, 400, "JSON object"},
		{"wrong type", "POST", "/v1/secret/data/x", `{"data":{"a":1},"options":{"cas":"abc"}}`, 400, ""},
		{"unknown mount", "GET", "/v1/nomount/x", ``, 404, "no handler for route"},
		{"dotdot", "GET", "/v1/secret/data/../../sys/mounts", ``, 400, "relative path"},
		{"double slash", "GET", "/v1/secret//data/x", ``, 400, "empty path segment"},
		{"encoded slash", "GET", "/v1/secret/data%2Fx", ``, 400, "encoded slashes"},
		{"method", "TRACE", "/v1/secret/data/x", ``, 405, ""},
		{"oversized", "POST", "/v1/secret/data/x", `{"data":{"a":"` + strings.Repeat("x", 33<<20) + `"}}`, 413, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := do(tc.method, tc.path, tc.body)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, body)
			}
			if tc.contains != "" && !strings.Contains(body, tc.contains) {
				t.Fatalf("body %q does not contain %q", body, tc.contains)
			}
			if !strings.Contains(body, `"errors"`) && st >= 400 {
				t.Fatalf("error body not in Vault's shape: %s", body)
			}
		})
	}
	// CAS mismatch uses Vault's text.
	ctx := context.Background()
	if _, err := c.KVv2("secret").Put(ctx, "cas", map[string]any{"a": "1"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.KVv2("secret").Put(ctx, "cas", map[string]any{"a": "2"}, vaultapi.WithCheckAndSet(0))
	wantStatus(t, err, http.StatusBadRequest)
	if !strings.Contains(err.Error(), "check-and-set parameter did not match the current version") {
		t.Fatalf("CAS error text: %v", err)
	}
	// A version that does not exist.
	_, err = c.KVv2("secret").GetVersion(ctx, "cas", 99)
	if err == nil {
		t.Fatal("reading a missing version succeeded")
	}
	// The server is still fine.
	if _, err := c.Sys().Health(); err != nil {
		t.Fatal(err)
	}
}
