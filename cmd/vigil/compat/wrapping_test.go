//go:build compat

package compat

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCLIWrapping drives response wrapping, the cubbyhole, wrapped AppRole
// secret IDs and a two-person control group with the compatibility CLI:
// -wrap-ttl, unwrap (with the token as argument and as the CLI's own
// token), token lookup and sys/wrapping/lookup of a wrapping token, rewrap,
// sys/wrapping/wrap, single use, and sys/control-group/request and
// authorize. It then reads the audit log: no wrapping token and no wrapped
// secret appears in plain, and the control group's records are linked by
// one id.
func TestCLIWrapping(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	startVigil(t, addr, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address="+addr, "-dev-data-dir="+filepath.Join(dir, "vigil"))
	c := &cli{t: t, bin: compatBin(t), addr: "http://" + addr, token: "root"}
	as := func(token string) *cli { return &cli{t: t, bin: c.bin, addr: c.addr, token: token} }
	field := func(cl *cli, args ...string) string { return strings.TrimSpace(cl.ok(args)) }
	var wrapTokens, secrets []string
	secret := func() string {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		s := "pw-" + hex.EncodeToString(b[:])
		secrets = append(secrets, s)
		return s
	}
	spent := func(cl *cli, token string) {
		t.Helper()
		if _, errOut, code := cl.run("", "unwrap", token); code == 0 || !strings.Contains(errOut, "wrapping token is not valid or does not exist") {
			t.Fatalf("unwrap of a spent wrapping token: exit %d: %s", code, errOut)
		}
	}

	// -wrap-ttl on kv get: the client gets only wrap_info.
	pw := secret()
	c.ok([]string{"kv", "put", "secret/db", "password=" + pw})
	out := c.ok([]string{"kv", "get", "-wrap-ttl=5m", "-format=json", "secret/db"})
	if strings.Contains(out, pw) {
		t.Fatalf("a wrapped kv get shows the secret:\n%s", out)
	}
	var wrapped struct {
		Data     any `json:"data"`
		WrapInfo struct {
			Token        string `json:"token"`
			Accessor     string `json:"accessor"`
			TTL          int    `json:"ttl"`
			CreationPath string `json:"creation_path"`
		} `json:"wrap_info"`
	}
	if err := json.Unmarshal([]byte(out), &wrapped); err != nil {
		t.Fatal(err)
	}
	wi := wrapped.WrapInfo
	if wi.Token == "" || wi.Accessor == "" || wi.TTL != 300 || wi.CreationPath != "secret/data/db" || wrapped.Data != nil {
		t.Fatalf("wrapped kv get: %s", out)
	}
	wrapTokens = append(wrapTokens, wi.Token)

	// Looking a wrapping token up spends nothing.
	look := c.jsonOut("token", "lookup", "-format=json", wi.Token)["data"].(map[string]any)
	if str(look["policies"]) != "[response-wrapping]" || str(look["num_uses"]) != "1" || str(look["accessor"]) != wi.Accessor {
		t.Fatalf("token lookup of a wrapping token: %v", look)
	}
	c.ok([]string{"write", "sys/wrapping/lookup", "token=" + wi.Token}, "creation_path", "secret/data/db", "creation_ttl")

	// rewrap: a new token for the same response; the old one is spent.
	re := field(c, "write", "-field=wrapping_token", "sys/wrapping/rewrap", "token="+wi.Token)
	wrapTokens = append(wrapTokens, re)
	if re == "" || re == wi.Token {
		t.Fatalf("rewrap gave %q", re)
	}
	spent(c, wi.Token)
	var un struct {
		Data struct {
			Data map[string]string `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(c.ok([]string{"unwrap", "-format=json", re})), &un); err != nil || un.Data.Data["password"] != pw {
		t.Fatalf("unwrap of the rewrapped token: %v %+v", err, un)
	}
	spent(c, re)

	// unwrap with no argument unwraps the CLI's own token.
	w3 := field(c, "read", "-wrap-ttl=2m", "-field=wrapping_token", "secret/data/db")
	wrapTokens = append(wrapTokens, w3)
	as(w3).ok([]string{"unwrap", "-format=json"}, pw)
	spent(c, w3)

	// sys/wrapping/wrap wraps any data.
	v := secret()
	w4 := field(c, "write", "-wrap-ttl=1m", "-field=wrapping_token", "sys/wrapping/wrap", "note="+v)
	wrapTokens = append(wrapTokens, w4)
	if got := field(c, "unwrap", "-field=note", w4); got != v {
		t.Fatalf("unwrap of sys/wrapping/wrap: %q", got)
	}

	// The cubbyhole is the token's own.
	cv := secret()
	c.ok([]string{"write", "cubbyhole/notes", "n=" + cv})
	c.ok([]string{"read", "-field=n", "cubbyhole/notes"}, cv)
	other := field(c, "token", "create", "-policy=default", "-field=token")
	if out, _, code := as(other).run("", "read", "cubbyhole/notes"); code == 0 || strings.Contains(out, cv) {
		t.Fatalf("another token read the cubbyhole: exit %d: %s", code, out)
	}

	// AppRole secret IDs delivered wrapped, as the AppRole docs recommend.
	c.ok([]string{"auth", "enable", "approle"})
	c.ok([]string{"write", "auth/approle/role/app", "token_policies=default"})
	roleID := field(c, "read", "-field=role_id", "auth/approle/role/app/role-id")
	sw := c.jsonOut("write", "-wrap-ttl=120", "-f", "-format=json", "auth/approle/role/app/secret-id")
	swi, _ := sw["wrap_info"].(map[string]any)
	if swi == nil || str(swi["creation_path"]) != "auth/approle/role/app/secret-id" || sw["data"] != nil {
		t.Fatalf("wrapped secret-id: %v", sw)
	}
	wrapTokens = append(wrapTokens, str(swi["token"]))
	secretID := field(c, "unwrap", "-field=secret_id", str(swi["token"]))
	secrets = append(secrets, secretID)
	login := &cli{t: t, bin: c.bin, addr: c.addr}
	login.ok([]string{"write", "auth/approle/login", "role_id=" + roleID, "secret_id=" + secretID}, "token_policies", "default")
	spent(c, str(swi["token"]))

	// A control group: carol asks, dave approves, carol runs it.
	if _, errOut, code := c.run(`
path "secret/data/phi/*" {
  capabilities = ["read"]
  control_group = {
    factor "clinical-lead" {
      identity {
        group_names = ["clinical-leads"]
        approvals = 1
      }
    }
    max_ttl = "4h"
  }
}
path "sys/control-group/authorize" { capabilities = ["update"] }
`, "policy", "write", "phi", "-"); code != 0 {
		t.Fatalf("policy write: %s", errOut)
	}
	c.ok([]string{"auth", "enable", "userpass"})
	tokens, entities := map[string]string{}, map[string]string{}
	for _, u := range []string{"carol", "dave"} {
		c.ok([]string{"write", "auth/userpass/users/" + u, "password=pw-" + u, "token_policies=phi"})
		tokens[u] = field(login, "login", "-method=userpass", "-no-store", "-field=token", "username="+u, "password=pw-"+u)
		entities[u] = str(c.jsonOut("token", "lookup", "-format=json", tokens[u])["data"].(map[string]any)["entity_id"])
	}
	c.ok([]string{"write", "identity/group", "name=clinical-leads", "member_entity_ids=" + entities["carol"] + "," + entities["dave"]})
	phi := secret()
	c.ok([]string{"kv", "put", "secret/phi/ward-7", "pw=" + phi})
	carol, dave := as(tokens["carol"]), as(tokens["dave"])

	held := carol.ok([]string{"read", "-header=X-Vigil-Reason=INC-42 transfer to ICU", "-format=json", "secret/data/phi/ward-7"})
	if strings.Contains(held, phi) {
		t.Fatalf("a held request was executed:\n%s", held)
	}
	var hw struct {
		WrapInfo struct{ Token, Accessor string } `json:"wrap_info"`
	}
	if err := json.Unmarshal([]byte(held), &hw); err != nil || hw.WrapInfo.Token == "" || hw.WrapInfo.Accessor == "" {
		t.Fatalf("held read: %v\n%s", err, held)
	}
	wrapTokens = append(wrapTokens, hw.WrapInfo.Token)
	if _, errOut, code := carol.run("", "write", "sys/control-group/authorize", "accessor="+hw.WrapInfo.Accessor); code == 0 || !strings.Contains(errOut, "cannot approve it") {
		t.Fatalf("self-approval: exit %d: %s", code, errOut)
	}
	if _, errOut, code := carol.run("", "unwrap", hw.WrapInfo.Token); code == 0 || !strings.Contains(errOut, "needs further approval") {
		t.Fatalf("unwrap before approval: exit %d: %s", code, errOut)
	}
	dave.ok([]string{"write", "sys/control-group/request", "accessor=" + hw.WrapInfo.Accessor}, "secret/data/phi/ward-7", "INC-42 transfer to ICU", "approved", "false")
	dave.ok([]string{"write", "sys/control-group/authorize", "accessor=" + hw.WrapInfo.Accessor}, "approved", "true")
	if _, errOut, code := dave.run("", "unwrap", hw.WrapInfo.Token); code == 0 || !strings.Contains(errOut, "only the requester") {
		t.Fatalf("unwrap by the approver: exit %d: %s", code, errOut)
	}
	carol.ok([]string{"unwrap", "-format=json", hw.WrapInfo.Token}, phi)
	spent(carol, hw.WrapInfo.Token)

	// The audit log: nothing wrapped or wrapping in plain; the control
	// group's records share one id.
	devices := c.jsonOut("audit", "list", "-detailed", "-format=json")
	dev, _ := devices["file/"].(map[string]any)
	opts, _ := dev["options"].(map[string]any)
	logPath := str(opts["path"])
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatalf("audit log (%v): %v", devices, err)
	}
	defer f.Close()
	states := map[string]int{}
	var cgID string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	plainToken := regexp.MustCompile(`"hv[sb]\.[A-Za-z0-9]{8,}"`)
	for sc.Scan() {
		line := sc.Text()
		for _, s := range append(append([]string{}, wrapTokens...), secrets...) {
			if strings.Contains(line, s) {
				t.Errorf("audit entry holds %q in plain: %s", s, line)
			}
		}
		if m := plainToken.FindString(line); m != "" {
			t.Errorf("audit entry holds a token in plain (%s): %s", m, line)
		}
		var e struct {
			Type  string `json:"type"`
			Vigil struct {
				Flags map[string]string `json:"flags"`
			} `json:"vigil"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit entry: %v", err)
		}
		if id := e.Vigil.Flags["control_group"]; id != "" && e.Type == "response" {
			if cgID == "" {
				cgID = id
			} else if id != cgID {
				t.Errorf("two control group ids: %s, %s", cgID, id)
			}
			if e.Vigil.Flags["control_group_requester"] != "userpass/carol" || e.Vigil.Flags["control_group_reason"] != "INC-42 transfer to ICU" {
				t.Errorf("control group entry without requester or reason: %v", e.Vigil.Flags)
			}
			states[e.Vigil.Flags["control_group_state"]]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"pending", "approved", "executed"} {
		if states[s] == 0 {
			t.Errorf("no control group response entry in state %q (states %v)", s, states)
		}
	}
}

// TestAgentWrappedSecretID runs the compatibility binary's agent with
// AppRole auto-auth from a response-wrapped secret ID, as the AppRole docs
// recommend: the agent checks the wrapping token's creation path with
// sys/wrapping/lookup, unwraps it with the wrapping token itself, logs in
// and renders a template; the wrapping token is spent.
func TestAgentWrappedSecretID(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	startVigil(t, addr, "server", "-dev", "-dev-root-token-id=root", "-dev-listen-address="+addr, "-dev-data-dir="+filepath.Join(dir, "vigil"))
	c := &cli{t: t, bin: compatBin(t), addr: "http://" + addr, token: "root"}
	c.ok([]string{"kv", "put", "secret/app", "password=wrapped-one"})
	if _, errOut, code := c.run(`path "secret/data/app" { capabilities = ["read"] }`, "policy", "write", "app", "-"); code != 0 {
		t.Fatalf("policy write: %s", errOut)
	}
	c.ok([]string{"auth", "enable", "approle"})
	c.ok([]string{"write", "auth/approle/role/app", "token_policies=app"})
	roleID := strings.TrimSpace(c.ok([]string{"read", "-field=role_id", "auth/approle/role/app/role-id"}))
	wrapped := strings.TrimSpace(c.ok([]string{"write", "-wrap-ttl=5m", "-f", "-field=wrapping_token", "auth/approle/role/app/secret-id"}))
	for name, v := range map[string]string{"role_id": roleID, "secret_id": wrapped} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, sink := filepath.Join(dir, "kv.out"), filepath.Join(dir, "token")
	agentCfg := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(agentCfg, []byte(`
vault { address = "http://`+addr+`" }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path                   = "`+filepath.Join(dir, "role_id")+`"
      secret_id_file_path                 = "`+filepath.Join(dir, "secret_id")+`"
      secret_id_response_wrapping_path    = "auth/approle/role/app/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" { config = { path = "`+sink+`" } }
}
template {
  contents    = "{{ with secret \"secret/data/app\" }}password={{ .Data.data.password }}{{ end }}"
  destination = "`+out+`"
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := startProc(t, nil, c.bin, "agent", "-config="+agentCfg)
	read := func(p string) string { b, _ := os.ReadFile(p); return strings.TrimSpace(string(b)) }
	waitFor(t, 60*time.Second, "the agent to log in with the wrapped secret ID and render", func() bool { return read(out) != "" })
	if read(out) != "password=wrapped-one" {
		t.Fatalf("template: %q\n%s", read(out), agent.out)
	}
	look := c.jsonOut("token", "lookup", "-format=json", read(sink))["data"].(map[string]any)
	if !strings.Contains(str(look["policies"]), "app") || !strings.HasPrefix(str(look["display_name"]), "approle") {
		t.Fatalf("agent token: %v", look)
	}
	if _, errOut, code := c.run("", "unwrap", wrapped); code == 0 || !strings.Contains(errOut, "wrapping token is not valid or does not exist") {
		t.Fatalf("the wrapped secret ID was not spent: exit %d: %s", code, errOut)
	}
}
