package query

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The predicates behind the reports' figures, exposed as query filters so
// that every figure can be reproduced with `vigil audit query` alone.

// Privileged-operation categories (write operations on these sys/ paths),
// Filter.Category "privileged:<category>".
const (
	PrivPolicy   = "policy"   // sys/policies/*, sys/policy/*: ACL and Rego policy changes
	PrivAudit    = "audit"    // sys/audit/<device>: audit device enable/disable
	PrivSealKeys = "seal"     // sys/seal, sys/rotate, sys/rekey*, sys/generate-root*
	PrivMounts   = "mounts"   // sys/mounts/*, sys/auth/*: engine and auth method changes
	PrivSnapshot = "snapshot" // sys/storage/raft/snapshot*: snapshot restores
)

// PrivCategories returns the categories in report order (a copy).
func PrivCategories() []string {
	return []string{PrivPolicy, PrivAudit, PrivSealKeys, PrivMounts, PrivSnapshot}
}

// IsWrite reports whether op changes state.
func IsWrite(op string) bool {
	switch op {
	case "create", "update", "delete", "patch":
		return true
	}
	return false
}

// PrivilegedCategory classifies a record as a privileged operation ("" when
// it is not one): a write on a sys/ path that changes policies, audit
// devices, seal and keys, mounts or auth methods, or restores a snapshot.
// Reads are never privileged operations (root-token reads are counted as
// root-token use).
func PrivilegedCategory(r *Record) string {
	p := r.Path
	if !IsWrite(r.Operation) || !strings.HasPrefix(p, "sys/") {
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

// IsLogin reports whether path is an auth method login
// (auth/<mount>/login...), token logins excluded.
func IsLogin(path string) bool {
	parts := strings.Split(path, "/")
	return len(parts) >= 3 && parts[0] == "auth" && parts[2] == "login" && parts[1] != "token"
}

// LoginFailed: a login that was refused or errored.
func LoginFailed(r *Record) bool { return IsLogin(r.Path) && (r.Error != "" || !r.Allowed) }

// HasPolicy reports whether the token carried policy p.
func HasPolicy(r *Record, p string) bool { return slices.Contains(r.Policies, p) }

// IsPreflight reports whether path is a client preflight request: the
// Vault CLI reads sys/internal/ui/mounts/<path> before every `kv` command
// to learn the mount's KV version. Such requests are recorded like any
// other; timelines hide them unless asked (Filter.Preflight).
func IsPreflight(path string) bool {
	return path == "sys/internal/ui/mounts" || strings.HasPrefix(path, "sys/internal/ui/mounts/")
}

// AuthMethodOf names the auth method behind a record: for a login, the
// type of the auth mount it went to (auth/userpass/login/alice →
// "userpass"); otherwise the method that issued the token, read from its
// display name as Vault forms it ("<mount>-<name>": userpass-alice →
// "userpass"; "root", "token" and names without a dash as they are).
func AuthMethodOf(r *Record) string {
	if IsLogin(r.Path) {
		if r.MountType != "" {
			return r.MountType
		}
		return strings.Split(r.Path, "/")[1]
	}
	d := r.DisplayName
	if d == "" {
		return ""
	}
	if i := strings.IndexByte(d, '-'); i > 0 {
		return d[:i]
	}
	return d
}

// BusinessHours define off-hours: outside [Start, End) local hours on
// Monday to Friday in Location (an IANA zone name).
type BusinessHours struct {
	Start    int    `json:"start_hour"`
	End      int    `json:"end_hour"`
	Location string `json:"location"`
}

// DefaultBusinessHours are 08-18 Monday to Friday UTC.
func DefaultBusinessHours() BusinessHours { return BusinessHours{Start: 8, End: 18, Location: "UTC"} }

// ParseBusinessHours reads "HH-HH" (e.g. "08-18").
func ParseBusinessHours(v string) (start, end int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(v), "-")
	s, err1 := strconv.Atoi(strings.TrimSpace(a))
	e, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || s < 0 || e > 24 || s >= e {
		return 0, 0, fmt.Errorf("want HH-HH with start before end, e.g. 08-18, got %q", v)
	}
	return s, e, nil
}

// String is "HH-HH".
func (bh BusinessHours) String() string { return fmt.Sprintf("%02d-%02d", bh.Start, bh.End) }

// locations caches loaded time zones: OffHours runs once per record.
var locations sync.Map // name -> *time.Location

func location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	locations.Store(name, loc)
	return loc
}

// OffHours reports whether t falls outside business hours.
func (bh BusinessHours) OffHours(t time.Time) bool {
	loc := location(bh.Location)
	lt := t.In(loc)
	if wd := lt.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return true
	}
	return lt.Hour() < bh.Start || lt.Hour() >= bh.End
}

// Fields a record may be required to have (Filter.Has).
const (
	HasActor   = "actor"   // an identity is recorded (display name, entity or accessor)
	HasAddress = "address" // a client address is recorded
)

// Preflight choices (Filter.Preflight).
const (
	PreflightInclude = ""        // every record (the API's default)
	PreflightExclude = "exclude" // hide client preflight requests (timelines)
	PreflightOnly    = "only"    // only client preflight requests
)

// extraActive reports whether any filter beyond the columnar ones is set.
func (f *Filter) extraActive() bool {
	return f.RemoteAddr != "" || f.RequestID != "" || f.Policy != "" || f.Status != 0 || f.ErrorCode != "" || f.Login != "" ||
		f.AuthMethod != "" || f.Entity != "" || f.Category != "" || f.OffHours != nil || f.Incomplete != nil || len(f.Has) > 0 ||
		f.ExactPath || f.Preflight != ""
}

// normalizeExtra validates the filters of this file.
func (f *Filter) normalizeExtra() error {
	if f.RemoteAddr != "" {
		a := strings.TrimSpace(f.RemoteAddr)
		if strings.Contains(a, "/") {
			if _, err := netip.ParsePrefix(a); err != nil {
				return invalid("remote_address: %q is not an address or CIDR prefix", f.RemoteAddr)
			}
		} else if _, err := netip.ParseAddr(a); err != nil {
			return invalid("remote_address: %q is not an IP address or CIDR prefix", f.RemoteAddr)
		}
		f.RemoteAddr = a
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return invalid("status: %d is not an HTTP status", f.Status)
	}
	switch f.Login {
	case "", "ok", "failed":
	default:
		return invalid("login: want ok or failed, got %q", f.Login)
	}
	if f.Category != "" {
		cat, sub, _ := strings.Cut(f.Category, ":")
		if cat != "privileged" || sub != "" && !slices.Contains(PrivCategories(), sub) {
			return invalid("category: want privileged or privileged:<%s>, got %q", strings.Join(PrivCategories(), "|"), f.Category)
		}
	}
	if f.OffHours != nil || f.BusinessHours != (BusinessHours{}) {
		if f.BusinessHours == (BusinessHours{}) {
			f.BusinessHours = DefaultBusinessHours()
		}
		if f.BusinessHours.Location == "" {
			f.BusinessHours.Location = "UTC"
		}
		if _, err := time.LoadLocation(f.BusinessHours.Location); err != nil {
			return invalid("tz: unknown time zone %q", f.BusinessHours.Location)
		}
		if f.BusinessHours.Start < 0 || f.BusinessHours.End > 24 || f.BusinessHours.Start >= f.BusinessHours.End {
			return invalid("business_hours: %02d-%02d", f.BusinessHours.Start, f.BusinessHours.End)
		}
	}
	for _, h := range f.Has {
		if h != HasActor && h != HasAddress {
			return invalid("has: want actor or address, got %q", h)
		}
	}
	switch f.Preflight {
	case PreflightInclude, PreflightExclude, PreflightOnly:
	default:
		return invalid("preflight: want exclude or only, got %q", f.Preflight)
	}
	if f.ExactPath && f.Path == "" {
		return invalid("exact_path needs a path")
	}
	return nil
}

// MatchExtra applies the filters of this file.
func (m *Matcher) MatchExtra(r *Record) bool {
	f := &m.F
	if !m.extra {
		return true
	}
	switch {
	case f.RemoteAddr != "" && !matchAddr(f.RemoteAddr, r.RemoteAddr),
		f.RequestID != "" && r.RequestID != f.RequestID,
		f.Policy != "" && !HasPolicy(r, f.Policy),
		f.Status != 0 && r.Status != f.Status,
		f.ErrorCode != "" && r.ErrorCode != f.ErrorCode,
		f.Login == "ok" && (!IsLogin(r.Path) || LoginFailed(r)),
		f.Login == "failed" && !LoginFailed(r),
		f.AuthMethod != "" && AuthMethodOf(r) != f.AuthMethod,
		f.Entity != "" && r.EntityID != f.Entity,
		f.Incomplete != nil && r.Incomplete != *f.Incomplete,
		f.ExactPath && r.Path != f.Path,
		f.Preflight == PreflightExclude && IsPreflight(r.Path),
		f.Preflight == PreflightOnly && !IsPreflight(r.Path):
		return false
	}
	if f.Category != "" {
		c := PrivilegedCategory(r)
		_, sub, _ := strings.Cut(f.Category, ":")
		if c == "" || sub != "" && c != sub {
			return false
		}
	}
	if f.OffHours != nil && f.BusinessHours.OffHours(r.Time) != *f.OffHours {
		return false
	}
	for _, h := range f.Has {
		switch h {
		case HasActor:
			if r.DisplayName == "" && r.EntityID == "" && r.Accessor == "" {
				return false
			}
		case HasAddress:
			if r.RemoteAddr == "" {
				return false
			}
		}
	}
	return true
}

func matchAddr(want, got string) bool {
	if got == "" {
		return false
	}
	if !strings.Contains(want, "/") {
		return want == got
	}
	p, err1 := netip.ParsePrefix(want)
	a, err2 := netip.ParseAddr(got)
	return err1 == nil && err2 == nil && p.Contains(a.Unmap())
}

// PathMayMatch reports whether a record with this path can pass the
// filters of this file that depend on the path (login, category,
// preflight): backends evaluate it once per distinct path.
func (m *Matcher) PathMayMatch(p string) bool {
	f := &m.F
	switch {
	case f.Login != "" && !IsLogin(p),
		f.Category != "" && !strings.HasPrefix(p, "sys/"),
		f.Preflight == PreflightExclude && IsPreflight(p),
		f.Preflight == PreflightOnly && !IsPreflight(p),
		f.ExactPath && p != f.Path:
		return false
	}
	return true
}

// AddrMayMatch applies the remote_address filter to one address.
func (m *Matcher) AddrMayMatch(a string) bool {
	return m.F.RemoteAddr == "" || matchAddr(m.F.RemoteAddr, a)
}
