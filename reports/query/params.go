package query

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// paramNames are the query parameters of GET /v1/sys/audit/query (and the
// report checks' query strings). Anything else is refused (UnknownParams).
var paramNames = []string{"since", "until", "actor", "path", "exact_path", "operation", "allowed", "mount", "node_id", "flag",
	"remote_address", "request_id", "policy", "status", "error_code", "login", "auth_method", "entity", "category",
	"off_hours", "business_hours", "tz", "incomplete", "has", "preflight", "namespace", "limit", "after", "format", "count", "proofs"}

// ParamNames returns the accepted query parameters (a copy).
func ParamNames() []string { return slices.Clone(paramNames) }

// UnknownParams returns the names among keys that are not query
// parameters, sorted (a misspelt filter must not silently match
// everything).
func UnknownParams(keys []string, extra ...string) []string {
	var out []string
	for _, k := range keys {
		if !slices.Contains(paramNames, k) && !slices.Contains(extra, k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// FilterFromParams builds a Filter from string parameters (get returns ""
// for an absent one): since/until as ParseTime reads them, relative to
// now; allowed, off_hours, incomplete and exact_path as true or false;
// status as a number; has as a comma-separated list; business_hours as
// HH-HH and tz as an IANA zone (the off-hours window). Errors wrap
// ErrInvalidFilter.
func FilterFromParams(get func(string) string, limit int, now time.Time) (Filter, error) {
	f := Filter{Actor: strings.TrimSpace(get("actor")), Path: get("path"), Operation: get("operation"), Mount: get("mount"),
		NodeID: strings.TrimSpace(get("node_id")), Flag: get("flag"), After: get("after"), Limit: limit,
		RemoteAddr: strings.TrimSpace(get("remote_address")), RequestID: strings.TrimSpace(get("request_id")),
		Policy: strings.TrimSpace(get("policy")), ErrorCode: strings.TrimSpace(get("error_code")),
		Login: strings.TrimSpace(get("login")), AuthMethod: strings.TrimSpace(get("auth_method")),
		Entity: strings.TrimSpace(get("entity")), Category: strings.TrimSpace(get("category")),
		Preflight: strings.TrimSpace(get("preflight")), Namespace: get("namespace")}
	var err error
	if f.Since, err = ParseTime(get("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = ParseTime(get("until"), now); err != nil {
		return f, err
	}
	boolParam := func(name string) (*bool, error) {
		a := strings.TrimSpace(get(name))
		if a == "" {
			return nil, nil
		}
		v, err := strconv.ParseBool(a)
		if err != nil {
			return nil, invalid("%s must be true or false, got %q", name, a)
		}
		return &v, nil
	}
	if f.Allowed, err = boolParam("allowed"); err != nil {
		return f, err
	}
	if f.OffHours, err = boolParam("off_hours"); err != nil {
		return f, err
	}
	if f.Incomplete, err = boolParam("incomplete"); err != nil {
		return f, err
	}
	exact, err := boolParam("exact_path")
	if err != nil {
		return f, err
	}
	f.ExactPath = exact != nil && *exact
	if s := strings.TrimSpace(get("status")); s != "" {
		if f.Status, err = strconv.Atoi(s); err != nil {
			return f, invalid("status must be a number, got %q", s)
		}
	}
	for _, h := range strings.Split(get("has"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			f.Has = append(f.Has, h)
		}
	}
	bh, tz := strings.TrimSpace(get("business_hours")), strings.TrimSpace(get("tz"))
	if bh != "" || tz != "" {
		f.BusinessHours = DefaultBusinessHours()
		if bh != "" {
			if f.BusinessHours.Start, f.BusinessHours.End, err = ParseBusinessHours(bh); err != nil {
				return f, invalid("business_hours: %v", err)
			}
		}
		if tz != "" {
			f.BusinessHours.Location = tz
		}
	}
	return f.Normalize()
}

// Params renders f as query parameters (the inverse of FilterFromParams,
// without limit, after and format), in paramNames order.
func (f Filter) Params() [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	tb := func(b *bool) string {
		if b == nil {
			return ""
		}
		return strconv.FormatBool(*b)
	}
	if !f.Since.IsZero() {
		add("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		add("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	add("actor", f.Actor)
	add("path", f.Path)
	if f.ExactPath {
		add("exact_path", "true")
	}
	add("operation", f.Operation)
	add("allowed", tb(f.Allowed))
	add("mount", f.Mount)
	add("node_id", f.NodeID)
	add("flag", f.Flag)
	add("remote_address", f.RemoteAddr)
	add("request_id", f.RequestID)
	add("policy", f.Policy)
	if f.Status != 0 {
		add("status", strconv.Itoa(f.Status))
	}
	add("error_code", f.ErrorCode)
	add("login", f.Login)
	add("auth_method", f.AuthMethod)
	add("entity", f.Entity)
	add("category", f.Category)
	add("off_hours", tb(f.OffHours))
	if f.OffHours != nil || f.BusinessHours != (BusinessHours{}) {
		bh := f.BusinessHours
		if bh == (BusinessHours{}) {
			bh = DefaultBusinessHours()
		}
		add("business_hours", bh.String())
		add("tz", bh.Location)
	}
	add("incomplete", tb(f.Incomplete))
	add("has", strings.Join(f.Has, ","))
	add("preflight", f.Preflight)
	add("namespace", f.Namespace)
	return out
}
