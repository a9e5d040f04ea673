package pki

import (
	"regexp"
	"strings"
)

var (
	labelPattern    = `([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	hostnameRe      = regexp.MustCompile(`^(` + labelPattern + `\.)*` + labelPattern + `\.?$`)
	wildLabelRe     = regexp.MustCompile(`^(\*|\*` + labelPattern + `|` + labelPattern + `\*|` + labelPattern + `\*` + labelPattern + `)$`)
	maxHostnameSize = 253
)

// validHostname reports whether name is a DNS host name (ASCII labels of
// letters, digits and inner hyphens); with wildcard, an RFC 6125 wildcard in
// the left-most label ("*.example.com", "w*.example.com") is accepted too.
// Internationalised names must be given in their ASCII (punycode) form.
func validHostname(name string, wildcard bool) bool {
	if name == "" || len(name) > maxHostnameSize {
		return false
	}
	if strings.Contains(name, "*") {
		if !wildcard || strings.Count(name, "*") > 1 {
			return false
		}
		first, rest, ok := strings.Cut(name, ".")
		if !wildLabelRe.MatchString(first) {
			return false
		}
		return !ok || hostnameRe.MatchString(rest)
	}
	return hostnameRe.MatchString(name)
}

// allowedName reports whether the role permits name (a DNS name, or an email
// address whose domain is checked) as Vault's role flags define it:
// enforce_hostnames, allow_wildcard_certificates, allow_any_name,
// allow_localhost, and allowed_domains with allow_bare_domains,
// allow_subdomains and allow_glob_domains.
func (r *roleEntry) allowedName(name string) bool {
	reduced, emailDomain := name, ""
	isEmail := false
	if strings.Contains(name, "@") {
		parts := strings.Split(name, "@")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return false
		}
		reduced, emailDomain, isEmail = parts[1], parts[1], true
	}
	isWildcard := strings.Contains(reduced, "*")
	if isWildcard {
		if !r.AllowWildcardCertificates || isEmail || strings.Count(reduced, "*") > 1 {
			return false
		}
		label, rest, ok := strings.Cut(reduced, ".")
		if !ok {
			rest = ""
		}
		if strings.Contains(rest, "*") {
			return false
		}
		if r.EnforceHostnames && !wildLabelRe.MatchString(label) {
			return false
		}
		reduced = rest
	}
	if r.EnforceHostnames && reduced != "" && !validHostname(reduced, false) {
		return false
	}
	if r.AllowAnyName {
		return true
	}
	lower := strings.ToLower(reduced)
	if r.AllowLocalhost {
		if lower == "localhost" || lower == "localdomain" {
			return true
		}
		if r.AllowSubdomains && (strings.HasSuffix(lower, ".localhost") || strings.HasSuffix(lower, ".localdomain")) {
			return true
		}
	}
	for _, dom := range r.AllowedDomains {
		dom = strings.ToLower(strings.TrimSpace(dom))
		if dom == "" {
			continue
		}
		if r.AllowBareDomains && (strings.EqualFold(name, dom) || (isEmail && strings.EqualFold(emailDomain, dom))) {
			return true
		}
		if r.AllowSubdomains && (strings.HasSuffix(lower, "."+dom) || (isWildcard && lower == dom)) {
			return true
		}
		if r.AllowGlobDomains && strings.Contains(dom, "*") && globMatch(dom, strings.ToLower(name)) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern, where '*' matches any run of
// characters (including dots and none), as Vault's allow_glob_domains does.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i := 1; i < len(parts)-1; i++ {
		j := strings.Index(s, parts[i])
		if j < 0 {
			return false
		}
		s = s[j+len(parts[i]):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
