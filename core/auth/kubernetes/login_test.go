package kubernetes

import "testing"

func TestParseUsername(t *testing.T) {
	ns, name, ok := parseUsername("system:serviceaccount:billing:billing-app")
	if !ok || ns != "billing" || name != "billing-app" {
		t.Fatalf("%q %q %v", ns, name, ok)
	}
	for _, bad := range []string{"", "kubernetes-admin", "system:serviceaccount:billing", "system:serviceaccount::x",
		"system:serviceaccount:a:b:c", "system:node:a:b"} {
		if _, _, ok := parseUsername(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestGlobBindings(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		v        string
		want     bool
	}{{[]string{"*"}, "x", true}, {[]string{"billing-*"}, "billing-app", true}, {[]string{"billing-*"}, "payments", false},
		{[]string{"a", "b"}, "b", true}} {
		if got := globAny(tc.patterns, tc.v); got != tc.want {
			t.Errorf("%v %q: %v", tc.patterns, tc.v, got)
		}
	}
}
