// Package safetext renders untrusted text (paths, names, error messages
// from the audit log) so that what is displayed is what is there: a path
// holding a right-to-left override (U+202E) or another invisible
// formatting character must not look like a different path.
//
// Escape is for text shown to people — CLI tables, reports, the
// dashboard's JavaScript does the same — and makes every rendering
// unambiguous: each bidirectional control, other invisible format
// character (Unicode category Cf: zero-width spaces and joiners, the byte
// order mark, ...), control character (except tab and newline) and
// invalid UTF-8 byte is shown as a \u or \x escape, and a backslash as \\,
// so an escape can never be confused with text that looks like one.
// EscapeJSON is for JSON output: it replaces the same characters inside
// JSON text with \u escapes, which JSON decoders read back unchanged.
package safetext

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bidi reports whether r is a bidirectional control character: the
// embeddings and overrides (U+202A..U+202E), the isolates
// (U+2066..U+2069) and the implicit marks (U+200E, U+200F, U+061C).
func Bidi(r rune) bool {
	return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 || r == 0x200E || r == 0x200F || r == 0x061C
}

// Hidden reports whether Escape writes r as an escape: it would not
// display as itself (reports/dashboard's JavaScript escapes the same set,
// plus the backslash, and a test holds the two together).
func Hidden(r rune) bool { return hidden(r) }

func hidden(r rune) bool {
	if r == '\t' || r == '\n' {
		return false
	}
	return Bidi(r) || unicode.Is(unicode.Cf, r) || unicode.IsControl(r) || r == utf8.RuneError
}

// Needs reports whether Escape would change s.
func Needs(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == '\\' || r == utf8.RuneError && n <= 1 || hidden(r) {
			return true
		}
		i += n
	}
	return false
}

// Escape returns s as it should be displayed (see the package comment).
func Escape(s string) string {
	if !Needs(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case hidden(r) && r > 0xFFFF:
			fmt.Fprintf(&b, `\u{%x}`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// EscapeJSON returns JSON text with every bidirectional control and other
// invisible format character written as a \u escape. The JSON value is
// unchanged (decoders read the same string); only how it displays raw in a
// terminal or a viewer changes. Control characters are already escaped by
// encoders, and the JSON is assumed to be valid UTF-8, as encoding/json
// writes it.
func EscapeJSON(b []byte) []byte {
	need := false
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != '\t' && r != '\n' && r != utf8.RuneError && (Bidi(r) || unicode.Is(unicode.Cf, r)) {
			need = true
			break
		}
		i += n
	}
	if !need {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError && (Bidi(r) || unicode.Is(unicode.Cf, r)) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}
