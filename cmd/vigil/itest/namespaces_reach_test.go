package itest

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/vigilsec/vigil/core/server/servertest"
)

// TestNamespaceNoReachThroughPaths: a token whose policies cover the sys/
// paths of its own namespace (sudo included) cannot reach a child
// namespace, or a sibling, through a path argument that spells the other
// namespace's path: "sys/mounts/hospital-b/secret" in the root names no
// mount of the root's, "sys/leases/revoke-prefix/icu/" in hospital-a/ no
// lease of hospital-a/'s. Mount disable, tune, remount, lease lookup, list,
// revoke, revoke-prefix and revoke-force, token lookup and revoke by value
// are refused or act on nothing; the other namespace's mounts, leases and
// tokens are intact afterwards. Every client is vault/api's, with
// SetNamespace.
func TestNamespaceNoReachThroughPaths(t *testing.T) {
	qs, _ := nsServer(t)
	s := qs.Server
	tokB := tenant(t, s, "", "hospital-b")
	tenant(t, s, "", "hospital-a")
	tokICU := tenant(t, s, "hospital-a", "icu")
	const sysOps = `path "sys/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "auth/token/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`
	opsToken := func(ns string) string {
		c := in(s, s.RootToken, ns)
		if err := c.Sys().PutPolicy("sys-ops", sysOps); err != nil {
			t.Fatal(err)
		}
		return mustWrite(t, c, "auth/token/create", map[string]any{"policies": []string{"sys-ops"}, "ttl": "1h"}).Auth.ClientToken
	}
	// leaseOf is the lease of a token made by auth/token/create in ns.
	leaseOf := func(ns string) string {
		l, err := in(s, s.RootToken, ns).Logical().List("sys/leases/lookup/auth/token/create/")
		if err != nil || l == nil {
			t.Fatalf("leases of %s: %+v %v", ns, l, err)
		}
		keys, _ := l.Data["keys"].([]any)
		if len(keys) == 0 {
			t.Fatalf("no token lease in %s", ns)
		}
		return ns + "/auth/token/create/" + keys[0].(string)
	}
	for _, tc := range []struct {
		name, from, other, otherToken string
	}{
		{"root namespace into hospital-b/", "", "hospital-b", tokB},
		{"hospital-a/ into its child icu/", "hospital-a", "icu", tokICU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := in(s, opsToken(tc.from), tc.from)
			full := strings.Trim(tc.from+"/"+tc.other, "/")
			lease := leaseOf(full)
			// Lease ids are full paths, in every namespace.
			rel := lease
			refusals := []struct {
				what   string
				call   func() error
				status int
			}{
				{"disable the other's mount", func() error {
					_, err := ops.Logical().Delete("sys/mounts/" + tc.other + "/secret")
					return err
				}, http.StatusBadRequest},
				{"tune the other's mount", func() error {
					_, err := ops.Logical().Write("sys/mounts/"+tc.other+"/secret/tune", map[string]any{"description": "taken"})
					return err
				}, http.StatusBadRequest},
				{"read the other's mount's tuning", func() error {
					_, err := ops.Logical().Read("sys/mounts/" + tc.other + "/secret/tune")
					return err
				}, http.StatusBadRequest},
				{"remount the other's mount", func() error {
					_, err := ops.Logical().Write("sys/remount", map[string]any{"from": tc.other + "/secret", "to": tc.other + "/moved"})
					return err
				}, http.StatusBadRequest},
				{"move one's own mount under the other's path", func() error {
					_, err := ops.Logical().Write("sys/remount", map[string]any{"from": "secret", "to": tc.other + "/stolen"})
					if err != nil && !strings.Contains(err.Error(), "conflicts with namespace") {
						t.Errorf("remount into the other's path refused for another reason: %v", err)
					}
					return err
				}, http.StatusBadRequest},
				{"enable a mount under the other's path", func() error {
					return ops.Sys().Mount(tc.other+"/planted", &vaultapi.MountInput{Type: "kv"})
				}, http.StatusBadRequest},
				{"look up the other's lease", func() error {
					_, err := ops.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": rel})
					return err
				}, http.StatusBadRequest},
				{"renew the other's lease", func() error {
					_, err := ops.Logical().Write("sys/leases/renew", map[string]any{"lease_id": rel})
					return err
				}, http.StatusBadRequest},
				{"look up the other's token", func() error {
					_, err := ops.Logical().Write("auth/token/lookup", map[string]any{"token": tc.otherToken})
					return err
				}, http.StatusForbidden},
			}
			for _, r := range refusals {
				if err := r.call(); statusOf(err) != r.status {
					t.Errorf("%s: %v (want %d)", r.what, err, r.status)
				}
			}
			// Calls Vault answers with success whatever they find: refused,
			// or answered, they must find nothing of the other namespace's.
			noEffect := func(what string, err error) {
				if st := statusOf(err); err != nil && st != http.StatusForbidden && st != http.StatusBadRequest {
					t.Errorf("%s: %v", what, err)
				}
			}
			for _, c := range []struct{ what, path string }{
				{"revoke-prefix", "sys/leases/revoke-prefix/" + tc.other + "/"},
				{"revoke-force", "sys/leases/revoke-force/" + tc.other + "/auth"},
				{"revoke one lease", "sys/leases/revoke/" + rel},
			} {
				_, err := ops.Logical().Write(c.path, nil)
				noEffect(c.what, err)
			}
			_, err := ops.Logical().Write("auth/token/revoke", map[string]any{"token": tc.otherToken})
			noEffect("revoke the other's token by value", err)
			l, err := ops.Logical().List("sys/leases/lookup/" + tc.other + "/")
			noEffect("list the other's leases", err)
			if l != nil {
				t.Errorf("the other's leases are listed: %+v", l.Data)
			}
			l, err = ops.Logical().List("sys/leases/lookup/")
			noEffect("list the leases", err)
			if l != nil && slices.Contains(l.Data["keys"].([]any), any(tc.other+"/")) {
				t.Errorf("the other namespace shows among the leases: %+v", l.Data)
			}
			// The other namespace is intact.
			other := in(s, tc.otherToken, full)
			if _, err := other.Auth().Token().LookupSelf(); err != nil {
				t.Fatalf("the other's token was revoked: %v", err)
			}
			if _, err := in(s, s.RootToken, full).Logical().Write("sys/leases/lookup", map[string]any{"lease_id": lease}); err != nil {
				t.Fatalf("the other's lease was revoked: %v", err)
			}
			if r, err := other.Logical().Read("secret/data/ward"); err != nil || r == nil {
				t.Fatalf("the other's secret: %+v %v", r, err)
			}
			mounts, err := other.Sys().ListMounts()
			if err != nil || mounts["secret/"] == nil || mounts["secret/"].Description == "taken" || mounts["moved/"] != nil || mounts["planted/"] != nil || mounts["stolen/"] != nil {
				t.Fatalf("the other's mounts changed: %+v %v", mounts, err)
			}
		})
	}
	mustNotHaveRootMount(t, s, "hospital-b/planted/")
}

func mustNotHaveRootMount(t *testing.T, s *servertest.Server, path string) {
	t.Helper()
	mounts, err := s.Client.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	if mounts[path] != nil {
		t.Fatalf("the root namespace has a mount at %s", path)
	}
}
