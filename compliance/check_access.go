package compliance

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/core/authz"
	"github.com/vigilsec/vigil/core/token"
)

// writeCaps are the capabilities that change data or grant more.
var writeCaps = []string{authz.CapCreate, authz.CapUpdate, authz.CapPatch, authz.CapDelete, authz.CapSudo}

func grants(r *authz.PathRule) bool {
	return len(r.Capabilities) > 0 && !slices.Contains(r.Capabilities, authz.CapDeny)
}

func hasAny(caps, want []string) bool {
	for _, w := range want {
		if slices.Contains(caps, w) {
			return true
		}
	}
	return false
}

// broadness classifies a rule's pattern: "all" when it matches every path
// ("*", "+/*", "+*"), "mount" when it matches a whole mount ("secret/*",
// "secret*", "secret/+/*"), "" otherwise.
func broadness(pattern string) string {
	p := strings.TrimPrefix(pattern, "/")
	switch p {
	case "*", "+/*", "+*", "+":
		return "all"
	}
	if !strings.HasSuffix(p, "*") {
		return ""
	}
	head := strings.TrimSuffix(p, "*")
	head = strings.TrimSuffix(head, "/")
	for strings.HasSuffix(head, "/+") {
		head = strings.TrimSuffix(head, "/+")
	}
	if head != "" && !strings.Contains(head, "/") {
		return "mount"
	}
	return ""
}

func policyObject(p *authz.Policy, r *authz.PathRule) string {
	return fmt.Sprintf("policy %q path %q capabilities %v", p.Name, r.Pattern, r.Capabilities)
}

// checkPolicyWildcard: rules whose path matches everything, or a whole
// mount with write or sudo capabilities. Per-token cubbyhole/ is exempt.
func checkPolicyWildcard(env *Env, _ Thresholds) ([]Finding, string) {
	var out []Finding
	for _, p := range env.Policies {
		for _, r := range p.Paths {
			if !grants(r) || strings.HasPrefix(r.Pattern, "cubbyhole/") {
				continue
			}
			switch broadness(r.Pattern) {
			case "all":
				sev := High
				if slices.Contains(r.Capabilities, authz.CapSudo) {
					sev = Critical
				}
				out = append(out, Finding{Severity: sev, Object: policyObject(p, r),
					Message: fmt.Sprintf("policy %q grants %s on every path, including sys/ and every secret", p.Name, strings.Join(r.Capabilities, ", ")),
					Fix:     fmt.Sprintf("Replace path %q in policy %q with the specific paths the holders need (least privilege); keep full access to a break-glass procedure.", r.Pattern, p.Name)})
			case "mount":
				if !hasAny(r.Capabilities, writeCaps) {
					continue
				}
				out = append(out, Finding{Severity: Medium, Object: policyObject(p, r),
					Message: fmt.Sprintf("policy %q grants %s on a whole mount (%s)", p.Name, strings.Join(r.Capabilities, ", "), r.Pattern),
					Fix:     fmt.Sprintf("Narrow path %q in policy %q to the application's own prefix (e.g. secret/data/<app>/*).", r.Pattern, p.Name)})
			}
		}
	}
	return out, ""
}

// checkPolicySudo: sudo outside sys/ (Vault needs sudo on a few non-sys
// paths, e.g. auth/token/accessors; those are still reported, at low).
func checkPolicySudo(env *Env, _ Thresholds) ([]Finding, string) {
	var out []Finding
	for _, p := range env.Policies {
		for _, r := range p.Paths {
			if !grants(r) || !slices.Contains(r.Capabilities, authz.CapSudo) {
				continue
			}
			pat := strings.TrimPrefix(r.Pattern, "/")
			if strings.HasPrefix(pat, "sys/") {
				continue
			}
			sev := Medium
			if strings.HasPrefix(pat, "auth/token/") {
				sev = Low
			}
			if broadness(pat) == "all" {
				sev = High
			}
			out = append(out, Finding{Severity: sev, Object: policyObject(p, r),
				Message: fmt.Sprintf("policy %q grants sudo on %q, outside sys/", p.Name, r.Pattern),
				Fix:     fmt.Sprintf("Remove sudo from path %q in policy %q unless an endpoint under it is root-protected; grant it in a separate, rarely assigned policy.", r.Pattern, p.Name)})
		}
	}
	return out, ""
}

func liveTokens(env *Env) []*token.Entry {
	var out []*token.Entry
	for _, t := range env.Tokens {
		if !t.ExpireTime.IsZero() && !env.Now.Before(t.ExpireTime) {
			continue // expired, awaiting tidy
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Accessor < out[j].Accessor })
	return out
}

func tokenObject(t *token.Entry) string {
	return fmt.Sprintf("token accessor %s (display name %q, policies %v)", t.Accessor, t.DisplayName, t.Policies)
}

func checkTokenNoExpiry(env *Env, _ Thresholds) ([]Finding, string) {
	var out []Finding
	for _, t := range liveTokens(env) {
		if t.IsRoot() || !t.ExpireTime.IsZero() {
			continue // root tokens: token.root-valid
		}
		out = append(out, Finding{Severity: High, Object: tokenObject(t),
			Message: "the token never expires",
			Fix:     fmt.Sprintf("Revoke it (vigil token revoke -accessor %s) and issue a token with a TTL; use periodic tokens only for services that renew.", t.Accessor)})
	}
	return out, ""
}

// lifetime is creation to the latest possible expiry (max expiry when set);
// for a periodic token, its period (it lives as long as it is renewed).
func lifetime(t *token.Entry) time.Duration {
	if t.Period > 0 && t.MaxExpireTime.IsZero() {
		return t.Period
	}
	end := t.ExpireTime
	if t.MaxExpireTime.After(end) {
		end = t.MaxExpireTime
	}
	if end.IsZero() {
		return 0
	}
	return end.Sub(t.CreationTime)
}

func checkTokenLongTTL(env *Env, th Thresholds) ([]Finding, string) {
	var out []Finding
	for _, t := range liveTokens(env) {
		if t.IsRoot() || t.ExpireTime.IsZero() {
			continue
		}
		if l := lifetime(t); l > th.MaxTokenTTL.D() {
			out = append(out, Finding{Severity: Medium, Object: tokenObject(t),
				Message: fmt.Sprintf("the token may live %s, above the %s threshold", l.Round(time.Second), th.MaxTokenTTL.D()),
				Fix:     fmt.Sprintf("Lower token_max_ttl / the auth role's token_max_ttl to %s or less and reissue; revoke this token when its holder has a new one.", th.MaxTokenTTL.D())})
		}
	}
	return out, ""
}

func checkTokenRoot(env *Env, _ Thresholds) ([]Finding, string) {
	var out []Finding
	for _, t := range liveTokens(env) {
		if !t.IsRoot() {
			continue
		}
		exp := "never expires"
		if !t.ExpireTime.IsZero() {
			exp = "expires " + t.ExpireTime.UTC().Format(time.RFC3339)
		}
		out = append(out, Finding{Severity: High, Object: tokenObject(t),
			Message: fmt.Sprintf("a root token created %s is still valid (%s)", t.CreationTime.UTC().Format(time.RFC3339), exp),
			Fix:     fmt.Sprintf("Revoke it once setup is done (vigil token revoke -accessor %s); generate a root token only for an emergency, under dual control, and revoke it afterwards.", t.Accessor)})
	}
	return out, ""
}

func checkTokenOrphan(env *Env, th Thresholds) ([]Finding, string) {
	var out []Finding
	for _, t := range liveTokens(env) {
		if !t.Orphan || t.IsRoot() || (t.Type != "" && t.Type != "service") {
			continue
		}
		if age := env.Now.Sub(t.CreationTime); age > th.OrphanMaxAge.D() {
			out = append(out, Finding{Severity: Medium, Object: tokenObject(t),
				Message: fmt.Sprintf("an orphan service token is %d days old (threshold %d days); revoking its creator does not revoke it", int(age/day), int(th.OrphanMaxAge.D()/day)),
				Fix:     fmt.Sprintf("Confirm the owner still needs it, then revoke it (vigil token revoke -accessor %s) and issue a child token or an AppRole login instead.", t.Accessor)})
		}
	}
	return out, ""
}
