package query

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Cursor is where a page ended: the last record returned, in (time, node
// id, seq) order, and the checkpoint horizon of the first page (per node),
// so every page of one listing is computed over the same log prefix — a
// record that became visible later with an earlier time cannot slip
// between pages.
type Cursor struct {
	Time    time.Time
	NodeID  string
	Seq     uint64
	Horizon map[string]uint64
}

type cursorJSON struct {
	T int64             `json:"t"`
	N string            `json:"n"`
	S uint64            `json:"s"`
	H map[string]uint64 `json:"h,omitempty"`
}

// EncodeCursor returns the opaque Next/After string for c (URL-safe).
func EncodeCursor(c Cursor) string {
	b, _ := json.Marshal(cursorJSON{T: c.Time.UnixNano(), N: c.NodeID, S: c.Seq, H: c.Horizon})
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses an After string. Errors wrap ErrInvalidFilter.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, invalid("after: not a cursor returned as next")
	}
	var cj cursorJSON
	if err := json.Unmarshal(b, &cj); err != nil {
		return nil, invalid("after: not a cursor returned as next")
	}
	return &Cursor{Time: time.Unix(0, cj.T).UTC(), NodeID: cj.N, Seq: cj.S, Horizon: cj.H}, nil
}

// CursorAfter is the cursor continuing after r.
func CursorAfter(r *Record, horizon map[string]uint64) string {
	return EncodeCursor(Cursor{Time: r.Time, NodeID: r.NodeID, Seq: r.Seq, Horizon: horizon})
}

// ParseTime reads a --since/--until value: RFC 3339 (with or without
// fractional seconds or zone: a bare "2006-01-02T15:04:05" is UTC), a date
// "2006-01-02" (midnight UTC), Unix seconds, or a duration before now
// such as "90s", "15m", "24h", "7d", "2w" or "1h30m" (optionally with a
// leading "-" or a trailing " ago"). "now" is now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if s == "now" {
		return now, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 100000000 {
		return time.Unix(n, 0).UTC(), nil
	}
	d, err := ParseAgo(s)
	if err != nil {
		return time.Time{}, invalid("time %q: use RFC 3339 (2024-05-01T00:00:00Z), a date, or a duration before now such as 24h or 7d", s)
	}
	return now.Add(-d).UTC(), nil
}

// ParseAgo parses a duration with day ("d") and week ("w") units besides
// Go's ("h", "m", "s", ...): "7d", "1d12h", "-24h", "3d ago".
func ParseAgo(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "ago"))
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && (s[j] < '0' || s[j] > '9') && s[j] != '.' {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		num, unit := s[:i], strings.TrimSpace(s[i:j])
		s = s[j:]
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, err
			}
			day := 24 * time.Hour
			if unit == "w" {
				day *= 7
			}
			total += time.Duration(f * float64(day))
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, err
			}
			total += d
		}
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration must be positive")
	}
	return total, nil
}

// HorizonString renders a horizon map deterministically (for messages).
func HorizonString(h map[string]uint64) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "@" + itoa(h[k])
	}
	return strings.Join(parts, ",")
}
