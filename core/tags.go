package core

import "strings"

// ScopeTags returns the mount options and KV v2 custom_metadata keys that
// put a mount or a secret in a compliance report's scope when set to a true
// value (see TrueTag). Compliance checks, reports and the kv engine share
// them.
func ScopeTags() []string { return []string{"phi", "regulated"} }

// TrueTag reports whether md sets one of tags to "true", "1" or "yes"
// (any case).
func TrueTag(md map[string]string, tags []string) bool {
	for _, t := range tags {
		switch strings.ToLower(md[t]) {
		case "true", "1", "yes":
			return true
		}
	}
	return false
}

// TaggedKeysPath is the Internal route, relative to a KV version 2 mount,
// that lists the secrets whose custom_metadata tags them as regulated.
// Compliance reaches it through the Dispatcher, as an audited internal
// request: read {"tags": [...], "limit": N} → {"keys": [...], "truncated": bool}.
const TaggedKeysPath = "tagged-keys"
