package core

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a configuration duration: "768h", "30m", "7d" or a
// number of seconds. An empty string is 0; a negative duration is an
// error. The configuration file and the
// audit device options share it.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid duration %q: negative", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	if strings.HasSuffix(s, "d") {
		if days, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 64); err == nil && days >= 0 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}
