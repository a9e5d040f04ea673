package jwtauth

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	glob "github.com/ryanuber/go-glob"

	"github.com/vigilsec/vigil/core"
)

// errClaims is a login refused because of what the token says. The message
// names the binding (it is returned to the client and audited).
func errClaims(format string, args ...any) error {
	return core.Errorf(core.CodePermissionDenied, format, args...)
}

// claimValue returns the claim named by name: a top-level key, or a JSON
// pointer (RFC 6901, e.g. "/realm_access/roles") when name starts with "/".
func claimValue(claims map[string]any, name string) (any, bool) {
	if !strings.HasPrefix(name, "/") {
		v, ok := claims[name]
		return v, ok
	}
	var cur any = claims
	for _, tok := range strings.Split(name[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// scalarString renders a string, number or boolean claim; ok is false for
// objects, lists and null.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// claimStrings renders a claim that is a scalar or a list of scalars.
func claimStrings(v any) []string {
	if s, ok := scalarString(v); ok {
		return []string{s}
	}
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := scalarString(e); ok {
			out = append(out, s)
		}
	}
	return out
}

// checkTimes applies exp, nbf and iat with the role's leeways (a negative
// leeway disables that check, as in Vault). A token without exp is refused.
func (r *role) checkTimes(claims map[string]any, now time.Time) error {
	num := func(k string) (time.Time, bool, error) {
		v, ok := claims[k]
		if !ok {
			return time.Time{}, false, nil
		}
		var f float64
		switch x := v.(type) {
		case json.Number:
			var err error
			if f, err = x.Float64(); err != nil {
				return time.Time{}, false, errClaims("invalid %s claim", k)
			}
		case float64:
			f = x
		default:
			return time.Time{}, false, errClaims("invalid %s claim: not a number", k)
		}
		return time.Unix(int64(f), 0), true, nil
	}
	skew := r.ClockSkewLeeway
	if skew < 0 {
		skew = 0
	}
	exp, hasExp, err := num("exp")
	if err != nil {
		return err
	}
	if !hasExp {
		return errClaims("token has no expiry (exp claim)")
	}
	if r.ExpirationLeeway >= 0 && now.After(exp.Add(skew+r.ExpirationLeeway)) {
		return errClaims("token is expired (exp %s)", exp.UTC().Format(time.RFC3339))
	}
	nbf, hasNbf, err := num("nbf")
	if err != nil {
		return err
	}
	if !hasNbf {
		nbf, hasNbf, err = num("iat")
		if err != nil {
			return err
		}
	}
	if hasNbf && r.NotBeforeLeeway >= 0 && now.Add(skew+r.NotBeforeLeeway).Before(nbf) {
		return errClaims("token is not valid yet (nbf %s)", nbf.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkAudience: with bound audiences, the token's aud must name one of
// them; without, a token that has an audience is refused (a token meant for
// another service must not log in here), as in Vault.
func (r *role) checkAudience(aud []string, clientID string) error {
	bound := r.BoundAudiences
	if len(bound) == 0 && r.RoleType == roleTypeOIDC && clientID != "" {
		bound = []string{clientID}
	}
	if len(bound) == 0 {
		if len(aud) > 0 {
			return errClaims("audience claim found in JWT but no audiences bound to the role")
		}
		return nil
	}
	for _, a := range aud {
		if slices.Contains(bound, a) {
			return nil
		}
	}
	return errClaims("aud claim %q does not match any bound audience", aud)
}

// checkBoundClaims: every bound claim must be present and (one of) its
// values must match one of the expected values, exactly or as a glob.
func (r *role) checkBoundClaims(claims map[string]any) error {
	keys := make([]string, 0, len(r.BoundClaims))
	for k := range r.BoundClaims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		want, err := expectedValues(r.BoundClaims[k])
		if err != nil {
			return core.Errorf(core.CodeInternal, "role bound_claims %q: %v", k, err)
		}
		v, ok := claimValue(claims, k)
		if !ok {
			return errClaims("claim %q is missing", k)
		}
		got := claimStrings(v)
		if !anyMatch(want, got, r.BoundClaimsType == boundClaimsGlob) {
			return errClaims("claim %q does not match any associated bound claim values", k)
		}
	}
	return nil
}

func anyMatch(want, got []string, globs bool) bool {
	for _, w := range want {
		for _, g := range got {
			if w == g || (globs && glob.Glob(w, g)) {
				return true
			}
		}
	}
	return false
}

// identity extracts the alias name, the mapped metadata and the groups.
func (r *role) identity(claims map[string]any) (user string, meta map[string]string, groups []string, err error) {
	uc := r.UserClaim
	if !r.UserClaimJSONPointer {
		v, ok := claims[uc]
		if !ok {
			return "", nil, nil, errClaims("claim %q not found in token", uc)
		}
		user, _ = scalarString(v)
	} else {
		v, ok := claimValue(claims, uc)
		if !ok {
			return "", nil, nil, errClaims("claim %q not found in token", uc)
		}
		user, _ = scalarString(v)
	}
	if user == "" {
		return "", nil, nil, errClaims("claim %q is empty or not a string", uc)
	}
	meta = map[string]string{}
	for claim, key := range r.ClaimMappings {
		v, ok := claimValue(claims, claim)
		if !ok {
			continue
		}
		s, ok := scalarString(v)
		if !ok {
			return "", nil, nil, errClaims("claim %q mapped to %q is not a string, number or boolean", claim, key)
		}
		meta[key] = s
	}
	if r.GroupsClaim != "" {
		v, ok := claimValue(claims, r.GroupsClaim)
		if !ok {
			return "", nil, nil, errClaims("groups claim %q not found in token", r.GroupsClaim)
		}
		if _, isScalar := scalarString(v); !isScalar {
			if _, isList := v.([]any); !isList {
				return "", nil, nil, errClaims("groups claim %q is not a list of strings", r.GroupsClaim)
			}
		}
		groups = claimStrings(v)
	}
	return user, meta, groups, nil
}

// auth builds the login's Auth from validated claims.
func (r *role) auth(roleName string, claims map[string]any) (*core.Auth, error) {
	user, meta, groups, err := r.identity(claims)
	if err != nil {
		return nil, err
	}
	tokMeta := map[string]string{"role": roleName}
	for k, v := range meta {
		tokMeta[k] = v
	}
	a := r.Params.Auth(user, tokMeta)
	a.Alias = &core.Alias{Name: user, Metadata: meta}
	for _, g := range groups {
		a.GroupAliases = append(a.GroupAliases, &core.Alias{Name: g})
	}
	a.InternalData = map[string]any{"role": roleName}
	return a, nil
}
