package itest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigilsec/vigil/cmd/vigil/wire"
	"github.com/vigilsec/vigil/core/server/servertest"
)

// fuzzPaths are routes of the real engines and sys/, with a suffix the
// fuzzer appends.
var fuzzPaths = []string{
	"secret/data/", "secret/metadata/", "secret/config", "secret/delete/", "secret/undelete/", "secret/destroy/",
	"transit/keys/", "transit/encrypt/k", "transit/decrypt/k", "transit/rewrap/k", "transit/sign/k", "transit/verify/k",
	"transit/hmac/k", "transit/datakey/plaintext/k", "transit/random/", "transit/hash/", "transit/keys/k/config", "transit/keys/k/rotate",
	"pki/root/generate/internal", "pki/roles/", "pki/issue/", "pki/sign/", "pki/config/urls", "pki/revoke", "pki/cert/",
	"sys/mounts/", "sys/auth/", "sys/policy/", "sys/policies/acl/", "sys/audit/", "sys/audit-hash/", "sys/leases/lookup",
	"sys/leases/renew", "sys/leases/revoke", "sys/capabilities-self", "sys/tools/hash", "sys/tools/random", "sys/wrapping/wrap",
	"sys/mounts/secret/tune", "sys/rekey/init", "sys/rotate", "sys/storage/raft/snapshot",
	"auth/token/create", "auth/token/lookup", "auth/token/roles/", "auth/token/renew", "auth/token/revoke",
	"auth/userpass/users/", "auth/userpass/login/", "auth/approle/role/", "auth/approle/login",
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, "LIST", http.MethodPatch}

// FuzzServerInput sends arbitrary bodies to the real engines and sys/
// routes of a dev server, as root (so authorisation never stops them): no
// input may make the server answer 5xx. Seeds run in every `go test`.
func FuzzServerInput(f *testing.F) {
	for i, p := range fuzzPaths {
		f.Add(uint8(i), uint8(1), "x", []byte(`{}`))
		f.Add(uint8(i), uint8(1), "k", []byte(`{"plaintext":123,"name":[],"type":{"a":1},"ttl":-1,"data":"x"}`))
		_ = p
	}
	for _, b := range []string{`{"ttl":"99999999999999999999h"}`, `{"max_versions":-5,"cas":"x"}`, `{"data":null}`, `{"data":{"a":[[[[]]]]}}`,
		`{"plaintext":"@@notbase64","context":1}`, `{"batch_input":[1,"x",null,{}]}`, `{"common_name":"` + strings.Repeat("a", 3000) + `"}`,
		`{"policy":"path \"x\" { capabilities = [\"read\" }"}`, `{"key_bits":-1,"key_type":"ec"}`, `{"bytes":1e9}`, `{"bytes":-1}`,
		`{"input":12}`, `{"algorithm":"sha3-1024"}`, `{"type":"nope"}`, `{"options":{"version":"9"}}`, `{"increment":"-1h"}`,
		`{"lease_id":{"x":1}}`, `{"token":123}`, `{"policies":"a,,b"}`, `{"password":[]}`, `{"role_id":true,"secret_id":0}`} {
		for _, i := range []uint8{0, 7, 8, 18, 19, 26, 27, 43, 48, 49, 50, 51} {
			f.Add(i, uint8(1), "k", []byte(b))
		}
	}
	srv := servertest.MustStart(f, wire.Options, servertest.Options{Dev: true})
	c := srv.Client
	for _, m := range []struct{ path, typ string }{{"transit", "transit"}, {"pki", "pki"}} {
		if _, err := c.Logical().Write("sys/mounts/"+m.path, map[string]any{"type": m.typ}); err != nil {
			f.Fatal(err)
		}
	}
	for _, a := range []string{"userpass", "approle"} {
		if _, err := c.Logical().Write("sys/auth/"+a, map[string]any{"type": a}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := c.Logical().Write("transit/keys/k", nil); err != nil {
		f.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	f.Fuzz(func(t *testing.T, pathIdx, methodIdx uint8, suffix string, body []byte) {
		path := fuzzPaths[int(pathIdx)%len(fuzzPaths)]
		if strings.HasSuffix(path, "/") {
			path += suffix
		}
		method := fuzzMethods[int(methodIdx)%len(fuzzMethods)]
		// Requests that would stop the server from serving the next input
		// are out of scope here (they have their own tests).
		if strings.HasPrefix(path, "sys/seal") || path == "sys/storage/raft/snapshot" && method != http.MethodGet {
			return
		}
		req, err := http.NewRequest(method, srv.URL+"/v1/"+path, bytes.NewReader(body))
		if err != nil {
			return // not a URL net/http can send
		}
		req.Header.Set("X-Vault-Token", srv.RootToken)
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s /v1/%s %s: %d %s", method, path, body, resp.StatusCode, out)
		}
	})
}
