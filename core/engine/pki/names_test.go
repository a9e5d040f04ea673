package pki

import "testing"

func TestValidHostname(t *testing.T) {
	for name, want := range map[string]bool{
		"example.com": true, "a.b-c.example.com": true, "localhost": true, "example.com.": true, "x1": true,
		"*.example.com": true, "w*.example.com": true, "*w.example.com": true, "a*b.example.com": true,
		"": false, "-a.example.com": false, "a-.example.com": false, "a..b": false, "bad_name": false,
		"a.*.example.com": false, "*.*.example.com": false, "**.example.com": false, "ex ample.com": false,
		"exämple.com": false,
	} {
		if got := validHostname(name, true); got != want {
			t.Errorf("validHostname(%q, wildcard) = %v, want %v", name, got, want)
		}
	}
	if validHostname("*.example.com", false) {
		t.Error("a wildcard passed without wildcard allowed")
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"web-*.example.com", "web-1.example.com", true},
		{"web-*.example.com", "db-1.example.com", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"spiffe://cluster/*", "spiffe://cluster/ns/web", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestAllowedName(t *testing.T) {
	base := roleEntry{AllowedDomains: []string{"example.com"}, EnforceHostnames: true, AllowWildcardCertificates: true}
	with := func(f func(r *roleEntry)) roleEntry { r := base; f(&r); return r }
	for _, tc := range []struct {
		name string
		role roleEntry
		in   string
		want bool
	}{
		{"nothing allowed by default", base, "a.example.com", false},
		{"subdomain", with(func(r *roleEntry) { r.AllowSubdomains = true }), "a.example.com", true},
		{"deep subdomain", with(func(r *roleEntry) { r.AllowSubdomains = true }), "a.b.example.com", true},
		{"subdomains exclude the bare domain", with(func(r *roleEntry) { r.AllowSubdomains = true }), "example.com", false},
		{"suffix is not a subdomain", with(func(r *roleEntry) { r.AllowSubdomains = true }), "badexample.com", false},
		{"bare", with(func(r *roleEntry) { r.AllowBareDomains = true }), "example.com", true},
		{"bare is case-insensitive", with(func(r *roleEntry) { r.AllowBareDomains = true }), "EXAMPLE.com", true},
		{"other domain", with(func(r *roleEntry) { r.AllowSubdomains = true; r.AllowBareDomains = true }), "example.org", false},
		{"wildcard under subdomains", with(func(r *roleEntry) { r.AllowSubdomains = true }), "*.example.com", true},
		{"wildcards can be refused", with(func(r *roleEntry) { r.AllowSubdomains = true; r.AllowWildcardCertificates = false }), "*.example.com", false},
		{"glob", with(func(r *roleEntry) { r.AllowGlobDomains = true; r.AllowedDomains = []string{"web-*.example.com"} }), "web-7.example.com", true},
		{"glob miss", with(func(r *roleEntry) { r.AllowGlobDomains = true; r.AllowedDomains = []string{"web-*.example.com"} }), "db-7.example.com", false},
		{"glob off", with(func(r *roleEntry) { r.AllowedDomains = []string{"web-*.example.com"} }), "web-7.example.com", false},
		{"localhost", with(func(r *roleEntry) { r.AllowLocalhost = true }), "localhost", true},
		{"localhost off", base, "localhost", false},
		{"any name", with(func(r *roleEntry) { r.AllowAnyName = true }), "anything.test", true},
		{"any name still enforces hostnames", with(func(r *roleEntry) { r.AllowAnyName = true }), "not a host", false},
		{"any name without enforcement", with(func(r *roleEntry) { r.AllowAnyName = true; r.EnforceHostnames = false }), "not a host", true},
		{"email at an allowed domain", with(func(r *roleEntry) { r.AllowBareDomains = true }), "ops@example.com", true},
		{"email at a subdomain", with(func(r *roleEntry) { r.AllowSubdomains = true }), "ops@mail.example.com", true},
		{"malformed email", with(func(r *roleEntry) { r.AllowAnyName = true }), "a@b@c", false},
	} {
		if got := tc.role.allowedName(tc.in); got != tc.want {
			t.Errorf("%s: allowedName(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}
