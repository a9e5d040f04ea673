package query

import (
	"strconv"
	"strings"
	"time"
)

// FilterFromParams builds a Filter from string parameters (get returns ""
// for an absent one): since/until as ParseTime reads them, relative to
// now; allowed as true or false. Errors wrap ErrInvalidFilter.
func FilterFromParams(get func(string) string, limit int, now time.Time) (Filter, error) {
	f := Filter{Actor: strings.TrimSpace(get("actor")), Path: get("path"), Operation: get("operation"), Mount: get("mount"),
		NodeID: strings.TrimSpace(get("node_id")), Flag: get("flag"), After: get("after"), Limit: limit,
		Namespace: get("namespace")}
	var err error
	if f.Since, err = ParseTime(get("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = ParseTime(get("until"), now); err != nil {
		return f, err
	}
	if a := strings.TrimSpace(get("allowed")); a != "" {
		v, err := strconv.ParseBool(a)
		if err != nil {
			return f, invalid("allowed must be true or false, got %q", a)
		}
		f.Allowed = &v
	}
	return f.Normalize()
}
