package itest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/server/servertest"
	"github.com/vigilsec/vigil/reports/query/querysvc"
)

// nsServer is a dev server with a file audit device and the audit query,
// for the namespace tests.
func nsServer(t *testing.T) (*queryServer, string) {
	t.Helper()
	dir := t.TempDir()
	return mustQueryServer(t, dir, nil, nil, querysvc.Options{}), dir
}

// in returns a client of s with token, in namespace ns ("" for the root),
// as vault/api's SetNamespace (the X-Vault-Namespace header) makes it.
func in(s *servertest.Server, token, ns string) *vaultapi.Client {
	c := s.NewClient(token)
	if ns != "" {
		c.SetNamespace(ns)
	}
	return c
}

func mustWrite(t *testing.T, c *vaultapi.Client, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s (namespace %q): %v", path, c.Namespace(), err)
	}
	return s
}

// nsCall is one raw HTTP request: its status, the request id the audit
// log records it under, and the body.
type nsCall struct {
	status int
	id     string
	body   string
}

func rawNS(t *testing.T, s *servertest.Server, token, ns, method, path string, body any) nsCall {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+"/v1/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", token)
	if ns != "" {
		req.Header.Set("X-Vault-Namespace", ns)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return nsCall{status: resp.StatusCode, id: resp.Header.Get("X-Request-Id"), body: string(b)}
}

// tenant creates namespace ns (under its parent), an "admin" policy
// granting everything in it, and returns a token of that namespace with it.
func tenant(t *testing.T, s *servertest.Server, parent, name string) (token string) {
	t.Helper()
	mustWrite(t, in(s, s.RootToken, parent), "sys/namespaces/"+name, nil)
	full := strings.Trim(parent+"/"+name, "/")
	c := in(s, s.RootToken, full)
	if err := c.Sys().PutPolicy("admin", `path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "secret/data/ward", map[string]any{"data": map[string]any{"patient": full}})
	sec := mustWrite(t, c, "auth/token/create", map[string]any{"policies": []string{"admin"}, "ttl": "1h"})
	return sec.Auth.ClientToken
}

// TestNamespaceLifecycle: sys/namespaces in Vault's and OpenBao's shapes:
// create, read, list (per parent), patch the custom metadata, nested
// namespaces, the header and the path prefix addressing the same
// namespace, names Vault refuses refused.
func TestNamespaceLifecycle(t *testing.T) {
	qs, _ := nsServer(t)
	s := qs.Server
	root := s.Client
	a := mustWrite(t, root, "sys/namespaces/hospital-a", map[string]any{"custom_metadata": map[string]any{"tenant": "A"}})
	if id, _ := a.Data["id"].(string); len(id) != 6 || a.Data["path"] != "hospital-a/" || a.Data["locked"] != false || a.Data["tainted"] != false {
		t.Fatalf("create: %+v", a.Data)
	}
	if a.Data["custom_metadata"].(map[string]any)["tenant"] != "A" || a.Data["uuid"] == "" {
		t.Fatalf("create: %+v", a.Data)
	}
	mustWrite(t, root, "sys/namespaces/hospital-b", nil)
	icu := mustWrite(t, in(s, s.RootToken, "hospital-a"), "sys/namespaces/icu", nil)
	if icu.Data["path"] != "hospital-a/icu/" {
		t.Fatalf("nested: %+v", icu.Data)
	}
	// Repeating a create changes nothing.
	again := mustWrite(t, root, "sys/namespaces/hospital-a", nil)
	if again.Data["id"] != a.Data["id"] {
		t.Fatalf("repeated create made a new namespace: %v vs %v", again.Data["id"], a.Data["id"])
	}
	list, err := root.Logical().List("sys/namespaces")
	if err != nil || list == nil {
		t.Fatalf("list: %v %v", list, err)
	}
	if keys := list.Data["keys"].([]any); len(keys) != 2 || keys[0] != "hospital-a/" || keys[1] != "hospital-b/" {
		t.Fatalf("root's children: %v", keys)
	}
	sub, err := in(s, s.RootToken, "hospital-a").Logical().List("sys/namespaces")
	if err != nil || sub == nil || len(sub.Data["keys"].([]any)) != 1 || sub.Data["keys"].([]any)[0] != "icu/" {
		t.Fatalf("hospital-a's children: %+v %v", sub, err)
	}
	if info := sub.Data["key_info"].(map[string]any)["icu/"].(map[string]any); info["path"] != "hospital-a/icu/" {
		t.Fatalf("key_info: %+v", info)
	}
	got, err := root.Logical().Read("sys/namespaces/hospital-a")
	if err != nil || got == nil || got.Data["id"] != a.Data["id"] {
		t.Fatalf("read: %+v %v", got, err)
	}
	// Merge-patch the custom metadata.
	p, err := root.Logical().JSONMergePatch(t.Context(), "sys/namespaces/hospital-a", map[string]any{"custom_metadata": map[string]any{"tenant": nil, "region": "eu"}})
	if err != nil || p.Data["custom_metadata"].(map[string]any)["region"] != "eu" || p.Data["custom_metadata"].(map[string]any)["tenant"] != nil {
		t.Fatalf("patch: %+v %v", p, err)
	}
	for _, bad := range []string{"sys", "auth", "identity", "cubbyhole", "root", "audit", "a b", "x*"} {
		_, err := root.Logical().Write("sys/namespaces/"+url.PathEscape(bad), nil)
		if statusOf(err) != http.StatusBadRequest {
			t.Errorf("namespace %q: %v", bad, err)
		}
	}
	if _, err := in(s, s.RootToken, "nowhere").Logical().Write("sys/namespaces/x", nil); statusOf(err) != http.StatusNotFound {
		t.Fatalf("create under a missing namespace: %v", err)
	}
	// A mount and a namespace cannot take the same path.
	if _, err := root.Logical().Write("sys/namespaces/secret", nil); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("namespace over the root's secret/ mount: %v", err)
	}
	if err := root.Sys().Mount("hospital-b", &vaultapi.MountInput{Type: "kv"}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("mount over a namespace: %v", err)
	}
	// The status paths answer whatever namespace is named, as OpenBao's.
	for _, ns := range []string{"hospital-a", "nowhere"} {
		if r := rawNS(t, s, "", ns, "GET", "sys/seal-status", nil); r.status != http.StatusOK {
			t.Fatalf("seal-status with namespace %s: %d %s", ns, r.status, r.body)
		}
	}
	if r := rawNS(t, s, s.RootToken, "hospital-a", "GET", "sys/health", nil); r.status != http.StatusBadRequest {
		t.Fatalf("sys/health in a namespace: %d %s", r.status, r.body)
	}
	// Header and path prefix address the same namespace, nested too.
	c := in(s, s.RootToken, "hospital-a")
	if err := c.Sys().Mount("secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "hospital-a/secret/data/ward", map[string]any{"data": map[string]any{"beds": "12"}})
	r, err := c.Logical().Read("secret/data/ward")
	if err != nil || r == nil || r.Data["data"].(map[string]any)["beds"] != "12" {
		t.Fatalf("read back through the header: %+v %v", r, err)
	}
	// The root's secret/ is another mount.
	if r, _ := root.Logical().Read("secret/data/ward"); r != nil {
		t.Fatalf("the root's secret/ shows hospital-a's secret: %+v", r.Data)
	}
	mounts, err := c.Sys().ListMounts()
	if err != nil || mounts["secret/"] == nil || mounts["sys/"] == nil || mounts["hospital-a/secret/"] != nil {
		t.Fatalf("hospital-a's mounts: %v %v", mounts, err)
	}
	if m, _ := root.Sys().ListMounts(); m["hospital-a/secret/"] != nil {
		t.Fatal("the root lists hospital-a's mount")
	}
	icuC := in(s, s.RootToken, "hospital-a/icu")
	if err := icuC.Sys().Mount("kv", &vaultapi.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, in(s, s.RootToken, "hospital-a"), "icu/kv/monitor", map[string]any{"v": "1"})
	if r, err := icuC.Logical().Read("kv/monitor"); err != nil || r == nil || r.Data["v"] != "1" {
		t.Fatalf("header and path combined: %+v %v", r, err)
	}
}

// TestNamespaceIsolationMatrix: a token of namespace A, whatever its
// policies in A, cannot see or act in namespace B — mounts, secrets,
// policies, tokens, identity, sys/audit, audit queries — whether B is named
// by the header or by the path; the same calls in A succeed; every refusal
// is in the audit log (request and response entries, with B's namespace).
func TestNamespaceIsolationMatrix(t *testing.T) {
	qs, dir := nsServer(t)
	s := qs.Server
	tokA := tenant(t, s, "", "hospital-a")
	tokB := tenant(t, s, "", "hospital-b")
	tokAChild := tenant(t, s, "hospital-a", "icu")
	self, err := in(s, tokB, "hospital-b").Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	accB := self.Data["accessor"].(string)
	entB := mustWrite(t, in(s, s.RootToken, "hospital-b"), "identity/entity", map[string]any{"name": "patient-b"}).Data["id"].(string)
	grpB := mustWrite(t, in(s, s.RootToken, "hospital-b"), "identity/group", map[string]any{"name": "ward-b", "member_entity_ids": []string{entB}}).Data["id"].(string)
	entA := mustWrite(t, in(s, s.RootToken, "hospital-a"), "identity/entity", map[string]any{"name": "patient-a"}).Data["id"].(string)
	nsB, _ := s.Client.Logical().Read("sys/namespaces/hospital-b")
	idB := nsB.Data["id"].(string)
	if !strings.HasSuffix(tokB, "."+idB) || !strings.HasSuffix(accB, "."+idB) {
		t.Fatalf("token %q and accessor %q do not end in .%s", tokB, accB, idB)
	}
	type call struct {
		what, method, path string
		body               any
	}
	calls := []call{
		{"mounts: list", "GET", "sys/mounts", nil},
		{"mounts: enable", "POST", "sys/mounts/stolen", map[string]any{"type": "kv"}},
		{"mounts: disable", "DELETE", "sys/mounts/secret", nil},
		{"auth methods: enable", "POST", "sys/auth/userpass", map[string]any{"type": "userpass"}},
		{"secrets: read", "GET", "secret/data/ward", nil},
		{"secrets: write", "POST", "secret/data/ward", map[string]any{"data": map[string]any{"x": "y"}}},
		{"secrets: list", "LIST", "secret/metadata/", nil},
		{"policies: list", "LIST", "sys/policies/acl", nil},
		{"policies: read", "GET", "sys/policies/acl/admin", nil},
		{"policies: write", "POST", "sys/policies/acl/evil", map[string]any{"policy": `path "*" { capabilities = ["read"] }`}},
		{"tokens: create", "POST", "auth/token/create", map[string]any{"policies": []string{"admin"}}},
		{"tokens: lookup by accessor", "POST", "auth/token/lookup-accessor", map[string]any{"accessor": accB}},
		{"tokens: revoke by accessor", "POST", "auth/token/revoke-accessor", map[string]any{"accessor": accB}},
		{"tokens: list accessors", "LIST", "auth/token/accessors", nil},
		{"identity: list entities", "LIST", "identity/entity/id", nil},
		{"identity: create entity", "POST", "identity/entity", map[string]any{"name": "mallory"}},
		{"identity: create group", "POST", "identity/group", map[string]any{"name": "g"}},
		{"capabilities", "POST", "sys/capabilities-self", map[string]any{"path": "secret/data/ward"}},
		{"capabilities of B's token", "POST", "sys/capabilities-accessor", map[string]any{"accessor": accB, "path": "secret/data/ward"}},
		{"explain B's token", "POST", "sys/policies/explain", map[string]any{"accessor": accB, "path": "secret/data/ward"}},
		{"leases", "LIST", "sys/leases/lookup/secret/", nil},
		{"namespaces: create", "POST", "sys/namespaces/shadow", nil},
		{"sys/audit", "GET", "sys/audit", nil},
		{"audit query", "GET", "sys/audit/query", nil},
		{"compliance checks", "GET", "sys/compliance/checks", nil},
		{"auth methods: list", "GET", "sys/auth", nil},
		{"mounts: tune", "POST", "sys/mounts/secret/tune", map[string]any{"description": "taken"}},
		{"mounts: read tuning", "GET", "sys/mounts/secret/tune", nil},
		{"mounts: remount", "POST", "sys/remount", map[string]any{"from": "secret", "to": "moved"}},
		{"leases: revoke-prefix", "POST", "sys/leases/revoke-prefix/auth/token/", nil},
		{"token roles: write", "POST", "auth/token/roles/ops", map[string]any{"allowed_policies": "admin"}},
		{"token roles: list", "LIST", "auth/token/roles", nil},
		{"identity: read entity by name", "GET", "identity/entity/name/patient-b", nil},
		{"identity: look up entity", "POST", "identity/lookup/entity", map[string]any{"name": "patient-b"}},
		{"ui mounts", "GET", "sys/internal/ui/mounts/secret", nil},
		{"policies (legacy API)", "GET", "sys/policy", nil},
		{"namespaces: list", "LIST", "sys/namespaces", nil},
	}
	// Control: the token of B does all of this in B (sys/audit excepted:
	// it is the root namespace's, refused in every namespace; and what
	// would destroy the state the checks below look at).
	for _, c := range calls {
		switch c.what {
		case "sys/audit", "tokens: revoke by accessor", "mounts: disable", "secrets: write", "policies: write",
			"mounts: tune", "mounts: remount", "leases: revoke-prefix":
			continue
		}
		if r := rawNS(t, s, tokB, "hospital-b", c.method, c.path, c.body); r.status >= 400 && r.status != 404 {
			t.Errorf("control: B's token, %s in B: %d %s", c.what, r.status, r.body)
		}
	}
	type attempt struct {
		who, token, ns, prefix string
		// notFound: the path is inside the caller's own namespace and
		// names nothing there (404), which reaches B no more than a
		// refusal does.
		notFound bool
	}
	attempts := []attempt{
		{"A's token, header hospital-b", tokA, "hospital-b", "", false},
		{"A's token, path hospital-b/", tokA, "", "hospital-b/", false},
		{"A's token, header hospital-a, path hospital-b/ (hospital-a/hospital-b/)", tokA, "hospital-a", "hospital-b/", true},
		{"A's child's token, header hospital-a (its parent)", tokAChild, "hospital-a", "", false},
		{"A's child's token, in hospital-b", tokAChild, "hospital-b", "", false},
		{"A's token, in the root namespace", tokA, "", "", false},
	}
	var refused []string
	what := map[string]string{}
	for _, at := range attempts {
		for _, c := range calls {
			r := rawNS(t, s, at.token, at.ns, c.method, at.prefix+c.path, c.body)
			if r.status != http.StatusForbidden && r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
				t.Errorf("%s: %s: %d %s (want refused)", at.who, c.what, r.status, r.body)
				continue
			}
			if r.status == http.StatusNotFound && !at.notFound && !strings.Contains(r.body, "namespace not found") {
				// A 404 would only be acceptable for a namespace that
				// does not exist from where the caller stands.
				t.Errorf("%s: %s: 404 %s", at.who, c.what, r.body)
			}
			refused = append(refused, r.id)
			what[r.id] = at.who + ": " + c.what
		}
	}
	// From inside A, B's token is unknown: by accessor, for lookups,
	// capabilities and explanations.
	for _, c := range []call{
		{"lookup B's accessor", "POST", "auth/token/lookup-accessor", map[string]any{"accessor": accB}},
		{"capabilities of B's token", "POST", "sys/capabilities-accessor", map[string]any{"accessor": accB, "path": "secret/data/ward"}},
		{"explain B's token", "POST", "sys/policies/explain", map[string]any{"accessor": accB, "path": "secret/data/ward"}},
		{"capabilities of B's token by value", "POST", "sys/capabilities", map[string]any{"token": tokB, "path": "secret/data/ward"}},
		{"B's entity by id", "GET", "identity/entity/id/" + entB, nil},
		{"update B's entity by id", "POST", "identity/entity/id/" + entB, map[string]any{"policies": []string{"admin"}}},
		{"delete B's entity by id", "DELETE", "identity/entity/id/" + entB, nil},
		{"batch-delete B's entity", "POST", "identity/entity/batch-delete", map[string]any{"entity_ids": []string{entB}}},
		{"merge B's entity into A's", "POST", "identity/entity/merge", map[string]any{"from_entity_ids": []string{entB}, "to_entity_id": entA}},
		{"look up B's entity by id", "POST", "identity/lookup/entity", map[string]any{"id": entB}},
		{"B's group by id", "GET", "identity/group/id/" + grpB, nil},
		{"add B's entity to a group of A", "POST", "identity/group", map[string]any{"name": "grab", "member_entity_ids": []string{entB}}},
		{"B's lease", "POST", "sys/leases/lookup", map[string]any{"lease_id": "hospital-b/auth/token/create/x"}},
	} {
		r := rawNS(t, s, tokA, "hospital-a", c.method, c.path, c.body)
		if r.status == http.StatusNoContent && (c.what == "batch-delete B's entity" || c.what == "delete B's entity by id" || c.what == "look up B's entity by id") {
			continue // as Vault: ids it does not find are skipped; B's entity is checked below

		}
		if r.status != http.StatusBadRequest && r.status != http.StatusForbidden && r.status != http.StatusNotFound {
			t.Errorf("A's token in A: %s: %d %s", c.what, r.status, r.body)
		}
		refused = append(refused, r.id)
	}
	// B is intact.
	if e, err := in(s, s.RootToken, "hospital-b").Logical().Read("identity/entity/id/" + entB); err != nil || e == nil || e.Data["name"] != "patient-b" {
		t.Fatalf("hospital-b's entity after the attempts: %+v %v", e, err)
	}
	if g, err := in(s, s.RootToken, "hospital-b").Logical().Read("identity/group/id/" + grpB); err != nil || g == nil || len(g.Data["member_entity_ids"].([]any)) != 1 {
		t.Fatalf("hospital-b's group after the attempts: %+v %v", g, err)
	}
	r, err := in(s, tokB, "hospital-b").Logical().Read("secret/data/ward")
	if err != nil || r == nil || r.Data["data"].(map[string]any)["patient"] != "hospital-b" {
		t.Fatalf("hospital-b's secret after the attempts: %+v %v", r, err)
	}
	if pol, err := in(s, tokB, "hospital-b").Sys().GetPolicy("evil"); err != nil || pol != "" {
		t.Fatalf("a policy was written into hospital-b: %q %v", pol, err)
	}
	if mounts, err := in(s, tokB, "hospital-b").Sys().ListMounts(); err != nil || mounts["secret/"] == nil {
		t.Fatalf("hospital-b's mounts changed: %v %v", mounts, err)
	}
	if _, err := in(s, tokB, "hospital-b").Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("B's token was revoked by another namespace: %v", err)
	}
	// Every refusal is audited: request and response entries, with an
	// error.
	qs.checkpointNow(t)
	lines := entries(readLog(t, auditLogPath(dir)))
	byID := map[string][]logLine{}
	for _, l := range lines {
		byID[l.requestID()] = append(byID[l.requestID()], l)
	}
	for _, id := range refused {
		ls := byID[id]
		if len(ls) != 2 || ls[0].Type != "request" || ls[1].Type != "response" || ls[1].Error == "" {
			t.Fatalf("refused request %s (%s) is not audited as refused: %+v", id, what[id], ls)
		}
	}
	// The first attempt named hospital-b: its entries say so.
	first := byID[refused[0]][1]
	ns, _ := first.Request["namespace"].(map[string]any)
	if ns["id"] != idB || ns["path"] != "hospital-b/" {
		t.Fatalf("namespace of a refused request in hospital-b: %v", first.Request["namespace"])
	}
}

// TestNamespaceNesting: a child namespace inherits nothing it is not given.
// A parent's token acts in the child only where a policy of the parent
// names the child's paths (Vault's rule); the child's token never acts in
// its parent; the root token acts everywhere; a namespace with children
// cannot be deleted.
func TestNamespaceNesting(t *testing.T) {
	qs, _ := nsServer(t)
	s := qs.Server
	tenant(t, s, "", "bank")
	tokChild := tenant(t, s, "bank", "branch")
	bank := in(s, s.RootToken, "bank")
	if err := bank.Sys().PutPolicy("teller", `path "secret/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := bank.Sys().PutPolicy("auditor-of-branch", `path "branch/secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	teller := mustWrite(t, bank, "auth/token/create", map[string]any{"policies": []string{"teller"}}).Auth.ClientToken
	reader := mustWrite(t, bank, "auth/token/create", map[string]any{"policies": []string{"auditor-of-branch"}}).Auth.ClientToken
	// The teller's secret/* is bank/secret/*, not the branch's.
	if _, err := in(s, teller, "bank").Logical().Read("secret/data/ward"); err != nil {
		t.Fatalf("teller in bank: %v", err)
	}
	_, err := in(s, teller, "bank/branch").Logical().Read("secret/data/ward")
	wantStatus(t, err, http.StatusForbidden)
	// A policy of the parent naming the child's path reaches into it.
	if r, err := in(s, reader, "bank/branch").Logical().Read("secret/data/ward"); err != nil || r == nil {
		t.Fatalf("parent policy naming the child's path: %+v %v", r, err)
	}
	if r, err := in(s, reader, "bank").Logical().Read("branch/secret/data/ward"); err != nil || r == nil {
		t.Fatalf("the same through the path prefix: %+v %v", r, err)
	}
	_, err = in(s, reader, "bank/branch").Logical().Write("secret/data/ward", map[string]any{"data": map[string]any{"x": "1"}})
	wantStatus(t, err, http.StatusForbidden)
	// The child's token (admin of the branch) cannot act in the bank.
	_, err = in(s, tokChild, "bank").Logical().Read("secret/data/ward")
	wantStatus(t, err, http.StatusForbidden)
	// The child's own policies are its own: the bank has no "admin" of
	// the branch's.
	pols, err := in(s, s.RootToken, "bank/branch").Sys().ListPolicies()
	if err != nil || !slices.Contains(pols, "admin") || slices.Contains(pols, "teller") {
		t.Fatalf("branch policies: %v %v", pols, err)
	}
	// The root token reaches everything.
	if r, err := in(s, s.RootToken, "bank/branch").Logical().Read("secret/data/ward"); err != nil || r == nil {
		t.Fatalf("root in the child: %v", err)
	}
	// A namespace with children cannot be deleted.
	_, err = s.Client.Logical().Delete("sys/namespaces/bank")
	wantStatus(t, err, http.StatusBadRequest)
	// A token of a namespace never carries the root policy.
	_, err = bank.Logical().Write("auth/token/create", map[string]any{"policies": []string{"root"}})
	wantStatus(t, err, http.StatusBadRequest)
	// *-self reaches the token's namespace from anywhere, as in Vault.
	self, err := in(s, tokChild, "").Auth().Token().LookupSelf()
	if err != nil || self.Data["accessor"] == nil {
		t.Fatalf("lookup-self of a branch token from the root: %+v %v", self, err)
	}
}

// TestNamespaceDeletion: deleting a namespace revokes its tokens (login
// tokens and their children) and its leases (through the Dispatcher,
// audited), disables its mounts and auth methods and deletes their data,
// its policies and its identity; a namespace created again at the same
// path starts empty.
func TestNamespaceDeletion(t *testing.T) {
	qs, dir := nsServer(t)
	s := qs.Server
	admin := tenant(t, s, "", "clinic")
	c := in(s, admin, "clinic")
	// A lease: a PKI certificate issued in the namespace.
	if err := c.Sys().Mount("pki", &vaultapi.MountInput{Type: "pki"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "pki/root/generate/internal", map[string]any{"common_name": "clinic.example", "ttl": "24h"})
	mustWrite(t, c, "pki/roles/web", map[string]any{"allowed_domains": "clinic.example", "allow_subdomains": true, "max_ttl": "2h", "generate_lease": true})
	cert := mustWrite(t, c, "pki/issue/web", map[string]any{"common_name": "www.clinic.example", "ttl": "1h"})
	if !strings.HasPrefix(cert.LeaseID, "clinic/pki/issue/web/") {
		t.Fatalf("lease id %q", cert.LeaseID)
	}
	if l, err := c.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": cert.LeaseID}); err != nil || l == nil {
		t.Fatalf("lease lookup in its namespace: %v", err)
	}
	if _, err := s.Client.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": cert.LeaseID}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("the root looked up a namespace's lease from the root namespace: %v", err)
	}
	// A login, an entity, a group and a child token.
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "auth/userpass/users/nurse", map[string]any{"password": "pw", "token_policies": "admin"})
	login, err := in(s, "", "clinic").Logical().Write("auth/userpass/login/nurse", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	child := mustWrite(t, in(s, login.Auth.ClientToken, "clinic"), "auth/token/create", map[string]any{"policies": []string{"admin"}}).Auth.ClientToken
	mustWrite(t, c, "identity/group", map[string]any{"name": "nurses", "member_entity_ids": login.Auth.EntityID})
	mustWrite(t, c, "secret/data/chart", map[string]any{"data": map[string]any{"bp": "120/80"}})

	del, err := s.Client.Logical().Delete("sys/namespaces/clinic")
	if err != nil || del == nil || del.Data["status"] != "deleted" {
		t.Fatalf("delete: %+v %v", del, err)
	}
	for name, tok := range map[string]string{"admin": admin, "login": login.Auth.ClientToken, "child": child} {
		if _, err := in(s, tok, "").Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
			t.Errorf("%s token still valid: %v", name, err)
		}
	}
	if _, err := in(s, s.RootToken, "clinic").Sys().ListMounts(); statusOf(err) != http.StatusNotFound {
		t.Fatalf("the deleted namespace still answers: %v", err)
	}
	// The lease was revoked through the Dispatcher (an internal, audited
	// revocation of the namespace's lease).
	qs.checkpointNow(t)
	revoked := false
	for _, l := range entries(readLog(t, auditLogPath(dir))) {
		if l.Type == "response" && l.Request["operation"] == "revoke" && l.Request["mount_point"] == "clinic/pki/" && l.Error == "" {
			revoked = true
		}
	}
	if !revoked {
		t.Fatal("no audited revocation of the namespace's PKI lease")
	}
	if ids, _ := s.Client.Logical().List("sys/leases/lookup/clinic/"); ids != nil {
		t.Fatalf("leases left: %+v", ids.Data)
	}
	// Recreated: nothing of the old one is there.
	mustWrite(t, s.Client, "sys/namespaces/clinic", nil)
	c2 := in(s, s.RootToken, "clinic")
	pols, err := c2.Sys().ListPolicies()
	if err != nil || slices.Contains(pols, "admin") || !slices.Contains(pols, "default") {
		t.Fatalf("policies of the recreated namespace: %v %v", pols, err)
	}
	mounts, err := c2.Sys().ListMounts()
	if err != nil || mounts["secret/"] != nil || mounts["pki/"] != nil {
		t.Fatalf("mounts of the recreated namespace: %v %v", mounts, err)
	}
	auths, _ := c2.Sys().ListAuth()
	if auths["userpass/"] != nil {
		t.Fatal("the old auth method survived")
	}
	if l, _ := c2.Logical().List("identity/entity/id"); l != nil {
		t.Fatalf("the old entities survived: %+v", l.Data)
	}
	if l, _ := c2.Logical().List("identity/group/id"); l != nil {
		t.Fatalf("the old groups survived: %+v", l.Data)
	}
	// Deleting what does not exist warns, as OpenBao does.
	w, err := s.Client.Logical().Delete("sys/namespaces/nowhere")
	if err != nil || w == nil || len(w.Warnings) == 0 {
		t.Fatalf("delete of a missing namespace: %+v %v", w, err)
	}
}

// TestNamespaceLockUnlock: a locked namespace and its children refuse
// every request (503, Vault's message, audited) but their own unlock; the
// unlock key unlocks it, a wrong key does not, and a caller with sudo may
// unlock without the key.
func TestNamespaceLockUnlock(t *testing.T) {
	qs, dir := nsServer(t)
	s := qs.Server
	tokA := tenant(t, s, "", "ward")
	tenant(t, s, "ward", "beds")
	lock := mustWrite(t, s.Client, "sys/namespaces/api-lock/lock/ward", nil)
	key, _ := lock.Data["unlock_key"].(string)
	if key == "" {
		t.Fatalf("lock: %+v", lock.Data)
	}
	info, _ := s.Client.Logical().Read("sys/namespaces/ward")
	if info.Data["locked"] != true {
		t.Fatalf("read of a locked namespace: %+v", info.Data)
	}
	var refused []string
	for _, ns := range []string{"ward", "ward/beds"} {
		for _, tok := range []string{tokA, s.RootToken} {
			r := rawNS(t, s, tok, ns, "GET", "secret/data/ward", nil)
			if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, `API access to this namespace has been locked by an administrator - \"ward/\" must be unlocked`) {
				t.Fatalf("%s in locked %s: %d %s", tok[:4], ns, r.status, r.body)
			}
			refused = append(refused, r.id)
		}
	}
	// Other namespaces and the root are untouched.
	if _, err := s.Client.Logical().Read("secret/data/x"); statusOf(err) == http.StatusServiceUnavailable {
		t.Fatal("the root namespace is locked too")
	}
	if r := rawNS(t, s, tokA, "ward", "POST", "sys/namespaces/api-lock/unlock", map[string]any{"unlock_key": "wrong"}); r.status != http.StatusBadRequest {
		t.Fatalf("wrong key: %d %s", r.status, r.body)
	}
	if r := rawNS(t, s, tokA, "ward", "POST", "sys/namespaces/api-lock/unlock", map[string]any{"unlock_key": key}); r.status >= 300 {
		t.Fatalf("unlock from inside with the key: %d %s", r.status, r.body)
	}
	if _, err := in(s, tokA, "ward/beds").Logical().Read("secret/data/ward"); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	// Lock the child; unlock it from the parent with sudo, without a key.
	mustWrite(t, in(s, tokA, "ward"), "sys/namespaces/api-lock/lock/beds", nil)
	if _, err := in(s, tokA, "ward/beds").Logical().Read("secret/data/ward"); statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("locked child: %v", err)
	}
	if _, err := in(s, tokA, "ward").Logical().Read("secret/data/ward"); err != nil {
		t.Fatalf("the parent of a locked child is locked: %v", err)
	}
	un, err := in(s, tokA, "ward").Logical().Write("sys/namespaces/api-lock/unlock/beds", nil)
	if err != nil || un == nil || len(un.Warnings) == 0 {
		t.Fatalf("sudo unlock: %+v %v", un, err)
	}
	qs.checkpointNow(t)
	byID := map[string]int{}
	for _, l := range entries(readLog(t, auditLogPath(dir))) {
		byID[l.requestID()]++
	}
	for _, id := range refused {
		if byID[id] != 2 {
			t.Fatalf("refused request %s has %d audit entries", id, byID[id])
		}
	}
}

// TestNamespaceAudit: a request in a namespace is audited with
// request.namespace {id, path}, the full mount point and the namespace of
// its granting policy, as Vault writes them; a request in the root has
// {"id": "root"} only.
func TestNamespaceAudit(t *testing.T) {
	qs, dir := nsServer(t)
	s := qs.Server
	tok := tenant(t, s, "", "hq")
	nsInfo, _ := s.Client.Logical().Read("sys/namespaces/hq")
	id := nsInfo.Data["id"].(string)
	r := rawNS(t, s, tok, "hq", "GET", "secret/data/ward", nil)
	rootCall := rawNS(t, s, s.RootToken, "", "GET", "secret/data/nothing", nil)
	if r.status != 200 {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	qs.checkpointNow(t)
	var got, rootEntry *logLine
	for _, l := range entries(readLog(t, auditLogPath(dir))) {
		switch {
		case l.requestID() == r.id && l.Type == "response":
			got = &l
		case l.requestID() == rootCall.id && l.Type == "response":
			rootEntry = &l
		}
	}
	if got == nil || rootEntry == nil {
		t.Fatal("entries not found")
	}
	ns := got.Request["namespace"].(map[string]any)
	if ns["id"] != id || ns["path"] != "hq/" || got.Request["path"] != "secret/data/ward" || got.Request["mount_point"] != "hq/secret/" {
		t.Fatalf("request of the namespaced entry: %+v", got.Request)
	}
	gp := got.Auth["policy_results"].(map[string]any)["granting_policies"].([]any)[0].(map[string]any)
	if gp["name"] != "admin" || gp["namespace_id"] != id || gp["namespace_path"] != "hq/" {
		t.Fatalf("granting policy: %+v", gp)
	}
	if !strings.Contains(got.Raw, `"namespace":{"id":"`+id+`","path":"hq/"}`) {
		t.Fatalf("line: %s", got.Raw)
	}
	if !strings.Contains(rootEntry.Raw, `"namespace":{"id":"root"},"path"`) {
		t.Fatalf("root line: %s", rootEntry.Raw)
	}
}

// TestNamespaceAuditor: the auditor policy written in a namespace makes an
// auditor of that namespace alone: queries, reports and compliance checks
// made there cover it and its children, never another namespace, whatever
// the parameters; the root's auditor can scope a query to a namespace.
func TestNamespaceAuditor(t *testing.T) {
	qs, _ := nsServer(t)
	s := qs.Server
	tokA := tenant(t, s, "", "hospital-a")
	tokB := tenant(t, s, "", "hospital-b")
	tenant(t, s, "hospital-a", "icu")
	a := in(s, s.RootToken, "hospital-a")
	if err := a.Sys().PutPolicy("auditor", querysvc.AuditorPolicy); err != nil {
		t.Fatal(err)
	}
	auditor := mustWrite(t, a, "auth/token/create", map[string]any{"policies": []string{"auditor"}}).Auth.ClientToken
	for i := 0; i < 3; i++ {
		in(s, tokA, "hospital-a").Logical().Read("secret/data/ward")
		in(s, tokB, "hospital-b").Logical().Read("secret/data/ward")
	}
	qs.checkpointNow(t)
	scoped := func(params url.Values, wantNS func(string) bool) int {
		t.Helper()
		c := in(s, auditor, "hospital-a")
		sec, err := c.Logical().ReadWithDataWithContext(t.Context(), "sys/audit/query", params)
		if err != nil || sec == nil {
			t.Fatalf("query %v: %v", params, err)
		}
		recs, _ := sec.Data["records"].([]any)
		for _, r := range recs {
			ns, _ := r.(map[string]any)["namespace"].(string)
			if !wantNS(ns) {
				t.Fatalf("query %v in hospital-a returned a record of %q", params, ns)
			}
		}
		return len(recs)
	}
	inA := func(ns string) bool { return strings.HasPrefix(ns, "hospital-a/") }
	if n := scoped(url.Values{}, inA); n < 3 {
		t.Fatalf("hospital-a's auditor sees %d records", n)
	}
	// namespace= is relative to where the query is made: it cannot leave.
	scoped(url.Values{"namespace": {"hospital-b"}}, func(ns string) bool { return ns == "hospital-a/hospital-b/" })
	scoped(url.Values{"namespace": {"root"}}, inA)
	scoped(url.Values{"namespace": {"icu"}}, func(ns string) bool { return strings.HasPrefix(ns, "hospital-a/icu/") })
	// The auditor is no auditor in the root or in hospital-b.
	_, err := in(s, auditor, "hospital-b").Logical().Read("sys/audit/query")
	wantStatus(t, err, http.StatusForbidden)
	_, err = in(s, auditor, "").Logical().Read("sys/audit/query")
	wantStatus(t, err, http.StatusForbidden)
	// The root's auditor scopes by namespace.
	res := apiQueryAll(t, s, s.RootToken, url.Values{"namespace": {"hospital-b"}})
	if len(res.Records) == 0 {
		t.Fatal("no records of hospital-b for the root")
	}
	for _, r := range res.Records {
		if r.Namespace != "hospital-b/" {
			t.Fatalf("root query scoped to hospital-b returned %q", r.Namespace)
		}
	}
	// Compliance checks in the namespace: its own policies, no
	// server-wide checks.
	chk, err := in(s, auditor, "hospital-a").Logical().Read("sys/compliance/checks")
	if err != nil || chk == nil || chk.Data["namespace"] != "hospital-a/" {
		t.Fatalf("checks in hospital-a: %+v %v", chk, err)
	}
	for _, c := range chk.Data["checks"].([]any) {
		if id := c.(map[string]any)["id"].(string); strings.HasPrefix(id, "audit.") || strings.HasPrefix(id, "storage.") || strings.HasPrefix(id, "seal.") {
			t.Fatalf("server-wide check %s ran in a namespace", id)
		}
	}
	// A report made in the namespace says so and counts only its records.
	rc := in(s, auditor, "hospital-a")
	rr := rc.NewRequest("GET", "/v1/sys/reports/hipaa")
	rr.Params.Set("format", "json")
	rr.Params.Set("from", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	//lint:ignore SA1019 RawRequest gives the report file itself.
	resp, err := rc.RawRequest(rr)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Namespace string `json:"namespace"`
		Caveats   []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || rep.Namespace != "hospital-a/" {
		t.Fatalf("report in hospital-a: %+v %v", rep, err)
	}
	resp.Body.Close()
}

// TestNamespaceMountsRolesAndAuthMethods: token roles are per namespace; a
// mount moves within its namespace only; disabling an auth method revokes
// the tokens it issued in its own namespace and no other's, though both
// namespaces' tokens share the creation path "auth/userpass/login/...".
func TestNamespaceMountsRolesAndAuthMethods(t *testing.T) {
	qs, _ := nsServer(t)
	s := qs.Server
	tenant(t, s, "", "north")
	tenant(t, s, "", "south")
	north, south := in(s, s.RootToken, "north"), in(s, s.RootToken, "south")
	// Token roles.
	mustWrite(t, north, "auth/token/roles/ops", map[string]any{"allowed_policies": "admin"})
	if r, _ := south.Logical().Read("auth/token/roles/ops"); r != nil {
		t.Fatalf("south sees north's token role: %+v", r.Data)
	}
	if l, _ := south.Logical().List("auth/token/roles"); l != nil {
		t.Fatalf("south lists north's token roles: %+v", l.Data)
	}
	tok := mustWrite(t, north, "auth/token/create/ops", map[string]any{"policies": []string{"admin"}})
	if !strings.Contains(tok.Auth.ClientToken, ".") {
		t.Fatalf("a role's token in north: %q", tok.Auth.ClientToken)
	}
	// Remount within the namespace; never out of it.
	mustWrite(t, north, "sys/remount", map[string]any{"from": "secret", "to": "vault"})
	if r, err := north.Logical().Read("vault/data/ward"); err != nil || r == nil {
		t.Fatalf("after the remount: %+v %v", r, err)
	}
	if r, _ := s.Client.Logical().Read("vault/data/ward"); r != nil {
		t.Fatal("the moved mount shows in the root namespace")
	}
	// From the root, north's mount cannot be moved into south, nor out
	// to the root.
	_, err := s.Client.Logical().Write("sys/remount", map[string]any{"from": "north/vault", "to": "south/stolen"})
	wantStatus(t, err, http.StatusBadRequest)
	_, err = s.Client.Logical().Write("sys/remount", map[string]any{"from": "north/vault", "to": "stolen"})
	wantStatus(t, err, http.StatusBadRequest)
	if r, _ := south.Logical().Read("stolen/data/ward"); r != nil {
		t.Fatal("a mount moved from north into south")
	}
	// The same auth method in both; disabling north's revokes north's
	// tokens only.
	var tokens [2]string
	for i, c := range []*vaultapi.Client{north, south} {
		if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, c, "auth/userpass/users/kim", map[string]any{"password": "pw"})
		sec, err := in(s, "", c.Namespace()).Logical().Write("auth/userpass/login/kim", map[string]any{"password": "pw"})
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = sec.Auth.ClientToken
	}
	if err := s.Client.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Sys().DisableAuth("userpass"); err != nil {
		t.Fatal(err)
	}
	for i, tk := range tokens {
		if _, err := in(s, tk, "").Auth().Token().LookupSelf(); err != nil {
			t.Fatalf("token %d revoked by disabling the root's userpass: %v", i, err)
		}
	}
	if err := north.Sys().DisableAuth("userpass"); err != nil {
		t.Fatal(err)
	}
	if _, err := in(s, tokens[0], "").Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("north's login token survived its auth method: %v", err)
	}
	if _, err := in(s, tokens[1], "").Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("south's login token revoked by north's auth method: %v", err)
	}
}
