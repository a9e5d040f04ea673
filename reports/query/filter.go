package query

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilsec/vigil/core"
)

// Limits on Filter.Limit.
const (
	DefaultLimit = 1000
	MaxLimit     = 100000
)

// operationNames are the values Filter.Operation accepts: Vault's request
// operations, plus the lease manager's internal ones.
var operationNames = []string{"read", "create", "update", "patch", "delete", "list", "revoke", "renew"}

// ErrInvalidFilter wraps every filter validation error; it carries
// core.CodeInvalid, so the API answers 400.
var ErrInvalidFilter = &core.Error{Code: core.CodeInvalid, Msg: "invalid audit query"}

func invalid(format string, args ...any) error {
	return &core.Error{Code: core.CodeInvalid, Msg: "audit query: " + fmt.Sprintf(format, args...), Err: ErrInvalidFilter}
}

// Matcher is a compiled Filter: the exact semantics both backends apply
// (the ClickHouse backend translates the same rules to SQL and re-checks
// every record with Match). Safe for concurrent use.
type Matcher struct {
	F Filter
	// ActorHashes are the HMAC'd forms the actor may also be stored as
	// (its hash with the device salt when it is a raw accessor).
	ActorHashes []string
	// PathGlob is set when Filter.Path is a glob; PathRE is its regular
	// expression (RE2 syntax, also understood by ClickHouse's match()).
	PathGlob bool
	PathRE   string
	re       *regexp.Regexp
	// FlagName and FlagValue split Filter.Flag ("name" or "name=value").
	FlagName, FlagValue string
	HasFlagValue        bool
	// After is the decoded cursor (nil for the first page).
	After *Cursor
	// extra is set when a filter of predicates.go is active: those are
	// checked on the materialised record (MatchExtra).
	extra bool
}

// NeedsRecord reports whether the matcher has filters only the whole
// record can decide (MatchExtra); backends with columnar prefilters apply
// them to the records that pass.
func (m *Matcher) NeedsRecord() bool { return m.extra }

// Approximate reports whether a backend's SQL translation of the filter
// may be wider than the filter (flags, and the filters of predicates.go),
// so records must be re-checked with Match and pages fetched in larger
// batches.
func (m *Matcher) Approximate() bool { return m.F.Flag != "" || m.extra }

// Normalize validates f and fills defaults: Limit (DefaultLimit, at most
// MaxLimit), Mount with a trailing slash, Operation in lower case. Errors
// wrap ErrInvalidFilter.
func (f Filter) Normalize() (Filter, error) {
	switch {
	case f.Limit == 0:
		f.Limit = DefaultLimit
	case f.Limit < 0:
		return f, invalid("limit must be positive")
	case f.Limit > MaxLimit:
		return f, invalid("limit %d is above the maximum %d; page with the next cursor", f.Limit, MaxLimit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, invalid("since (%s) must be before until (%s)", f.Since.Format(time.RFC3339Nano), f.Until.Format(time.RFC3339Nano))
	}
	f.Operation = strings.ToLower(strings.TrimSpace(f.Operation))
	if f.Operation != "" {
		ok := false
		for _, op := range operationNames {
			ok = ok || op == f.Operation
		}
		if !ok {
			return f, invalid("unknown operation %q (one of %s)", f.Operation, strings.Join(operationNames, ", "))
		}
	}
	f.Mount = strings.TrimSpace(f.Mount)
	if f.Mount != "" && !strings.HasSuffix(f.Mount, "/") {
		f.Mount += "/"
	}
	f.Path = strings.TrimPrefix(f.Path, "/")
	f.Namespace = CanonicalNamespace(f.Namespace)
	if err := f.normalizeExtra(); err != nil {
		return f, err
	}
	return f, nil
}

// CanonicalNamespace is a namespace filter as records spell namespaces:
// "hospital-a/" for "hospital-a", "/hospital-a/" or "hospital-a/"; "" for
// the root namespace ("", "root", "/").
func CanonicalNamespace(ns string) string {
	ns = strings.Trim(strings.TrimSpace(ns), "/")
	if ns == "" || ns == core.RootNamespaceID {
		return ""
	}
	return ns + "/"
}

// ScopeNamespace is the namespace filter of a query made in namespace ns:
// param (a namespace path relative to ns, "" for ns itself) under ns. A
// query in a namespace never sees outside it.
func ScopeNamespace(ns core.Namespace, param string) string {
	return ns.Path + CanonicalNamespace(param)
}

// MatchNamespace applies the namespace rule: the record's namespace is the
// filter's or one of its descendants.
func (m *Matcher) MatchNamespace(ns string) bool { return strings.HasPrefix(ns, m.F.Namespace) }

// Compile validates f (see Normalize) and compiles it. actorHashes are the
// HMAC'd forms of f.Actor to match against stored accessors besides
// f.Actor itself (the backend computes them with the device salt).
func (f Filter) Compile(actorHashes ...string) (*Matcher, error) {
	f, err := f.Normalize()
	if err != nil {
		return nil, err
	}
	m := &Matcher{F: f, extra: f.extraActive()}
	for _, h := range actorHashes {
		if h != "" && h != f.Actor {
			m.ActorHashes = append(m.ActorHashes, h)
		}
	}
	if IsGlob(f.Path) && !f.ExactPath {
		re, err := GlobRegexp(f.Path)
		if err != nil {
			return nil, invalid("path: %v", err)
		}
		m.PathGlob, m.PathRE = true, re
		m.re = regexp.MustCompile(re)
	}
	if f.Flag != "" {
		m.FlagName, m.FlagValue, m.HasFlagValue = strings.Cut(f.Flag, "=")
	}
	if f.After != "" {
		c, err := DecodeCursor(f.After)
		if err != nil {
			return nil, err
		}
		m.After = c
	}
	return m, nil
}

// IsGlob reports whether a path filter is a glob (contains * ? or [).
func IsGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// MatchPath applies the path rule: prefix, or the glob over the whole path.
func (m *Matcher) MatchPath(p string) bool {
	if m.F.Path == "" {
		return true
	}
	if m.PathGlob {
		return m.re.MatchString(p)
	}
	if m.F.ExactPath {
		return p == m.F.Path
	}
	return strings.HasPrefix(p, m.F.Path)
}

// MatchActorField reports whether one actor field (display name, entity id
// or accessor) equals the actor. Exact, case-sensitive comparison.
func (m *Matcher) MatchActorField(v string) bool {
	if v == "" {
		return false
	}
	if v == m.F.Actor {
		return true
	}
	for _, h := range m.ActorHashes {
		if v == h {
			return true
		}
	}
	return false
}

// MatchEntityField reports whether an entity id field matches the actor:
// as MatchActorField, or one of Filter.ActorEntityIDs.
func (m *Matcher) MatchEntityField(v string) bool {
	if m.MatchActorField(v) {
		return true
	}
	if v == "" {
		return false
	}
	for _, id := range m.F.ActorEntityIDs {
		if v == id {
			return true
		}
	}
	return false
}

// MatchActor applies the actor rule to a record's actor fields.
func (m *Matcher) MatchActor(r *Record) bool {
	if m.F.Actor == "" {
		return true
	}
	return m.MatchActorField(r.Actor) || m.MatchActorField(r.EntityName) || m.MatchActorField(r.DisplayName) ||
		m.MatchEntityField(r.EntityID) || m.MatchActorField(r.Accessor)
}

// MatchFlags applies the flag rule: the record carries the flag (with the
// given value when the filter says "name=value").
func (m *Matcher) MatchFlags(flags map[string]string) bool {
	if m.F.Flag == "" {
		return true
	}
	v, ok := flags[m.FlagName]
	return ok && (!m.HasFlagValue || v == m.FlagValue)
}

// MatchTime applies Since (inclusive) and Until (exclusive).
func (m *Matcher) MatchTime(t time.Time) bool {
	if !m.F.Since.IsZero() && t.Before(m.F.Since) {
		return false
	}
	if !m.F.Until.IsZero() && !t.Before(m.F.Until) {
		return false
	}
	return true
}

// Match applies every rule except the cursor and the checkpoint horizon.
func (m *Matcher) Match(r *Record) bool {
	f := &m.F
	return m.MatchTime(r.Time) &&
		(f.NodeID == "" || r.NodeID == f.NodeID) &&
		(f.Operation == "" || r.Operation == f.Operation) &&
		(f.Mount == "" || r.MountPoint == f.Mount) &&
		(f.Allowed == nil || r.Allowed == *f.Allowed) &&
		m.MatchPath(r.Path) &&
		m.MatchNamespace(r.Namespace) &&
		m.MatchActor(r) &&
		m.MatchFlags(r.Flags) &&
		m.MatchExtra(r)
}

// AfterCursor reports whether r comes after the cursor (always true on the
// first page).
func (m *Matcher) AfterCursor(r *Record) bool {
	if m.After == nil {
		return true
	}
	return Compare(r, &Record{Time: m.After.Time, NodeID: m.After.NodeID, Seq: m.After.Seq}) > 0
}

// GlobRegexp translates a path glob into an anchored RE2 regular
// expression: path.Match syntax ("*" any run of characters but "/", "?" one
// character but "/", "[...]" and "[^...]" classes, "\\" escapes), plus
// "**", any run of characters including "/". The result is accepted by Go's
// regexp and by ClickHouse's match().
func GlobRegexp(glob string) (string, error) {
	if !utf8.ValidString(glob) {
		return "", fmt.Errorf("glob %q is not valid UTF-8", glob)
	}
	var b strings.Builder
	b.WriteString(`(?s)^`)
	rs := []rune(glob)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch c {
		case '*':
			if i+1 < len(rs) && rs[i+1] == '*' {
				for i+1 < len(rs) && rs[i+1] == '*' {
					i++
				}
				b.WriteString(`.*`)
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			b.WriteString(`[^/]`)
		case '\\':
			if i+1 >= len(rs) {
				return "", fmt.Errorf("glob %q ends with a backslash", glob)
			}
			i++
			b.WriteString(runeLit(rs[i]))
		case '[':
			cls, next, err := globClass(rs, i+1)
			if err != nil {
				return "", fmt.Errorf("glob %q: %w", glob, err)
			}
			b.WriteString(cls)
			i = next - 1
		default:
			b.WriteString(runeLit(c))
		}
	}
	b.WriteByte('$')
	return b.String(), nil
}

var errBadClass = errors.New("malformed character class")

// globClass translates the class starting after the '[' at rs[i] exactly as
// path.Match reads it, and returns the index after its ']'.
func globClass(rs []rune, i int) (string, int, error) {
	esc := func(j int) (rune, int, error) {
		if j >= len(rs) || rs[j] == '-' || rs[j] == ']' {
			return 0, 0, errBadClass
		}
		if rs[j] == '\\' {
			j++
			if j >= len(rs) {
				return 0, 0, errBadClass
			}
		}
		if j+1 >= len(rs) {
			return 0, 0, errBadClass // path.Match: the class must be closed
		}
		return rs[j], j + 1, nil
	}
	neg := false
	if i < len(rs) && rs[i] == '^' {
		neg, i = true, i+1
	}
	var members strings.Builder
	n := 0
	for {
		if i < len(rs) && rs[i] == ']' && n > 0 {
			i++
			break
		}
		lo, j, err := esc(i)
		if err != nil {
			return "", 0, err
		}
		hi := lo
		if rs[j] == '-' {
			if hi, j, err = esc(j + 1); err != nil {
				return "", 0, err
			}
		}
		i = j
		n++
		if hi < lo {
			continue // path.Match accepts a reversed range; it matches nothing
		}
		members.WriteString(runeLit(lo))
		if hi != lo {
			members.WriteByte('-')
			members.WriteString(runeLit(hi))
		}
	}
	switch {
	case members.Len() == 0 && neg:
		return `[\x{0}-\x{10ffff}]`, i, nil
	case members.Len() == 0:
		return `[^\x{0}-\x{10ffff}]`, i, nil
	case neg:
		return "[^" + members.String() + "]", i, nil
	}
	return "[" + members.String() + "]", i, nil
}

// runeLit is a literal rune in RE2 syntax: ASCII letters and digits as
// themselves, anything else as \x{HEX} (valid inside and outside classes,
// in Go and in ClickHouse's re2, and never needing string escapes).
func runeLit(r rune) string {
	if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '/') {
		return string(r)
	}
	return fmt.Sprintf(`\x{%x}`, r)
}
