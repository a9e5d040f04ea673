package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/config"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// mustUninitServer starts a server that has not been initialised, with the
// durable audit device a server outside -dev needs to serve requests.
func mustUninitServer(t *testing.T) *servertest.Server {
	t.Helper()
	dir := t.TempDir()
	s := servertest.MustStart(t, wire.Options, servertest.Options{NoInit: true, Dir: dir, Configure: func(c *config.Config) {
		c.Audit = []config.Block{{Type: "file", Name: "file", File: "test.hcl", Line: 1,
			Options: map[string]config.Value{"path": {Value: filepath.Join(dir, "audit", "audit.log")}}}}
	}})
	pointCLI(t, s)
	t.Setenv("VIGIL_TOKEN", "")
	return s
}

func TestOperatorInitUnsealSeal(t *testing.T) {
	mustUninitServer(t)

	runCLI(t, "operator", "init", "-status").wantCode(t, 2)
	out := mustOK(t, "operator", "init", "-key-shares=3", "-key-threshold=2")
	keys := regexp.MustCompile(`(?m)^Unseal Key (\d): (\S+)$`).FindAllStringSubmatch(out, -1)
	if len(keys) != 3 || keys[0][1] != "1" || keys[2][1] != "3" {
		t.Fatalf("want 3 unseal keys:\n%s", out)
	}
	root := regexp.MustCompile(`(?m)^Initial Root Token: (\S+)$`).FindStringSubmatch(out)
	if root == nil {
		t.Fatalf("no root token:\n%s", out)
	}
	if !strings.Contains(out, "3 key shares and a key threshold of 2") {
		t.Fatalf("summary missing:\n%s", out)
	}
	if got := mustOK(t, "operator", "init", "-status"); !strings.Contains(got, "is initialized") {
		t.Fatalf("init -status: %q", got)
	}
	runCLI(t, "operator", "init").wantCode(t, 2, "Error initializing", "already initialized")

	// Unseal: a garbled share is refused with the server's message; the
	// first good share shows progress; -reset discards it; two shares
	// (one from stdin, as a prompt-less pipe) unseal.
	runCLI(t, "operator", "unseal", "not-a-key").wantCode(t, 2, "Error unsealing", "Code: 400")
	r := runCLI(t, "operator", "unseal", keys[0][2])
	r.wantCode(t, 0)
	if got := tableValue(t, r.out, "Unseal Progress"); got != "1/2" {
		t.Fatalf("progress %q\n%s", got, r.out)
	}
	if got := tableValue(t, mustOK(t, "operator", "unseal", "-reset"), "Unseal Progress"); got != "0/2" {
		t.Fatalf("after reset: progress %q", got)
	}
	mustOK(t, "operator", "unseal", keys[1][2])
	r = runCLIStdin(t, keys[2][2]+"\n", "operator", "unseal")
	r.wantCode(t, 0)
	if got := tableValue(t, r.out, "Sealed"); got != "false" {
		t.Fatalf("still sealed:\n%s", r.out)
	}
	mustOK(t, "status")

	// The root token works; seal needs it.
	runCLI(t, "operator", "seal").wantCode(t, 2, "Error sealing")
	t.Setenv("VIGIL_TOKEN", root[1])
	if got := mustOK(t, "token", "lookup", "-field=policies"); got != "[root]" {
		t.Fatalf("root token policies: %q", got)
	}
	if got := mustOK(t, "operator", "seal"); !strings.Contains(got, "Success! Vigil is sealed.") {
		t.Fatalf("seal: %q", got)
	}
	runCLI(t, "status").wantCode(t, 2)
	runCLI(t, "kv", "get", "secret/x").wantCode(t, 2, "sealed")
}

func TestOperatorInitJSON(t *testing.T) {
	s := mustUninitServer(t)
	var res initOutput
	if err := json.Unmarshal([]byte(mustOK(t, "operator", "init", "-format=json")), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.UnsealKeysB64) != 5 || len(res.UnsealKeysHex) != 5 || res.UnsealThreshold != 3 || res.UnsealShares != 5 || res.RootToken == "" {
		t.Fatalf("init json: %+v", res)
	}
	// Hex and base64 keys both unseal.
	for _, k := range []string{res.UnsealKeysHex[0], res.UnsealKeysB64[1], res.UnsealKeysHex[2]} {
		mustOK(t, "operator", "unseal", k)
	}
	st, err := s.Client.Sys().SealStatus()
	if err != nil || st.Sealed {
		t.Fatalf("still sealed: %+v %v", st, err)
	}
}

func TestOperatorUsageErrors(t *testing.T) {
	mustCLIServer(t)
	runCLI(t, "operator", "init", "extra").wantCode(t, 1, "Too many arguments")
	runCLI(t, "operator", "unseal", "a", "b").wantCode(t, 1, "Too many arguments")
	runCLI(t, "operator", "seal", "-nope").wantCode(t, 1, "flag provided but not defined")
	runCLI(t, "operator", "init", "-key-shares=x").wantCode(t, 1, "invalid value")
	// Server-side validation reaches the user verbatim.
	runCLI(t, "operator", "init", "-pgp-keys=abc").wantCode(t, 2, "Error initializing")
	if r := runCLI(t, "operator", "seal", "-h"); r.code != 0 || !strings.Contains(r.err, "Usage: vigil operator seal") {
		t.Fatalf("-h: %+v", r)
	}
}
