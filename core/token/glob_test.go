package token

import "testing"

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"app-*", "app-read", true}, {"app-*", "ap", false}, {"*-read", "app-read", true},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxc", false}, {"exact", "exact", true},
		{"exact", "exactly", false}, {"*", "", true}, {"a*a", "a", false},
	} {
		if got := globMatch(c.pat, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}
