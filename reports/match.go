package reports

import (
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// Privileged-operation categories (write operations on these sys/ paths):
// the audit query's category=privileged:<category>.
const (
	PrivPolicy   = query.PrivPolicy
	PrivAudit    = query.PrivAudit
	PrivSealKeys = query.PrivSealKeys
	PrivMounts   = query.PrivMounts
	PrivSnapshot = query.PrivSnapshot
)

// privCategories in report order.
var privCategories = query.PrivCategories()

var privTitles = map[string]string{
	PrivPolicy:   "Policy changes (ACL and Rego)",
	PrivAudit:    "Audit device changes",
	PrivSealKeys: "Seal, key rotation, rekey and root-token generation",
	PrivMounts:   "Secrets engine and auth method changes",
	PrivSnapshot: "Snapshot restores",
}

// PrivilegedCategory classifies a record as a privileged operation ("" when
// it is not one); see query.PrivilegedCategory.
func PrivilegedCategory(r query.Record) string { return query.PrivilegedCategory(&r) }

// ApprovedExecution reports whether r is the execution of a request that
// waited for approval (a control group): the request itself, not the
// sys/wrapping/unwrap that ran it.
func ApprovedExecution(r query.Record) bool {
	return r.Flags["control_group_state"] == "executed" && !strings.HasSuffix(r.Path, "sys/wrapping/unwrap")
}

// IsLogin reports whether path is an auth method login (auth/<m>/login...).
func IsLogin(path string) bool { return query.IsLogin(path) }

// LoginFailed: a login that was refused or errored.
func LoginFailed(r query.Record) bool { return query.LoginFailed(&r) }

// LoginUser is the user named in a login path ("alice" for
// auth/userpass/login/alice), or the mount for methods without one.
func LoginUser(path string) string {
	parts := strings.Split(strings.TrimSuffix(path, "/"), "/")
	if len(parts) >= 4 {
		return parts[1] + ":" + strings.Join(parts[3:], "/")
	}
	if len(parts) >= 2 {
		return parts[1] + ":(not in path)"
	}
	return path
}

// HasRoot reports whether the token carried the root policy.
func HasRoot(r query.Record) bool { return query.HasPolicy(&r, "root") }

// Actor is the name a record is attributed to: the canonical actor name
// (the entity's name, "<mount>/<alias>" for an entity nobody named, the
// display name for a token without entity; see query.Record.Actor), else
// the display name, else the entity ID, else the accessor, else
// "(unauthenticated)".
func Actor(r query.Record) string {
	switch {
	case r.Actor != "":
		return r.Actor
	case r.DisplayName != "":
		return r.DisplayName
	case r.EntityID != "":
		return r.EntityID
	case r.Accessor != "":
		return r.Accessor
	}
	return "(unauthenticated)"
}

// Match reports whether r satisfies the predicate expr: a comma-separated
// conjunction of
//
//	error            the request returned an error
//	actor_is:A       Actor(r) is exactly A
//
// Every other rule a figure needs is a query parameter (see
// query.Filter), so Match is used only where the query API cannot say it.
// The names kept from earlier reports (off_hours, root_token,
// login_failed, login_ok, privileged:CAT, incomplete, has_address,
// has_actor, path_is:P, entity_is:E, addr_is:IP) still work. "" matches
// every record; unknown predicates match nothing.
func Match(expr string, r query.Record, bh BusinessHours) bool {
	if expr == "" {
		return true
	}
	for _, p := range strings.Split(expr, ",") {
		name, arg, _ := strings.Cut(p, ":")
		ok := false
		switch name {
		case "error":
			ok = r.Error != ""
		case "off_hours":
			ok = bh.OffHours(r.Time)
		case "root_token":
			ok = HasRoot(r)
		case "login_failed":
			ok = LoginFailed(r)
		case "login_ok":
			ok = IsLogin(r.Path) && !LoginFailed(r)
		case "privileged":
			ok = PrivilegedCategory(r) == arg
		case "incomplete":
			ok = r.Incomplete
		case "has_address":
			ok = r.RemoteAddr != ""
		case "has_actor":
			ok = r.DisplayName != "" || r.EntityID != "" || r.Accessor != ""
		case "path_is":
			ok = r.Path == arg
		case "actor_is":
			ok = Actor(r) == arg
		case "entity_is":
			ok = r.EntityID == arg
		case "addr_is":
			ok = r.RemoteAddr == arg
		case "approved_execution":
			ok = ApprovedExecution(r)
		case "no_ticket":
			ok = r.Flags["break_glass_ticket"] == ""
		}
		if !ok {
			return false
		}
	}
	return true
}

// queryString builds a GET /v1/sys/audit/query parameter string for the
// report period plus kv pairs (sorted, URL-encoded).
func (g *gen) queryString(kv ...string) string {
	v := url.Values{}
	v.Set("since", g.p.From.UTC().Format(time.RFC3339))
	v.Set("until", g.p.To.UTC().Format(time.RFC3339))
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	if g.p.NamespaceQuery != "" {
		v.Set("namespace", g.p.NamespaceQuery)
	}
	return v.Encode()
}

// offHoursKV are the query parameters of the report's off-hours rule.
func (g *gen) offHoursKV() []string {
	bh := g.p.BusinessHours
	return []string{"off_hours", "true", "business_hours", bh.String(), "tz", bh.Location}
}

// FilterFromQuery parses a Check query string into a query.Filter (the
// same parameters GET /v1/sys/audit/query takes). Tests and tools use it to
// recompute figures against a Backend directly.
func FilterFromQuery(qs string) (query.Filter, error) {
	v, err := url.ParseQuery(qs)
	if err != nil {
		return query.Filter{}, err
	}
	if unknown := query.UnknownParams(keysOf(v)); len(unknown) > 0 {
		return query.Filter{}, &url.Error{Op: "parse", URL: qs, Err: errUnknown(strings.Join(unknown, ","))}
	}
	return query.FilterFromParams(v.Get, 0, time.Time{})
}

type errUnknown string

func (e errUnknown) Error() string { return "unknown query parameter " + string(e) }

func keysOf(v url.Values) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cliFlags maps query parameters to `vigil audit query` flags.
var cliFlags = map[string]string{"node_id": "node-id", "remote_address": "remote-address", "request_id": "request-id",
	"error_code": "error-code", "auth_method": "auth-method", "off_hours": "off-hours", "business_hours": "business-hours",
	"exact_path": "exact-path"}

// Commands renders the check as the `vigil audit query` command lines
// that reproduce the number: with --count, each prints how many records
// match; the figure is their sum (and, with a Match, the count of those
// records that also satisfy it).
func (c *Check) Commands() []string {
	if c == nil {
		return nil
	}
	var out []string
	for _, q := range c.Queries {
		v, err := url.ParseQuery(q)
		if err != nil {
			continue
		}
		var b strings.Builder
		b.WriteString("vigil audit query --count")
		if c.Distinct != "" {
			b.Reset()
			b.WriteString("vigil audit query --distinct " + c.Distinct)
		}
		for _, k := range query.ParamNames() {
			val, ok := v[k]
			if !ok || len(val) == 0 {
				continue
			}
			name := k
			if f, ok := cliFlags[k]; ok {
				name = f
			}
			b.WriteString(" --" + name + "=" + shellQuote(val[0]))
		}
		out = append(out, b.String())
	}
	return out
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=+@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
