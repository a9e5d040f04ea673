package system_test

import (
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
)

// sys/internal/ui/mounts lists only the mounts a token has some capability
// on, and describes a single mount only to such a token.
func TestUIMountsListOnlyReachableMounts(t *testing.T) {
	s := devServer(t)
	c := s.Client
	for _, m := range []string{"team-a", "team-b", "team-c"} {
		if err := c.Sys().Mount(m, &vaultapi.MountInput{Type: "kv"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Sys().EnableAuthWithOptions("userpass", &vaultapi.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("a", `
path "team-a/app/*" { capabilities = ["read"] }
path "team-b/*" { capabilities = ["deny"] }
path "team-c/+/shared" { capabilities = ["list"] }
`); err != nil {
		t.Fatal(err)
	}
	tc := tokenWith(t, s, "a")
	sec, err := tc.Logical().Read("sys/internal/ui/mounts")
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := sec.Data["secret"].(map[string]any)
	auth, _ := sec.Data["auth"].(map[string]any)
	for _, want := range []string{"team-a/", "team-c/", "sys/"} { // team-c/ through a "+" rule; sys/ through default
		if secret[want] == nil {
			t.Errorf("secret mount %s missing: %v", want, keys(secret))
		}
	}
	for _, hidden := range []string{"team-b/", "secret/"} {
		if secret[hidden] != nil {
			t.Errorf("secret mount %s listed to a token without access: %v", hidden, keys(secret))
		}
	}
	if auth["token/"] == nil || auth["userpass/"] != nil {
		t.Errorf("auth mounts: %v", keys(auth))
	}

	if _, err := tc.Logical().Read("sys/internal/ui/mounts/team-b/x"); statusOf(err) != 403 {
		t.Errorf("single mount without access: %v", err)
	}
	one, err := tc.Logical().Read("sys/internal/ui/mounts/team-a/app/x")
	if err != nil || one.Data["path"] != "team-a/" {
		t.Fatalf("single mount with access: %v %v", one, err)
	}

	// Root sees everything.
	all, err := c.Logical().Read("sys/internal/ui/mounts")
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := all.Data["secret"].(map[string]any)
	ra, _ := all.Data["auth"].(map[string]any)
	if rs["team-b/"] == nil || rs["secret/"] == nil || ra["userpass/"] == nil {
		t.Errorf("root: secret %v auth %v", keys(rs), keys(ra))
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
