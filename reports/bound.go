package reports

import (
	"sort"
	"strconv"
	"strings"
)

// pathColumns names the columns holding a path (grouped by prefix in a
// table's aggregate row).
var pathColumns = map[string]bool{"Path": true}

// bound limits what a table prints to rows lines and sums up the rest in
// its aggregate row (Table.Rest): how many rows, the total of the count
// column, and, for a table with a path column, the largest mount/prefix
// groups. The CSV and JSON keep every row.
func bound(t *Table, rows int) {
	if rows <= 0 || len(t.Rows) <= rows {
		return
	}
	t.Shown = rows
	rest := t.Rows[rows:]
	r := &TableRest{Rows: len(rest)}
	pathCol := -1
	for i, c := range t.Columns {
		if pathColumns[c] {
			pathCol = i
			break
		}
	}
	groups := map[string]*Group{}
	for _, row := range rest {
		var n int64
		if t.CountCol > 0 && t.CountCol < len(row) {
			n, _ = strconv.ParseInt(row[t.CountCol], 10, 64)
			r.Count += n
		}
		if pathCol >= 0 && pathCol < len(row) {
			p := prefixOf(row[pathCol])
			g := groups[p]
			if g == nil {
				g = &Group{Prefix: p}
				groups[p] = g
			}
			g.Rows++
			g.Count += n
		}
	}
	for _, g := range groups {
		r.By = append(r.By, *g)
	}
	sort.Slice(r.By, func(i, j int) bool {
		a, b := r.By[i], r.By[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Rows != b.Rows {
			return a.Rows > b.Rows
		}
		return a.Prefix < b.Prefix
	})
	if len(r.By) > maxGroups {
		r.By = r.By[:maxGroups]
	}
	t.Rest = r
}

// maxGroups is how many prefix groups an aggregate row names.
const maxGroups = 5

// prefixOf is the mount-level prefix of a path: its first two segments
// ("secret/data/", "phi/data/", "sys/policies/"), or the first for a
// one-segment path.
func prefixOf(p string) string {
	parts := strings.SplitN(p, "/", 3)
	if len(parts) >= 3 {
		return parts[0] + "/" + parts[1] + "/"
	}
	if len(parts) == 2 {
		return parts[0] + "/"
	}
	return p
}

// RestText is the aggregate row as printed: "13,492 more rows (13,492
// requests), by prefix: secret/data/ 9,100; sys/policies/ 4,392".
func (r *TableRest) RestText(countCol string) string {
	var b strings.Builder
	b.WriteString(group(int64(r.Rows)) + " more row")
	if r.Rows != 1 {
		b.WriteString("s")
	}
	if r.Count > 0 && countCol != "" {
		b.WriteString(" (" + group(r.Count) + " " + strings.ToLower(countCol) + ")")
	}
	if len(r.By) > 0 {
		b.WriteString(", by prefix: ")
		for i, g := range r.By {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(g.Prefix + " " + group(int64(g.Rows)) + " row")
			if g.Rows != 1 {
				b.WriteString("s")
			}
			if g.Count > 0 {
				b.WriteString(" / " + group(g.Count))
			}
		}
	}
	b.WriteString(". Every row is in the CSV.")
	return b.String()
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
