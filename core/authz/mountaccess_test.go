package authz

import "testing"

func TestRuleReachesBelow(t *testing.T) {
	cases := []struct {
		pattern, mount string
		want           bool
	}{
		{"secret/data/app", "secret/", true},
		{"secret", "secret/", false}, // the exact path "secret" is the mount itself, checked separately
		{"secret/*", "secret/", true},
		{"secretive/*", "secret/", false},
		{"sec*", "secret/", false}, // matches the mount path itself: Capabilities covers it
		{"+/shared", "secret/", true},
		{"+/+/x", "auth/userpass/", true},
		{"auth/+/login", "auth/userpass/", true},
		{"auth/+/login", "secret/", false},
		{"identity/oidc/provider/+/authorize", "secret/", false},
		{"team-c/+/shared", "team-c/", true},
		{"team-c/+/shared", "team-b/", false},
	}
	for _, c := range cases {
		p, err := ParseACL("t", `path "`+c.pattern+`" { capabilities = ["read"] }`)
		if err != nil {
			t.Fatal(err)
		}
		if got := ruleReachesBelow(p.Paths[0], c.mount); got != c.want {
			t.Errorf("ruleReachesBelow(%q, %q) = %v, want %v", c.pattern, c.mount, got, c.want)
		}
	}
}
