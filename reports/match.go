package reports

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigilsec/vigil/reports/query"
)

// Privileged-operation categories (write operations on these sys/ paths).
const (
	PrivPolicy   = "policy"   // sys/policies/*, sys/policy/*: ACL and Rego policy changes
	PrivAudit    = "audit"    // sys/audit/<device>: audit device enable/disable
	PrivSealKeys = "seal"     // sys/seal, sys/rotate, sys/rekey*, sys/generate-root*
	PrivMounts   = "mounts"   // sys/mounts/*, sys/auth/*: engine and auth method changes
	PrivSnapshot = "snapshot" // sys/storage/raft/snapshot*: snapshot restores
)

// privCategories in report order.
var privCategories = []string{PrivPolicy, PrivAudit, PrivSealKeys, PrivMounts, PrivSnapshot}

var privTitles = map[string]string{
	PrivPolicy:   "Policy changes (ACL and Rego)",
	PrivAudit:    "Audit device changes",
	PrivSealKeys: "Seal, key rotation, rekey and root-token generation",
	PrivMounts:   "Secrets engine and auth method changes",
	PrivSnapshot: "Snapshot restores",
}

func isWrite(op string) bool {
	switch op {
	case "create", "update", "delete", "patch":
		return true
	}
	return false
}

// PrivilegedCategory classifies a record as a privileged operation ("" when
// it is not one). Reads are never privileged operations here (root token
// reads are counted as root token use).
func PrivilegedCategory(r query.Record) string {
	p := r.Path
	if !isWrite(r.Operation) || !strings.HasPrefix(p, "sys/") {
		return ""
	}
	rest := strings.TrimPrefix(p, "sys/")
	switch {
	case strings.HasPrefix(rest, "policies/"), strings.HasPrefix(rest, "policy/"):
		return PrivPolicy
	case strings.HasPrefix(rest, "audit/"):
		sub := strings.TrimSuffix(strings.TrimPrefix(rest, "audit/"), "/")
		switch strings.SplitN(sub, "/", 2)[0] {
		case "verify", "checkpoints", "checkpoint-key", "query", "":
			return ""
		}
		return PrivAudit
	case rest == "seal", rest == "rotate", strings.HasPrefix(rest, "rekey"), strings.HasPrefix(rest, "generate-root"),
		strings.HasPrefix(rest, "rotate/"):
		return PrivSealKeys
	case strings.HasPrefix(rest, "mounts/"), strings.HasPrefix(rest, "auth/"):
		return PrivMounts
	case rest == "storage/raft/snapshot", rest == "storage/raft/snapshot-force":
		return PrivSnapshot
	}
	return ""
}

// IsLogin reports whether path is an auth method login (auth/<m>/login...).
func IsLogin(path string) bool {
	parts := strings.Split(path, "/")
	return len(parts) >= 3 && parts[0] == "auth" && parts[2] == "login" && parts[1] != "token"
}

// LoginFailed: a login that was refused or errored.
func LoginFailed(r query.Record) bool { return IsLogin(r.Path) && (r.Error != "" || !r.Allowed) }

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
func HasRoot(r query.Record) bool { return slices.Contains(r.Policies, "root") }

// OffHours reports whether t falls outside business hours.
func (bh BusinessHours) OffHours(t time.Time) bool {
	loc, err := time.LoadLocation(bh.Location)
	if err != nil || bh.Location == "" {
		loc = time.UTC
	}
	lt := t.In(loc)
	if wd := lt.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return true
	}
	return lt.Hour() < bh.Start || lt.Hour() >= bh.End
}

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
//	succeeded        allowed, and answered without an error
//	off_hours        outside business hours (bh)
//	root_token       the token carried the root policy
//	login_failed     a refused or failed login
//	login_ok         a successful login
//	privileged:CAT   a privileged write of category CAT (PrivilegedCategory)
//	incomplete       built from the request entry only
//	has_address      a remote address is recorded
//	has_actor        an identity is recorded (display name, entity or accessor)
//	path_is:P        the path is exactly P
//	actor_is:A       Actor(r) is exactly A
//	entity_is:E      the record's entity id is exactly E
//	addr_is:IP       the remote address is exactly IP
//
// "" matches every record. Unknown predicates match nothing.
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
		case "succeeded":
			ok = r.Allowed && r.Error == ""
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
	return v.Encode()
}

// FilterFromQuery parses a Check query string into a query.Filter (the
// same parameters GET /v1/sys/audit/query takes). Tests and tools use it to
// recompute figures against a Backend directly.
func FilterFromQuery(qs string) (query.Filter, error) {
	v, err := url.ParseQuery(qs)
	if err != nil {
		return query.Filter{}, err
	}
	var f query.Filter
	if s := v.Get("since"); s != "" {
		if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			return f, err
		}
	}
	if s := v.Get("until"); s != "" {
		if f.Until, err = time.Parse(time.RFC3339, s); err != nil {
			return f, err
		}
	}
	f.Actor, f.Path, f.Operation, f.Mount, f.Flag = v.Get("actor"), v.Get("path"), v.Get("operation"), v.Get("mount"), v.Get("flag")
	f.NodeID = v.Get("node_id")
	switch v.Get("allowed") {
	case "true":
		t := true
		f.Allowed = &t
	case "false":
		b := false
		f.Allowed = &b
	}
	return f, nil
}
